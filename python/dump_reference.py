"""Run FlagEmbedding on a file of texts and write its outputs as JSON lines.

`bge-m3 verify --model DIR --reference FILE` compares the engine with this file, so a
user can check an ONNX export against the reference on their own machine:

    python python/dump_reference.py CHECKPOINT_DIR texts.txt reference.jsonl
    bge-m3 verify --model EXPORT_DIR --reference reference.jsonl

Each output line: {"text", "max_length", "input_ids", "dense": [...],
"sparse": {"<token id>": weight}, "colbert": [[...], ...]}, from
`BGEM3FlagModel.encode` on CPU in fp32 (FlagEmbedding 1.4.2, transformers 4.57).
Texts are read one per line, or with --jsonl as {"text": ...} objects; lines are split
on "\\n" only.
"""

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import export_onnx  # noqa: E402
import numpy as np  # noqa: E402


def f32(value) -> float:
    """Return the float whose shortest decimal form reads back as the same float32."""
    return float(str(np.float32(value)))


def read_texts(path: pathlib.Path, jsonl: bool) -> list[str]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if jsonl:
        return [json.loads(line)["text"] for line in lines]
    return [line.removesuffix("\r") for line in lines]


def dump(flag_model, texts: list[str], max_length: int, out) -> None:
    """Encode `texts` and write one JSON line per text to `out`."""
    output = flag_model.encode(
        texts,
        batch_size=8,
        max_length=max_length,
        return_dense=True,
        return_sparse=True,
        return_colbert_vecs=True,
    )
    ids = flag_model.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    for index, text in enumerate(texts):
        record = {
            "text": text,
            "max_length": max_length,
            "input_ids": ids[index],
            "dense": [f32(x) for x in output["dense_vecs"][index]],
            "sparse": {k: f32(v) for k, v in output["lexical_weights"][index].items()},
            "colbert": [[f32(x) for x in row] for row in output["colbert_vecs"][index]],
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=pathlib.Path, help="FlagEmbedding checkpoint folder")
    parser.add_argument("texts", type=pathlib.Path, help="file with one text per line")
    parser.add_argument("output", type=pathlib.Path, help="JSONL file to write")
    parser.add_argument("--max-length", type=int, default=8192)
    parser.add_argument("--jsonl", action="store_true", help='read {"text": ...} lines')
    args = parser.parse_args()
    flag_model = export_onnx.load_flag_model(args.checkpoint)
    texts = read_texts(args.texts, args.jsonl)
    with open(args.output, "w", encoding="utf-8") as out:
        dump(flag_model, texts, args.max_length, out)
    print(f"wrote {len(texts)} records to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
