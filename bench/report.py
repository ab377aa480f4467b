"""Figures derived from the raw results, the Markdown section and the plot."""

import pathlib

OURS = "bge-m3"


def derive(results: dict) -> None:
    """Add model FLOP/s, the SGEMM fraction and the ratios to every peer, in place.

    A ratio above 1 means bge-m3 is faster: bge-m3's tokens/s over the peer's for
    throughput workloads, the peer's p50 over bge-m3's for latency.
    """
    sgemm = best_sgemm(results)["gflops_best"] * 1e9
    for workload in results["workloads"]:
        for run in workload["runs"].values():
            report = run.get("report")
            if report is None:
                continue
            flops = workload["flops_per_pass"]
            seconds = report["best_seconds"] if workload["mode"] == "throughput" else None
            if seconds is None:
                seconds = report["median_seconds"] * workload["texts"]
            report["model_gflops_per_second"] = flops / seconds / 1e9
            report["sgemm_fraction"] = flops / seconds / sgemm
        workload["ratios"] = ratios(workload)


SGEMM_KEYS = {
    "sgemm": "start of the run",
    "sgemm_end": "end of the run",
    "sgemm_other_run": "another run, given with --sgemm-from",
}


def best_sgemm(results: dict) -> dict:
    """Return the fastest SGEMM measurement: a busy machine only makes SGEMM slower."""
    measured = [results[key] for key in SGEMM_KEYS if key in results]
    return max(measured, key=lambda sgemm: sgemm["gflops_best"])


def ratios(workload: dict) -> dict:
    ours = workload["runs"].get(OURS, {}).get("report")
    result = {}
    if ours is None:
        return result
    for name, run in workload["runs"].items():
        peer = run.get("report")
        if name == OURS or peer is None:
            continue
        if workload["mode"] == "throughput":
            speed = ours["tokens_per_second"] / peer["tokens_per_second"]
        else:
            speed = peer["p50_ms"] / ours["p50_ms"]
        result[name] = {
            "speed": speed,
            "peak_rss": ours["peak_rss_mib"] / peer["peak_rss_mib"],
        }
    return result


def mib(value: float) -> str:
    return f"{value:,.0f}"


