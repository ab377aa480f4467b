"""The engines that bench/run.py compares, and the command line of each.

Every engine is a program with the command line of `bge-m3 bench` (model, input,
outputs, mode, repeat, calls, warmup, max length, token budget, threads) that prints
one JSON object. An engine whose program or files are missing is skipped with the
reason and the command that makes them.
"""

import pathlib
from dataclasses import dataclass

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = REPO_ROOT / "bench"
PEERS = BENCH / "peers"


@dataclass(frozen=True)
class Paths:
    """Programs and files the engines need."""

    model: pathlib.Path
    lite_backbone: pathlib.Path
    bge_m3: pathlib.Path
    fastembed_peer: pathlib.Path
    reference_python: pathlib.Path
    bench_python: pathlib.Path
    work: pathlib.Path
    ort_library: pathlib.Path


@dataclass(frozen=True)
class Engine:
    name: str
    description: str
    command: list[str]
    # Reason the engine cannot run, with the command that fixes it, or None.
    missing: str | None
    uses_ort_library: bool = False


def require(path: pathlib.Path, fix: str) -> str | None:
    return None if path.exists() else f"{path} is missing: {fix}"


def first_missing(*reasons: str | None) -> str | None:
    return next((reason for reason in reasons if reason), None)


def all_engines(paths: Paths) -> list[Engine]:
    """Return every engine, ours first."""
    reference = str(paths.reference_python)
    lite_peer = [str(paths.bench_python), str(PEERS / "bge_m3_lite_peer.py")]
    lite_cache = ["--cache", str(paths.work / "bge-m3-lite-cache")]
    ort = require(paths.ort_library, "run bash scripts/setup-onnxruntime.sh")
    fused = paths.lite_backbone / "model_fused.onnx"
    raw = paths.lite_backbone / "model.onnx"
    export_fix = (
        f"run {reference} bench/export_backbone.py {paths.model} {paths.lite_backbone}"
    )
    fuse_fix = f"run {paths.bench_python} bench/fuse_backbone.py {raw}"
    return [
        Engine(
            "bge-m3",
            "this project, Rust on ONNX Runtime",
            [str(paths.bge_m3), "bench"],
            first_missing(require(paths.bge_m3, "run cargo build --release -p bge-m3-cli"), ort),
            uses_ort_library=True,
        ),
        Engine(
            "FlagEmbedding",
            "BGEM3FlagModel, PyTorch fp32",
            [reference, str(PEERS / "flagembedding_peer.py")],
            require(paths.reference_python, "set --reference-python"),
        ),
        Engine(
            "onnxruntime-python",
            "onnxruntime.InferenceSession on the same export, numpy post-processing",
            [reference, str(PEERS / "onnxruntime_peer.py")],
            require(paths.reference_python, "set --reference-python"),
        ),
        Engine(
            "fastembed-rs",
            "fastembed 7.7.0 Bgem3Embedding on the same export",
            [str(paths.fastembed_peer)],
            first_missing(
                require(
                    paths.fastembed_peer,
                    "run cargo build --release in bench/peers/fastembed-peer",
                ),
                ort,
            ),
            uses_ort_library=True,
        ),
        Engine(
            "bge-m3-lite",
            "bge-m3-lite 0.6.2, its fused graph built from the same weights",
            [*lite_peer, "--backbone", str(fused), *lite_cache],
            first_missing(require(raw, export_fix), require(fused, fuse_fix)),
        ),
        Engine(
            "bge-m3-lite-raw",
            "bge-m3-lite 0.6.2 on the unfused backbone export",
            [*lite_peer, "--backbone", str(raw), *lite_cache],
            require(raw, export_fix),
        ),
    ]
