"""ONNX Runtime in Python on the three-output export, post-processing in numpy.

The path of the first ONNX experiments with this model. `onnxruntime.InferenceSession`
runs with its default session options and the intra-op thread count set. The Hugging
Face tokenizer of the model folder is called as FlagEmbedding calls it (truncation at
the max length), and texts are sorted longest first and grouped under the token
budget. FlagEmbedding 1.4.2's post-processing runs in numpy: the dense vector as the
graph returns it, sparse weights max-pooled per token id without the special tokens,
and ColBERT rows cut to the text's length. Runs in the reference environment
(python/requirements.txt).
"""

import pathlib
import sys
from collections import defaultdict

import numpy as np
import onnxruntime
from transformers import AutoTokenizer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import peer_common  # noqa: E402

OUTPUTS = ["dense_embeddings", "sparse_weights", "colbert_vectors"]


class OnnxRuntimeEngine:
    name = "onnxruntime-python"
    batches_by_count = False

    def __init__(self, args):
        self.args = args
        self.version = "unknown"
        self.notes = []
        self.session = None
        self.tokenizer = None

    def load(self) -> None:
        self.version = onnxruntime.__version__
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.args.threads
        self.session = onnxruntime.InferenceSession(
            str(self.args.model / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.args.model))
        special = [self.tokenizer.cls_token_id, self.tokenizer.eos_token_id]
        special += [self.tokenizer.pad_token_id, self.tokenizer.unk_token_id]
        self.special_ids = set(special)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.args.max_length)
        return encoded["input_ids"]

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.tokenize(texts)]

    def embed(self, texts: list[str], batch_size: int) -> int:
        ids = self.tokenize(texts)
        order = sorted(range(len(ids)), key=lambda index: -len(ids[index]))
        names = OUTPUTS if self.args.outputs == "all" else OUTPUTS[:1]
        results = [None] * len(texts)
        for batch in self.batches(order, ids):
            input_ids, mask = self.pad([ids[index] for index in batch])
            outputs = self.session.run(names, {"input_ids": input_ids, "attention_mask": mask})
            for row, index in enumerate(batch):
                results[index] = self.cut(outputs, row, ids[index])
        return sum(result is not None for result in results)

    def batches(self, order: list[int], ids: list[list[int]]):
        """Group texts, longest first, so that texts × longest <= token budget."""
        batch = []
        for index in order:
            if batch and (len(batch) + 1) * len(ids[batch[0]]) > self.args.token_budget:
                yield batch
                batch = []
            batch.append(index)
        if batch:
            yield batch

    def pad(self, rows: list[list[int]]):
        width = max(len(row) for row in rows)
        input_ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for number, row in enumerate(rows):
            input_ids[number, : len(row)] = row
            mask[number, : len(row)] = 1
        return input_ids, mask

    def cut(self, outputs, row: int, ids: list[int]) -> dict:
        result = {"dense": outputs[0][row]}
        if len(outputs) == 3:
            weights = outputs[1][row, : len(ids), 0]
            lexical = defaultdict(int)
            for weight, token in zip(weights, ids):
                if token not in self.special_ids and weight > 0 and weight > lexical[str(token)]:
                    lexical[str(token)] = weight
            result["sparse"] = lexical
            result["colbert"] = outputs[2][row, : len(ids) - 1]
        return result


def main() -> None:
    args = peer_common.parse_args(__doc__.split("\n")[0])
    peer_common.run(OnnxRuntimeEngine(args), args)


if __name__ == "__main__":
    main()
