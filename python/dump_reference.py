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
    """Read one text per line, or one {"text": ...} object per line with `jsonl`, where
    blank lines are skipped as `bge-m3 embed --jsonl` skips them."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not jsonl:
        return [line.removesuffix("\r") for line in lines]
    texts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            texts.append(json.loads(line)["text"])
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise SystemExit(f"error: {path} line {number} is not a JSON object with a "
                             f"string field \"text\": {error}") from error
    return texts


def check_max_length(max_length: int, checkpoint: pathlib.Path) -> None:
    """Exit with a message when `max_length` is not between 2 and the model's limit."""
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    # XLM-RoBERTa's positions start after the padding id, so 8194 positions give 8192.
    limit = config["max_position_embeddings"] - config.get("pad_token_id", 1) - 1
    if not 2 <= max_length <= limit:
        raise SystemExit(f"error: --max-length {max_length} is invalid; give 2 (room for <s> and "
                         f"</s>) to the model's limit of {limit} tokens")


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
    parser.add_argument("--max-length", type=int, default=8192,
                        help="tokens per text, <s> and </s> included (default: 8192)")
    parser.add_argument("--jsonl", action="store_true", help='read {"text": ...} lines')
    args = parser.parse_args()
    export_onnx.check_checkpoint(args.checkpoint)
    check_max_length(args.max_length, args.checkpoint)
    texts = read_texts(args.texts, args.jsonl)
    if not texts:
        raise SystemExit(f"error: no texts in {args.texts}")
    flag_model = export_onnx.load_flag_model(args.checkpoint)
    with open(args.output, "w", encoding="utf-8") as out:
        dump(flag_model, texts, args.max_length, out)
    print(f"wrote {len(texts)} records to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
