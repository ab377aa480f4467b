"""Compare bge-m3 with its peers on the same model and texts, in one run.

Generates the workload texts with the model's tokenizer.json (bench/workloads.py)
and measures the machine's fp32 SGEMM rate. Then it runs every selected engine on
every selected workload, one process at a time, because the 8192-token workload
needs up to about 20 GB in engines without fused attention. Workloads are the outer
loop, so each workload's engines run close together in time. Writes the raw results
as JSON, a Markdown section and a PNG plot.

Run it with bench/.venv (bash bench/setup.sh): it needs tokenizers, numpy,
threadpoolctl and matplotlib. FlagEmbedding and the onnxruntime Python peer run in
the reference environment given by --reference-python (python/setup.sh).

    bench/.venv/bin/python bench/run.py --model models/bench-bge-m3
    bench/.venv/bin/python bench/run.py --model tests/fixtures/tiny-bge-m3 --quick
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import shlex
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import engines as engine_list  # noqa: E402
import flops  # noqa: E402
import report  # noqa: E402
import workloads as workload_list  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    names = [workload.name for workload in workload_list.WORKLOADS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=pathlib.Path,
                        help="three-output export and FlagEmbedding checkpoint in one folder")
    parser.add_argument("--lite-backbone", type=pathlib.Path,
                        help="backbone-only export for bge-m3-lite "
                             "(default: models/NAME-backbone in this checkout)")
    parser.add_argument("--engines", default="bge-m3,FlagEmbedding,onnxruntime-python,"
                        "fastembed-rs,bge-m3-lite",
                        help="comma-separated engines, or 'all' (adds bge-m3-lite-raw)")
    parser.add_argument("--workloads", default=",".join(names),
                        help=f"comma-separated workloads of {', '.join(names)}")

    parser.add_argument("--quick", action="store_true",
                        help="few texts and calls, 1 repetition: a smoke test")
    parser.add_argument("--repeat", type=int, default=2,
                        help="timed repetitions of each throughput workload (quick: 1)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed one-text calls before timing (latency: at least 5)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads per engine")

    parser.add_argument("--reference-python", type=pathlib.Path,
                        default=os.environ.get("BENCH_REFERENCE_PYTHON",
                                               REPO_ROOT / "python" / ".venv" / "bin" / "python"),
                        help="Python with FlagEmbedding and onnxruntime "
                             "(env BENCH_REFERENCE_PYTHON)")
    parser.add_argument("--bge-m3", type=pathlib.Path,
                        default=REPO_ROOT / "target" / "release" / "bge-m3")
    parser.add_argument("--fastembed-peer", type=pathlib.Path,
                        default=REPO_ROOT / "bench" / "peers" / "fastembed-peer" / "target"
                        / "release" / "fastembed-peer")

    parser.add_argument("--output-dir", type=pathlib.Path,
                        help="where results go (default: docs/, or bench/work/quick with --quick)")
    parser.add_argument("--sgemm-size", type=int, default=4096, help="matrix side of the SGEMM")
    parser.add_argument("--sgemm-runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per engine run")
    parser.add_argument("--report-from", type=pathlib.Path,
                        help="write the outputs from saved results (such as the "
                             "partial-results.json of a stopped run) instead of running")
    parser.add_argument("--sgemm-from", type=pathlib.Path,
                        help="with --report-from: also use the SGEMM rates of these results")
    return parser.parse_args()


def machine_snapshot() -> dict:
    """Date, 1/5/15-minute load averages and the busiest processes right now."""
    busiest = subprocess.run(
        ["ps", "-eo", "pcpu,rss,comm", "--sort=-pcpu", "--no-headers"],
        capture_output=True, text=True, check=False,
    ).stdout.splitlines()[:8]
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "busiest_processes": [line.strip() for line in busiest],
    }


def cpu_model() -> str:
    output = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    for line in output.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> float:
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return 0.0


def git_commit() -> str:
    result = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def select(items: list, names: str, kind: str) -> list:
    available = {item.name: item for item in items}
    if names == "all":
        return items
    chosen = []
    for name in names.split(","):
        if name not in available:
            raise SystemExit(f"error: unknown {kind} {name!r}; choose from {', '.join(available)}")
        chosen.append(available[name])
    return chosen


def engine_arguments(workload, args, input_path: pathlib.Path) -> list[str]:
    """Return the bge-m3 bench options for one workload."""
    repeat = 1 if args.quick else args.repeat
    warmup = max(args.warmup, 5) if workload.mode == "latency" else args.warmup
    # Each mode gets only its own count, because bge-m3 bench warns of the other one.
    count = (["--calls", str(max(workload.calls, 1))] if workload.mode == "latency"
             else ["--repeat", str(repeat)])
    return [
        "--model", str(args.model), "--input", str(input_path),
        "--outputs", workload.outputs, "--mode", workload.mode, *count,
        "--warmup", str(warmup), "--max-length", "8192",
        "--token-budget", str(workload.token_budget), "--threads", str(args.threads),
    ]


def engine_environment(args, engine) -> dict:
    env = dict(os.environ)
    threads = str(args.threads)
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    env["CUDA_VISIBLE_DEVICES"] = ""
    if engine.uses_ort_library:
        env["ORT_DYLIB_PATH"] = str(args.ort_library)
    return env


def run_engine(engine, workload, args, input_path: pathlib.Path, log_dir: pathlib.Path) -> dict:
    """Run one engine on one workload in its own process and return its result."""
    if engine.missing:
        print(f"  {engine.name}: skipped, {engine.missing}", file=sys.stderr)
        return {"status": "skipped", "reason": engine.missing}
    command = engine.command + engine_arguments(workload, args, input_path)

    log_path = log_dir / f"{workload.name}-{engine.name}.log"
    load_before = os.getloadavg()[0]
    busiest_before = machine_snapshot()["busiest_processes"][:4]
    cpu_before = children_cpu_seconds()
    start = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log,
                                   env=engine_environment(args, engine), text=True)
        try:
            stdout, _ = process.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return {"status": "timed out", "reason": f"timed out after {args.timeout:.0f} s",
                    "command": shlex.join(command)}

    wall_seconds = time.monotonic() - start
    cpu_seconds = children_cpu_seconds() - cpu_before
    result = {
        "command": shlex.join(command),
        "wall_seconds": wall_seconds,
        # CPU time the engine's process got over its whole run (load included), as a
        # share of the CPUs it may use. Below 1, other work took the cores or the
        # engine left one idle in single-threaded steps.
        "cpu_seconds": cpu_seconds,
        "cpu_share": cpu_seconds / wall_seconds / args.threads,
        "busiest_processes_before": busiest_before,
        "load_1min_before": load_before,
        "load_1min_after": os.getloadavg()[0],
        "log": str(log_path),
    }
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        reason = f"exit code {process.returncode}: " + " | ".join(tail)
        print(f"  {engine.name}: failed, {reason}", file=sys.stderr)
        return dict(result, status="failed", reason=reason)
    result.update(status="ok", report=json.loads(lines[-1]))
    return result


def children_cpu_seconds() -> float:
    """Return the user and system CPU seconds of all reaped child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def describe_timing(workload, args) -> str:
    if workload.mode == "latency":
        return f"{workload.calls} calls of one text after {max(args.warmup, 5)} untimed ones"
    repeat = 1 if args.quick else args.repeat
    return f"all texts in one call, best of {repeat}, after {args.warmup} untimed one-text call"


