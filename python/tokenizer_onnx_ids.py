"""Print the token ids that `tokenizer.onnx` gives each text of a JSONL file.

Runs the graph with the Python onnxruntime and onnxruntime-extensions only (no
transformers, no PyTorch). One output line per input line: {"index": i, "ids": [...]}.

Usage: python python/tokenizer_onnx_ids.py TOKENIZER_ONNX CORPUS_JSONL
"""

import argparse
import json
import pathlib

import numpy as np
import onnxruntime
from onnxruntime_extensions import get_library_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tokenizer", type=pathlib.Path, help="tokenizer.onnx of an export")
    parser.add_argument("corpus", type=pathlib.Path, help='JSONL file of {"text": ...} records')
    args = parser.parse_args()
    options = onnxruntime.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    session = onnxruntime.InferenceSession(str(args.tokenizer), options,
                                           providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    with open(args.corpus, encoding="utf-8") as corpus:
        lines = corpus.read().split("\n")
    texts = [json.loads(line)["text"] for line in lines if line]
    for index, text in enumerate(texts):
        ids = session.run(None, {input_name: np.array([text])})[0]
        print(json.dumps({"index": index, "ids": [int(i) for i in np.ravel(ids)]}))


if __name__ == "__main__":
    main()
