"""FlagEmbedding's BGEM3FlagModel (PyTorch, CPU, fp32) behind the bge-m3 bench command line.

Runs in the reference environment (python/requirements.txt). `--model` is a
FlagEmbedding checkpoint folder (XLM-RoBERTa weights, tokenizer, colbert_linear.pt,
sparse_linear.pt). FlagEmbedding 1.4.2's `encode` runs its first batch twice, once
to probe the batch size and once for real (`encode_single_device` in
`inference/embedder/encoder_only/m3.py`). The figures include that probe, as a user
sees it.
"""

import pathlib
import sys
from importlib.metadata import version

import torch
from FlagEmbedding import BGEM3FlagModel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import peer_common  # noqa: E402


class FlagEmbeddingEngine:
    name = "FlagEmbedding"
    batches_by_count = True

    def __init__(self, args):
        self.args = args
        self.model = None
        self.version = "unknown"
        self.notes = ["encode runs its first batch twice (batch-size probe); included"]

    def load(self) -> None:
        torch.set_num_threads(self.args.threads)
        self.version = version("FlagEmbedding")
        self.notes.append(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        self.model = BGEM3FlagModel(str(self.args.model), use_fp16=False, devices="cpu")

    def token_counts(self, texts: list[str]) -> list[int]:
        encoded = self.model.tokenizer(texts, truncation=True, max_length=self.args.max_length)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: list[str], batch_size: int) -> int:
        every = self.args.outputs == "all"
        output = self.model.encode(
            texts,
            batch_size=batch_size,
            max_length=self.args.max_length,
            return_dense=True,
            return_sparse=every,
            return_colbert_vecs=every,
        )
        return len(output["dense_vecs"])


def main() -> None:
    args = peer_common.parse_args(__doc__.split("\n")[0])
    peer_common.run(FlagEmbeddingEngine(args), args)


if __name__ == "__main__":
    main()
