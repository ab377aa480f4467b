"""Speed and long-input memory of one ONNX Runtime session, for trying session settings.

Two measurements on a three-output export, in onnxruntime Python with all graph
optimisations, for settings that bench/run.py does not vary:

1. `speed`: the best of 2 timed runs of one batch of `--texts` texts of `--tokens`
   tokens (W1's shape by default), then the p50 of `--queries` calls on one 16-token
   text (W4's shape). It prints the process's RSS and the part of it in transparent
   huge pages after the load and at the end. Run it with and without
   `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, which makes glibc's malloc, and so ONNX
   Runtime's allocations, ask for huge pages.
2. `memory`: the peak RSS above the loaded model after each of `--runs` runs of one
   text of `--tokens` tokens. ONNX Runtime's CPU memory arena is on (the default) or
   off, or an environment arena takes its place (`--arena same-as-requested`). That
   arena grows by the size requested instead of to the next power of two. The memory
   pattern, on by default, gives each input shape one block from its second run on.
   Token ids drawn from the whole vocabulary (`--max-id 250002`) read rows all over the
   embedding table, whose mapped file pages then count in the RSS.

    bench/.venv/bin/python bench/probe_session.py speed --model models/bench-bge-m3
    bench/.venv/bin/python bench/probe_session.py memory --model models/bench-bge-m3 \
        --runs 2 --memory-pattern off
"""

import argparse
import pathlib
import statistics

import onnx
import onnxruntime as ort

from profile_ops import LAST_ID, random_feeds, session_options, timed

QUERY_TOKENS = 16
# OrtArenaCfg's arena_extend_strategy value for growing by the size requested
# (`OrtApi::CreateArenaCfg` documentation: 0 is the next power of two).
SAME_AS_REQUESTED = 1


def status_mib(field: str, path: str = "/proc/self/status") -> int:
    """Return a kB field of a /proc file in MiB."""
    for line in pathlib.Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise SystemExit(f"error: {field} not found in {path}")


def print_memory(when: str) -> None:
    rss = status_mib("Rss", "/proc/self/smaps_rollup")
    huge = status_mib("AnonHugePages", "/proc/self/smaps_rollup")
    print(f"{when}: RSS {rss} MiB, of which {huge} MiB in transparent huge pages")


def speed(args: argparse.Namespace) -> None:
    """Print one batch's tokens/s and a short query's p50 latency."""
    session = ort.InferenceSession(str(args.model / "model.onnx"), session_options(args.threads),
                                   providers=["CPUExecutionProvider"])
    print_memory("after the load")
    batch = random_feeds(args.texts, args.tokens)
    query = random_feeds(1, QUERY_TOKENS)
    session.run(None, batch)
    best = min(timed(lambda: session.run(None, batch)) for _ in range(2))
    latencies = [timed(lambda: session.run(None, query)) for _ in range(args.queries)]
    print_memory("at the end")
    print(f"{args.texts} x {args.tokens} tokens: {args.texts * args.tokens / best:.1f} tokens/s; "
          f"{QUERY_TOKENS}-token query: p50 {1000 * statistics.median(latencies):.1f} ms")


def memory_session(args: argparse.Namespace) -> ort.InferenceSession:
    options = session_options(args.threads)
    options.enable_mem_pattern = args.memory_pattern == "on"
    if args.arena == "off":
        options.enable_cpu_mem_arena = False
    elif args.arena == "same-as-requested":
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                 ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, SAME_AS_REQUESTED, -1, -1))
        options.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(str(args.model / "model.onnx"), options,
                                providers=["CPUExecutionProvider"])


def vocabulary_size(model: pathlib.Path) -> int:
    """Return the row count of the word embedding table of `model/model.onnx`."""
    graph = onnx.load(str(model / "model.onnx"), load_external_data=False).graph
    for initializer in graph.initializer:
        if initializer.name.endswith("word_embeddings.weight"):
            return initializer.dims[0]
    raise SystemExit(f"error: no word_embeddings.weight initializer in {model / 'model.onnx'}")


def memory(args: argparse.Namespace) -> None:
    """Print the peak RSS above the load after each run of one long text."""
    vocabulary = vocabulary_size(args.model)
    if args.max_id > vocabulary:
        raise SystemExit(f"error: --max-id {args.max_id} is above the vocabulary size of "
                         f"{args.model} ({vocabulary}). Pass at most {vocabulary}.")
    session = memory_session(args)
    text = random_feeds(1, args.tokens, args.max_id)
    # Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    pathlib.Path("/proc/self/clear_refs").write_text("5")
    loaded = status_mib("VmRSS")
    for run in range(1, args.runs + 1):
        seconds = timed(lambda: session.run(None, text))
        above = status_mib("VmHWM") - loaded
        print(f"arena {args.arena}, memory pattern {args.memory_pattern}, run {run}, "
              f"{args.tokens} tokens: {seconds:.1f} s, RSS after the load {loaded} MiB, "
              f"peak above the load {above} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    commands = parser.add_subparsers(dest="command", required=True)
    speed_parser = commands.add_parser("speed", help="one batch's tokens/s and a query's p50")
    speed_parser.add_argument("--texts", type=int, default=32)
    speed_parser.add_argument("--tokens", type=int, default=128,
                              help="tokens per text, <s> and </s> included")
    speed_parser.add_argument("--queries", type=int, default=40, help="timed query calls")
    memory_parser = commands.add_parser("memory", help="peak RSS above the load, one long text")
    memory_parser.add_argument("--tokens", type=int, default=8192)
    memory_parser.add_argument("--arena", choices=["on", "off", "same-as-requested"],
                               default="on", help="ONNX Runtime's CPU memory arena")
    memory_parser.add_argument("--memory-pattern", choices=["on", "off"], default="on",
                               help="ONNX Runtime's memory pattern (one block per input shape)")
    memory_parser.add_argument("--runs", type=int, default=1, help="runs of the same text")
    memory_parser.add_argument("--max-id", type=int, default=LAST_ID,
                               help="exclusive upper bound of the random token ids "
                                    "(BGE-M3's vocabulary has 250002 ids, the bench "
                                    "tokenizer 689)")
    for command in (speed_parser, memory_parser):
        command.add_argument("--model", type=pathlib.Path, required=True,
                             help="folder with model.onnx")
    args = parser.parse_args()
    if args.command == "speed":
        speed(args)
    else:
        memory(args)


if __name__ == "__main__":
    main()
