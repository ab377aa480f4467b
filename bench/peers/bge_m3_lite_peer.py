"""bge-m3-lite (PyPI) behind the bge-m3 bench command line, offline, on local weights.

bge-m3-lite 0.6.2 pins the SHA-256 of BAAI's files in `bge_m3_lite.hub` and deletes
any cached file that does not match, so this peer replaces the pinned entries of the
tokenizer and head files with the sizes and digests of the files in `--model`, copies
them into a cache folder of its own (`--cache`) and sets BGE_M3_LITE_OFFLINE=1, so
nothing is downloaded and nothing in `--model` is touched. The backbone is the graph
given with `--backbone`: a backbone-only export (bench/export_backbone.py), or
bge-m3-lite's fused graph built from it (bench/fuse_backbone.py).

Runs in bench/.venv (bench/requirements.txt).
"""

import hashlib
import json
import os
import pathlib
import shutil
import sys
from importlib.metadata import version

os.environ["BGE_M3_LITE_OFFLINE"] = "1"

from bge_m3_lite import BGEM3Embedder, embedder, hub  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import peer_common  # noqa: E402


def local_manifest(files: tuple, source: pathlib.Path) -> tuple:
    """Return the manifest entries of `files` with the sizes and digests of `source`'s copies."""
    entries = []
    for remote in files:
        path = source / remote.name
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entries.append(hub.RemoteFile(remote.name, remote.remote_path, path.stat().st_size, digest))
    return tuple(entries)


def prepare_cache(model: pathlib.Path, cache: pathlib.Path) -> None:
    """Point bge-m3-lite's manifest at the tokenizer and heads of `model`, copied into `cache`."""
    hub.TOKENIZER_FILES = local_manifest(hub.TOKENIZER_FILES, model)
    hub.HEAD_FILES = local_manifest(hub.HEAD_FILES, model)
    # bge-m3-lite fixes the hidden size at BGE-M3's 1024; the tiny test model has 32.
    config = json.loads((model / "config.json").read_text())
    embedder.HIDDEN_SIZE = config["hidden_size"]
    cache.mkdir(parents=True, exist_ok=True)
    for remote in hub.TOKENIZER_FILES + hub.HEAD_FILES:
        target = cache / remote.name
        if not hub.is_complete(target, remote, verify=True):
            shutil.copyfile(model / remote.name, target)


class LiteEngine:
    name = "bge-m3-lite"
    batches_by_count = False

    def __init__(self, args):
        self.args = args
        self.version = version("bge-m3-lite")
        self.notes = [f"backbone {args.backbone.name}"]
        self.embedder = None

    def load(self) -> None:
        self.embedder = BGEM3Embedder(
            self.args.cache,
            num_threads=self.args.threads,
            max_length=self.args.max_length,
            model_path=self.args.backbone,
            quiet=True,
        )

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.embedder.tokenize(texts, self.args.max_length)]

    def embed(self, texts: list[str], batch_size: int) -> int:
        every = self.args.outputs == "all"
        # The text-count cap is lifted so that only the token budget bounds a batch,
        # as in the other engines; bge-m3-lite's own default is 12 texts.
        output = self.embedder.encode(
            texts,
            batch_size=len(texts),
            max_batch_tokens=self.args.token_budget,
            max_length=self.args.max_length,
            return_dense=True,
            return_sparse=every,
            return_colbert_vecs=every,
        )
        return len(output["dense_vecs"])


def add_options(parser) -> None:
    parser.add_argument("--backbone", type=pathlib.Path, required=True, help="backbone ONNX graph")
    parser.add_argument("--cache", type=pathlib.Path, required=True, help="bge-m3-lite cache folder")


def main() -> None:
    args = peer_common.parse_args(__doc__.split("\n")[0], add_options)
    prepare_cache(args.model, args.cache)
    peer_common.run(LiteEngine(args), args)


if __name__ == "__main__":
    main()
