"""Time per operator type of a forward pass, and ONNX Runtime's matrix-multiply rate.

Two measurements that explain the SGEMM fractions of bench/run.py:

1. `ops`: runs one batch of `--texts` texts of `--tokens` tokens through a model with
   ONNX Runtime's profiler on (all graph optimisations, `--threads` intra-op threads)
   and prints the kernel time of each operator type in the second, timed run. `If`
   nodes are left out of the total, because their time is that of the nodes of their
   branch, which are counted themselves.
2. `matmul`: times one fp32 MatMul of each of BGE-M3's shapes in ONNX Runtime (MLAS,
   weights constant and prepacked, as in the model) and in numpy (OpenBLAS), on the
   same threads, best of 5 each. The ratio bounds the share of the numpy SGEMM rate
   that an engine on ONNX Runtime can reach.

Run it with bench/.venv (bash bench/setup.sh):

    bench/.venv/bin/python bench/profile_ops.py ops --model models/bench-bge-m3 \\
        --texts 32 --tokens 128
    bench/.venv/bin/python bench/profile_ops.py matmul --rows 4096
"""

import argparse
import collections
import json
import pathlib
import tempfile
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from threadpoolctl import threadpool_limits

# Ids of ordinary tokens in the bench model's tokenizer (the tiny test model's, 689 ids).
FIRST_ID, LAST_ID = 5, 600
BOS_ID, PAD_ID, EOS_ID = 0, 1, 2
# (inner, outer) sizes of BGE-M3's weight matrices: Q, K, V and output projections,
# FFN up, FFN down.
WEIGHT_SHAPES = [(1024, 1024), (1024, 4096), (4096, 1024)]
RUNS = 5


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def random_feeds(texts: int, tokens: int, max_id: int = LAST_ID, padding: int = 0) -> dict:
    """Return model inputs for `texts` texts of random token ids, padded to `tokens`.

    Text i is `tokens - (i % (padding + 1))` tokens long, so `padding` 0 gives texts
    of equal length and no padding, and a sorted batch of mixed lengths pads a few
    tokens per row.
    """
    rng = np.random.default_rng(0)
    ids = rng.integers(FIRST_ID, max_id, size=(texts, tokens), dtype=np.int64)
    mask = np.ones_like(ids)
    for row in range(texts):
        length = tokens - row % (padding + 1)
        ids[row, 0], ids[row, length - 1] = BOS_ID, EOS_ID
        ids[row, length:], mask[row, length:] = PAD_ID, 0
    return {"input_ids": ids, "attention_mask": mask}


def profile_ops(args: argparse.Namespace) -> None:
    """Print the kernel time of each operator type in one profiled run."""
    options = session_options(args.threads)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(pathlib.Path(tmp) / "profile")
        session = ort.InferenceSession(str(args.model / "model.onnx"), options,
                                       providers=["CPUExecutionProvider"])
        feeds = random_feeds(args.texts, args.tokens, padding=args.padding)
        session.run(None, feeds)
        start = time.perf_counter()
        session.run(None, feeds)
        seconds = time.perf_counter() - start
        events = json.loads(pathlib.Path(session.end_profiling()).read_text())

    timed_run = [event for event in events if event.get("name") == "model_run"][-1]["ts"]
    per_op: collections.Counter = collections.Counter()
    for event in events:
        if (event.get("cat") == "Node" and event["name"].endswith("_kernel_time")
                and event["ts"] >= timed_run and event["args"]["op_name"] != "If"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values())
    tokens = args.texts * args.tokens
    print(f"{args.texts} texts x {args.tokens} tokens, {args.threads} threads: "
          f"{seconds:.2f} s, {tokens / seconds:.1f} tokens/s")
    print(f"{'operator':<28} {'ms':>10} {'share':>7}")
    for name, micros in per_op.most_common():
        if micros * 1000 < total:
            break
        print(f"{name:<28} {micros / 1e3:>10.1f} {100 * micros / total:>6.1f}%")
    print(f"{'kernels, total':<28} {total / 1e3:>10.1f}")


def ort_matmul_rate(rows: int, inner: int, outer: int, threads: int) -> float:
    """GFLOP/s of ONNX Runtime's MatMul with a constant (prepacked) weight."""
    weight = np.random.default_rng(1).random((inner, outer), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, inner])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, outer])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    session = ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                   providers=["CPUExecutionProvider"])
    feeds = {"x": np.random.default_rng(2).random((rows, inner), dtype=np.float32)}
    return best_rate(lambda: session.run(None, feeds), rows, inner, outer)


def numpy_matmul_rate(rows: int, inner: int, outer: int, threads: int) -> float:
    """GFLOP/s of numpy's (OpenBLAS) fp32 matmul."""
    rng = np.random.default_rng(3)
    left = rng.random((rows, inner), dtype=np.float32)
    right = rng.random((inner, outer), dtype=np.float32)
    with threadpool_limits(threads):
        return best_rate(lambda: left @ right, rows, inner, outer)


def best_rate(call, rows: int, inner: int, outer: int) -> float:
    call()
    best = min(timed(call) for _ in range(RUNS))
    return 2 * rows * inner * outer / best / 1e9


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def matmul_rates(args: argparse.Namespace) -> None:
    """Print ONNX Runtime's and numpy's rates for each weight shape."""
    shapes = [(args.rows, inner, outer) for inner, outer in WEIGHT_SHAPES]
    shapes.append((args.sgemm_size,) * 3)
    print(f"{'rows x inner x outer':<22} {'numpy GFLOP/s':>14} {'ONNX Runtime':>13} {'ratio':>6}")
    for shape in shapes:
        numpy_rate = numpy_matmul_rate(*shape, args.threads)
        ort_rate = ort_matmul_rate(*shape, args.threads)
        label = " x ".join(str(size) for size in shape)
        print(f"{label:<22} {numpy_rate:>14.1f} {ort_rate:>13.1f} {ort_rate / numpy_rate:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    commands = parser.add_subparsers(dest="command", required=True)
    ops = commands.add_parser("ops", help="kernel time by operator type")
    ops.add_argument("--model", type=pathlib.Path, required=True, help="folder with model.onnx")
    ops.add_argument("--texts", type=int, default=32)
    ops.add_argument("--tokens", type=int, default=128, help="tokens per text, <s> and </s> included")
    ops.add_argument("--padding", type=int, default=0,
                     help="text i is tokens - (i %% (PADDING + 1)) long, as in a sorted batch of mixed lengths")
    matmul = commands.add_parser("matmul", help="MatMul rates of ONNX Runtime and numpy")
    matmul.add_argument("--rows", type=int, default=4096, help="tokens in one batch")
    matmul.add_argument("--sgemm-size", type=int, default=4096, help="side of bench/run.py's SGEMM")
    args = parser.parse_args()
    if args.command == "ops":
        profile_ops(args)
    else:
        matmul_rates(args)


if __name__ == "__main__":
    main()
