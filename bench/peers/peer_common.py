"""The `bge-m3 bench` command line and JSON report, shared by the Python peers.

Each peer loads its engine once, runs one workload and prints the JSON object that
`bge-m3 bench` prints (see crates/bge-m3-cli/src/bench.rs), so bench/run.py drives
every engine the same way. Memory comes from /proc/self/status: VmRSS after the
load, and VmHWM, reset after the load through /proc/self/clear_refs so that the
workload's peak excludes the load's transient allocations.

A peer supplies an `Engine`: `load()` builds the model, `token_counts(texts)` counts
each text's tokens (<s> and </s> included, after truncation) with the engine's own
tokenizer, and `embed(texts, batch_size)` embeds in one call and returns the number
of results.
"""

import argparse
import json
import math
import pathlib
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol


class Engine(Protocol):
    """One BGE-M3 implementation behind the bench command line."""

    name: str
    version: str
    notes: list[str]
    # Whether `embed` groups texts by count (`batch_size`) rather than by token budget.
    batches_by_count: bool

    def load(self) -> None: ...

    def token_counts(self, texts: list[str]) -> list[int]: ...

    def embed(self, texts: list[str], batch_size: int) -> int: ...


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None):
    """Parse the options of `bge-m3 bench`, plus a peer's own when `extra` adds them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=pathlib.Path, required=True, help="model folder")
    parser.add_argument("--input", type=pathlib.Path, required=True, help="JSONL workload")
    parser.add_argument("--outputs", choices=["all", "dense"], default="all")
    parser.add_argument("--mode", choices=["throughput", "latency"], default="throughput")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (throughput)")
    parser.add_argument("--calls", type=int, default=100, help="timed calls (latency)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed one-text calls first")
    parser.add_argument("--max-length", type=int, default=8192, help="tokens, <s> and </s> included")
    parser.add_argument("--token-budget", type=int, default=16384, help="padded tokens per model call")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def read_texts(path: pathlib.Path) -> list[str]:
    """Read {"text": ...} records, splitting on \\n only (texts may hold U+2028)."""
    content = path.read_text(encoding="utf-8")
    return [json.loads(line)["text"] for line in content.split("\n") if line]


@dataclass
class Memory:
    """VmRSS and VmHWM of this process, in KiB."""

    rss_kib: int
    peak_kib: int

    @classmethod
    def read(cls) -> "Memory":
        fields = {}
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
        return cls(rss_kib=fields["VmRSS"], peak_kib=fields["VmHWM"])


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0 and later); return whether it worked."""
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def percentile(sorted_values: list[float], percent: float) -> float:
    """Nearest-rank percentile, as bge-m3 bench computes it."""
    rank = math.ceil(percent / 100 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


@dataclass
class Timings:
    """Seconds of each repetition or call, and the tokens of one pass over the texts."""

    seconds: list[float] = field(default_factory=list)
    tokens: int = 0


def time_workload(engine: Engine, args, texts: list[str], batch_size: int) -> list[float]:
    """Time the throughput or latency workload; return the seconds of each repetition or call."""
    seconds = []
    if args.mode == "throughput":
        for _ in range(max(args.repeat, 1)):
            start = time.perf_counter()
            count = engine.embed(texts, batch_size)
            seconds.append(time.perf_counter() - start)
            check_count(count, len(texts))
    else:
        for call in range(max(args.calls, 1)):
            text = texts[call % len(texts)]
            start = time.perf_counter()
            count = engine.embed([text], 1)
            seconds.append(time.perf_counter() - start)
            check_count(count, 1)
    return seconds


def check_count(count: int, expected: int) -> None:
    if count != expected:
        raise SystemExit(f"error: the engine returned {count} embeddings for {expected} texts")


def run(engine: Engine, args) -> None:
    """Load the engine, run the workload and print the JSON report."""
    texts = read_texts(args.input)
    if not texts:
        raise SystemExit(f"error: the input file {args.input} contains no texts")

    # The engine's modules are imported before this point: the load time covers
    # building the model only, as it does for bge-m3 bench.
    start = time.perf_counter()
    engine.load()
    load_seconds = time.perf_counter() - start
    after_load = Memory.read()
    peak_reset = reset_peak_rss()

    lengths = engine.token_counts(texts)
    batch_size = max(args.token_budget // max(max(lengths), 1), 1)
    for index in range(args.warmup):
        engine.embed([texts[index % len(texts)]], 1)
    timings = Timings(time_workload(engine, args, texts, batch_size), sum(lengths))
    after_run = Memory.read()

    notes = list(engine.notes)
    if engine.batches_by_count:
        notes.insert(0, f"batch size {batch_size} texts (token budget / longest text)")
    if not peak_reset:
        notes.append("the peak RSS could not be reset after the load")
    report = build_report(engine, args, texts, timings, notes)
    report.update(
        load_seconds=load_seconds,
        rss_after_load_mib=after_load.rss_kib / 1024,
        peak_rss_mib=max(after_load.peak_kib, after_run.peak_kib) / 1024,
        peak_rss_above_load_mib=max(after_run.peak_kib - after_load.rss_kib, 0) / 1024,
    )
    print(json.dumps(report))


def build_report(engine: Engine, args, texts: list[str], timings: Timings, notes: list[str]) -> dict:
    ordered = sorted(timings.seconds)
    best = ordered[0]
    median = percentile(ordered, 50)
    latency = args.mode == "latency"
    # In latency mode one pass over the texts is one call per text.
    pass_seconds = median * len(texts) if latency else best
    return {
        "engine": engine.name,
        "engine_version": engine.version,
        "mode": args.mode,
        "outputs": args.outputs,
        "threads": args.threads,
        "token_budget": args.token_budget,
        "max_length": args.max_length,
        "texts": len(texts),
        "tokens": timings.tokens,
        "seconds": timings.seconds,
        "best_seconds": best,
        "median_seconds": median,
        "tokens_per_second": timings.tokens / pass_seconds,
        "texts_per_second": len(texts) / pass_seconds,
        "p50_ms": median * 1e3 if latency else None,
        "p99_ms": percentile(ordered, 99) * 1e3 if latency else None,
        "notes": notes,
    }
