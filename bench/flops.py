"""The model's FLOPs per text and the machine's fp32 SGEMM rate.

FLOPs count multiply-adds as 2 and include only matrix products, which dominate the
cost. Layer norms, softmax, GELU, the embedding lookup and the dense head are left
out. For one text of L tokens (no padding) through an XLM-R encoder of n layers,
hidden size d and FFN size f, per token:

    each layer   2·(4·d² + 2·d·f)     Q, K, V and output projections, FFN up and down
               + 4·L·d                 scores Q·Kᵀ (2·L·d) and their product with V (2·L·d)
    heads        2·d² + 2·d            ColBERT linear and sparse linear, all outputs only

BGE-M3 (n = 24, d = 1024, f = 4096): 25.2 MFLOP per token per layer for the
projections, 604 MFLOP per token for all 24, plus 4·L·d = 0.52 MFLOP per layer at
L = 128 and 33.6 MFLOP per layer at L = 8192. The 2 × 567M estimate of "two FLOPs per
parameter" counts the 256M-parameter embedding table, which is a lookup, and misses
the attention term that dominates long texts.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    layers: int
    hidden: int
    ffn: int

    @classmethod
    def from_config(cls, config: dict) -> "Architecture":
        return cls(config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"])


def text_flops(arch: Architecture, tokens: int, all_outputs: bool) -> float:
    """Matrix-product FLOPs of one forward pass over one text of `tokens` tokens."""
    d = arch.hidden
    projections = 2 * (4 * d * d + 2 * d * arch.ffn)
    attention = 4 * tokens * d
    heads = 2 * d * d + 2 * d if all_outputs else 0
    return tokens * (arch.layers * (projections + attention) + heads)


SGEMM_SCRIPT = """
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
size, threads, runs = (int(value) for value in sys.argv[1:4])
rng = np.random.default_rng(0)
a = rng.standard_normal((size, size), dtype=np.float32)
b = rng.standard_normal((size, size), dtype=np.float32)
with threadpool_limits(limits=threads):
    a @ b
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - start)
    pools = threadpool_info()
best = min(seconds)
print(json.dumps({
    "size": size, "threads": threads, "runs": runs, "seconds": seconds,
    "gflops_best": 2 * size**3 / best / 1e9,
    "numpy": np.__version__,
    "blas": [{key: pool.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
             for pool in pools],
}))
"""


def measure_sgemm(python: str, size: int, threads: int, runs: int) -> dict:
    """Time a square fp32 matmul with numpy in a child process and return the best rate.

    The child runs with the thread count set through threadpoolctl and the
    environment (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS), so it measures the same
    two cores the engines get.
    """
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    result = subprocess.run(
        [python, "-c", SGEMM_SCRIPT, str(size), str(threads), str(runs)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        raise SystemExit("error: the SGEMM measurement failed")
    return json.loads(result.stdout)
