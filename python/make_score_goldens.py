"""Record FlagEmbedding's scores for query/passage pairs on the tiny test model.

Writes `tests/fixtures/goldens/scores.json` with, for the pairs below:

- `compute_score` of each pair alone (no padding), with the default weights and with
  the README's example weights `[0.4, 0.2, 0.4]`;
- `compute_score` of all pairs in one call, where the reference pads passages to the
  longest one of the batch (for docs/parity.md: padding rows take part in its ColBERT
  max);
- `convert_id_to_token`'s text for every token id of the vocabulary (what `--tokens`
  keys sparse weights by);
- the many-to-many matrices of the separate functions on `encode` output at max
  length 512: dense inner products, `compute_lexical_matching_score` and
  `colbert_score`.

Usage: python python/make_score_goldens.py [--model tests/fixtures/tiny-bge-m3] [--output FILE]
"""

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus  # noqa: E402
import export_onnx  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
README_WEIGHTS = [0.4, 0.2, 0.4]
SCORE_KEYS = ["dense", "sparse", "colbert", "sparse+dense", "colbert+sparse+dense"]
PAIRS = [
    ("What is BGE-M3?", "BGE-M3 is an embedding model with dense, sparse and multi-vector outputs."),
    ("Текст для теста", corpus.MULTILINGUAL_SENTENCE),
    ("測試文字", "我们正在测试多语言嵌入模型。"),
    ("", "A passage for an empty query."),
    ("A query for an empty passage.", ""),
    ("the the the the", "the the the the the the the the"),
    ("buffalo buffalo", "buffalo " * 40),
    ("Kiểm tra văn bản!", "Hà Nội là thủ đô của Việt Nam."),
    ("<s> special </s>", "<pad> tokens <unk> inside"),
    ("Paris", "Paris est la capitale de la France."),
    ("long passage", corpus.long_text()),
]


def to_lists(scores: dict) -> dict:
    return {key: [float(value) for value in scores[key]] for key in SCORE_KEYS}


def compute_alone(model, weights) -> dict:
    results = {key: [] for key in SCORE_KEYS}
    for pair in PAIRS:
        scores = model.compute_score([pair], weights_for_different_modes=weights)
        for key in SCORE_KEYS:
            results[key].append(float(scores[key][0]))
    return results


def matrices(model) -> dict:
    queries = [query for query, _ in PAIRS]
    passages = [passage for _, passage in PAIRS]
    options = dict(max_length=512, return_dense=True, return_sparse=True, return_colbert_vecs=True)
    q = model.encode(queries, **options)
    p = model.encode(passages, **options)
    dense = q["dense_vecs"] @ p["dense_vecs"].T
    lexical = model.compute_lexical_matching_score(q["lexical_weights"], p["lexical_weights"])
    colbert = [
        [float(model.colbert_score(q_vecs, p_vecs)) for p_vecs in p["colbert_vecs"]]
        for q_vecs in q["colbert_vecs"]
    ]
    return {
        "dense": np.asarray(dense, dtype=np.float64).tolist(),
        "lexical": np.asarray(lexical, dtype=np.float64).tolist(),
        "colbert": colbert,
    }


def token_texts(model) -> list:
    """Return the text that `convert_id_to_token` gives each id, in id order."""
    ids = range(len(model.tokenizer))
    converted = model.convert_id_to_token([{str(i): 1.0} for i in ids])
    return [next(iter(item)) for item in converted]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=REPO_ROOT / "tests/fixtures/tiny-bge-m3")
    parser.add_argument("--output", type=pathlib.Path,
                        default=REPO_ROOT / "tests/fixtures/goldens/scores.json")
    args = parser.parse_args()
    model = export_onnx.load_flag_model(args.model)
    record = {
        "pairs": [list(pair) for pair in PAIRS],
        "max_query_length": model.query_max_length,
        "max_passage_length": model.passage_max_length,
        "compute_score_alone": {
            "default_weights": compute_alone(model, None),
            "readme_weights": compute_alone(model, README_WEIGHTS),
        },
        "compute_score_batched": to_lists(model.compute_score(PAIRS)),
        "matrices": matrices(model),
        "token_texts": token_texts(model),
    }
    args.output.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