def run_workloads(args, engines, workloads, folders, results: dict) -> list[dict]:
    """Run every engine on every workload, saving `results` so far after each run."""
    config = json.loads((args.model / "config.json").read_text())
    arch = flops.Architecture.from_config(config)
    maker = workload_list.TextMaker(args.model / "tokenizer.json")
    done = results["workloads"]
    for workload in workloads:
        input_path = workload_list.write_texts(workload, maker, folders["texts"])
        lengths = workload.lengths()
        tokens = sum(lengths)
        every = workload.outputs == "all"
        entry = {
            "name": workload.name,
            "description": workload.description,
            "texts": workload.texts,
            "tokens": tokens,
            "outputs": workload.outputs,
            "mode": workload.mode,
            "token_budget": workload.token_budget,
            "timing": describe_timing(workload, args),
            "flops_per_pass": sum(flops.text_flops(arch, length, every) for length in lengths),
            "runs": {},
        }
        print(f"{workload.name}: {workload.description}", file=sys.stderr)
        for engine in engines:
            run = run_engine(engine, workload, args, input_path, folders["logs"])
            counted = run.get("report", {}).get("tokens")
            if counted is not None and counted != tokens:
                run.setdefault("report", {})["notes"].append(
                    f"the engine's tokenizer counted {counted} tokens, not {tokens}")
            if "report" in run:
                print(f"  {engine.name}: {summarize(run['report'])}", file=sys.stderr)
            entry["runs"][engine.name] = run
            if entry not in done:
                done.append(entry)
            partial = dict(results, machine=machine_facts(results["start"], machine_snapshot()))
            (folders["logs"] / "partial-results.json").write_text(json.dumps(partial, indent=1))
    return done