def optional(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def markdown(results: dict) -> str:
    """Return the Markdown section: setup, one table per workload, ratios, notes."""
    machine = results["machine"]
    sgemm = best_sgemm(results)
    measured = [
        f"{results[key]['gflops_best']:.1f} GFLOP/s "
        + ("in " if key == "sgemm_other_run" else "at the ") + label
        for key, label in SGEMM_KEYS.items()
        if key in results
    ]
    lines = [
        f"Run of {machine['date_start']} to {machine['date_end']} on {machine['cpu']} "
        f"({machine['cpus']} CPUs, {machine['memory_gib']:.0f} GiB), "
        f"{results['threads']} threads per engine.",
        f"Load averages (1, 5, 15 min): {machine['load_start']} at the start, "
        f"{machine['load_end']} at the end.",
        f"Command: `{results['command']}` (commit {results['commit']}).",
        f"Model: {results['model_architecture']}.",
        "",
        "Busiest processes at the start (%CPU, RSS KiB, name): "
        + "; ".join(machine["busiest_processes_start"][:5]) + ".",
        "At the end: " + "; ".join(machine["busiest_processes_end"][:5]) + ".",
        "",
        f"fp32 SGEMM: {sgemm['gflops_best']:.1f} GFLOP/s, the fastest of "
        + ", ".join(measured)
        + f" (numpy {sgemm['numpy']}, {sgemm['size']}² matmul, {sgemm['threads']} threads, "
        f"best of {sgemm['runs']} each).",
        "",
    ]
    for workload in results["workloads"]:
        lines += workload_table(workload)
    lines += ratio_table(results)
    return "\n".join(lines) + "\n"


def workload_table(workload: dict) -> list[str]:
    lines = [
        f"### {workload['name']}: {workload['description']}",
        "",
        "Machine load: the 1-minute load average before and after the engine's run. "
        "CPU share: the CPU time the engine's process got (load included) over its wall "
        "time and its threads. Below 1, other work took the cores or the engine left one "
        "idle (single-threaded steps such as Python post-processing).",
        "",
        f"{workload['texts']} texts, {workload['tokens']} tokens per pass, outputs "
        f"{workload['outputs']}, token budget {workload['token_budget']}, "
        f"{workload['mode']} mode ({workload['timing']}).",
        "",
        "| engine | tokens/s | texts/s | best s | median s | p50 ms | p99 ms "
        "| SGEMM fraction | load s | RSS after load MiB | peak RSS MiB | peak above load MiB "
        "| machine load | CPU share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for name, run in workload["runs"].items():
        report = run.get("report")
        if report is None:
            lines.append(f"| {name} | {run['status']} |" + " |" * 13)
            notes.append(f"- {name}: {run.get('reason', run['status'])}")
            continue
        lines.append(
            f"| {name} | {report['tokens_per_second']:.1f} | {report['texts_per_second']:.2f} "
            f"| {report['best_seconds']:.2f} | {report['median_seconds']:.2f} "
            f"| {optional(report['p50_ms'], 2)} | {optional(report['p99_ms'], 2)} "
            f"| {report['sgemm_fraction']:.2f} | {report['load_seconds']:.1f} "
            f"| {mib(report['rss_after_load_mib'])} | {mib(report['peak_rss_mib'])} "
            f"| {mib(report['peak_rss_above_load_mib'])} "
            f"| {run['load_1min_before']:.1f} → {run['load_1min_after']:.1f} "
            f"| {run['cpu_share']:.2f} |"
        )
        if report["notes"]:
            notes.append(f"- {name}: " + "; ".join(report["notes"]))
    return lines + [""] + notes + [""]


def ratio_table(results: dict) -> list[str]:
    names = [name for name in results["engines"] if name != OURS]
    lines = [
        "### bge-m3 against each peer",
        "",
        "Speed ratio: bge-m3's tokens/s over the peer's (throughput) or the peer's p50 "
        "over bge-m3's (latency); above 1, bge-m3 is faster. Peak RSS ratio: bge-m3's "
        "over the peer's; below 1, bge-m3 needs less memory.",
        "",
        "| workload | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for workload in results["workloads"]:
        cells = []
        for name in names:
            ratio = workload["ratios"].get(name)
            cells.append(
                "" if ratio is None else f"{ratio['speed']:.2f}× speed, {ratio['peak_rss']:.2f}× RSS"
            )
        lines.append(f"| {workload['name']} | " + " | ".join(cells) + " |")
    return lines + [""]


def plot(results: dict, path: pathlib.Path) -> None:
    """Draw tokens/s per throughput workload and p50 per latency workload, by engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = results["engines"]
    throughput = [w for w in results["workloads"] if w["mode"] == "throughput"]
    latency = [w for w in results["workloads"] if w["mode"] == "latency"]
    widths = [max(len(throughput), 1) * 1.2, max(len(latency), 1) * 0.9]
    figure, axes = plt.subplots(
        1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": widths}, squeeze=False
    )
    bar_charts = [
        (axes[0][0], throughput, "tokens_per_second", "tokens/s (higher is better)"),
        (axes[0][1], latency, "p50_ms", "p50 ms per call (lower is better)"),
    ]
    for axis, workloads, field, label in bar_charts:
        draw_bars(axis, workloads, engines, field, label)
    axes[0][0].set_ylim(top=axes[0][0].get_ylim()[1] * 1.2)
    axes[0][0].legend(fontsize=8, loc="upper left", ncol=3)
    machine = results["machine"]
    figure.suptitle(
        f"{results['model_architecture']}, fp32, {results['threads']} threads, "
        f"{machine['cpu']}, {machine['date_start'][:10]}",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def draw_bars(axis, workloads: list[dict], engines: list[str], field: str, label: str) -> None:
    width = 0.8 / max(len(engines), 1)
    for number, name in enumerate(engines):
        values = []
        for workload in workloads:
            report = workload["runs"].get(name, {}).get("report")
            values.append(report[field] if report else 0.0)
        positions = [index + (number - (len(engines) - 1) / 2) * width for index in range(len(workloads))]
        axis.bar(positions, values, width, label=name)
    axis.set_xticks(range(len(workloads)), [w["name"] for w in workloads])
    axis.set_ylabel(label)
    axis.grid(axis="y", alpha=0.3)