def arch_summary(model: pathlib.Path) -> str:
    config = json.loads((model / "config.json").read_text())
    return (f"{model.name}: {config['num_hidden_layers']} layers, hidden "
            f"{config['hidden_size']}, vocabulary {config['vocab_size']}")


def summarize(engine_report: dict) -> str:
    if engine_report["mode"] == "latency":
        speed = f"p50 {engine_report['p50_ms']:.1f} ms, p99 {engine_report['p99_ms']:.1f} ms"
    else:
        speed = f"{engine_report['tokens_per_second']:.1f} tokens/s"
    return f"{speed}, peak RSS {engine_report['peak_rss_mib']:.0f} MiB"


def main() -> None:
    args = parse_args()
    if args.report_from:
        results = json.loads(args.report_from.read_text())
        if args.sgemm_from:
            other = json.loads(args.sgemm_from.read_text())
            results["sgemm_other_run"] = report.best_sgemm(other)
        report.derive(results)
        write_outputs(results, args.output_dir or REPO_ROOT / "docs")
        return
    if args.model is None:
        raise SystemExit("error: --model is required unless --report-from is given")
    args.model = args.model.resolve()
    if args.lite_backbone is None:
        args.lite_backbone = REPO_ROOT / "models" / f"{args.model.name}-backbone"
    args.ort_library = pathlib.Path(
        os.environ.get("ORT_DYLIB_PATH", REPO_ROOT / ".ort" / "lib" / "libonnxruntime.so"))
    output_dir = args.output_dir or (
        REPO_ROOT / "bench" / "work" / "quick" if args.quick else REPO_ROOT / "docs")
    work = REPO_ROOT / "bench" / "work"
    folders = {"texts": work / "texts", "logs": work / "logs"}
    folders["logs"].mkdir(parents=True, exist_ok=True)

    paths = engine_list.Paths(
        model=args.model, lite_backbone=args.lite_backbone.resolve(), bge_m3=args.bge_m3,
        fastembed_peer=args.fastembed_peer, reference_python=args.reference_python,
        bench_python=pathlib.Path(sys.executable), work=work, ort_library=args.ort_library,
    )
    engines = select(engine_list.all_engines(paths), args.engines, "engine")
    workloads = select(workload_list.WORKLOADS, args.workloads, "workload")
    if args.quick:
        workloads = [workload_list.quick(workload) for workload in workloads]

    start = machine_snapshot()
    print(f"load averages at the start: {start['load']}", file=sys.stderr)
    sgemm = flops.measure_sgemm(sys.executable, args.sgemm_size, args.threads, args.sgemm_runs)
    print(f"SGEMM: {sgemm['gflops_best']:.1f} GFLOP/s", file=sys.stderr)
    results = {
        "command": shlex.join([pathlib.Path(sys.executable).name, *sys.argv]),
        "commit": git_commit(),
        "model": str(args.model),
        "model_architecture": arch_summary(args.model),
        "threads": args.threads,
        "quick": args.quick,
        "engines": [engine.name for engine in engines],
        "engine_descriptions": {engine.name: engine.description for engine in engines},
        "sgemm": sgemm,
        "start": start,
        "workloads": [],
    }
    run_workloads(args, engines, workloads, folders, results)
    # Measured again at the end: on a shared machine either measurement may have run
    # while other work took the cores, and the fractions use the better one.
    results["sgemm_end"] = flops.measure_sgemm(
        sys.executable, args.sgemm_size, args.threads, args.sgemm_runs)
    print(f"SGEMM at the end: {results['sgemm_end']['gflops_best']:.1f} GFLOP/s", file=sys.stderr)
    results["machine"] = machine_facts(start, machine_snapshot())
    report.derive(results)
    write_outputs(results, output_dir)


def machine_facts(start: dict, end: dict) -> dict:
    return {
        "cpu": cpu_model(), "cpus": os.cpu_count(), "memory_gib": memory_gib(),
        "kernel": platform.release(),
        "date_start": start["date"], "date_end": end["date"],
        "load_start": start["load"], "load_end": end["load"],
        "busiest_processes_start": start["busiest_processes"],
        "busiest_processes_end": end["busiest_processes"],
    }


def write_outputs(results: dict, output_dir: pathlib.Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": output_dir / "benchmark-results.json",
        "markdown": output_dir / "benchmark-results.md",
        "plot": output_dir / "benchmark-throughput.png",
    }
    paths["json"].write_text(json.dumps(results, indent=1) + "\n")
    paths["markdown"].write_text(report.markdown(results))
    report.plot(results, paths["plot"])
    for path in paths.values():
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
