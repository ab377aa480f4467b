//! `bge-m3 bench`: time one workload on a model loaded once, print one JSON object.
//!
//! The model is loaded once, and the load time and the resident memory after the
//! load are recorded. Then one workload runs on the texts of a JSONL file:
//!
//! - throughput: all texts in one `embed` call, repeated `--repeat` times; best and
//!   median seconds, tokens/s and texts/s (both from the best repetition);
//! - latency: one text per `embed` call, `--calls` calls cycling through the texts;
//!   p50 and p99 milliseconds.
//!
//! Memory comes from `/proc/self/status`: `VmRSS` after the load, and `VmHWM` (peak
//! resident memory) of the load and of the workload. The peak is reset after the
//! load by writing `5` to `/proc/self/clear_refs`, so the workload's peak does not
//! include the load's transient allocations. `bench/run.py` runs the same command
//! line against other BGE-M3 engines and expects this JSON shape from each of them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use bge_m3::{Embedder, EmbedderOptions, Outputs};
use serde::Serialize;

use crate::input::{read_texts, InputFormat};
use crate::model_source::ModelArgs;

/// Arguments of `bge-m3 bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// Workload texts, one JSON object {"text": ...} per line.
    #[arg(long)]
    input: PathBuf,

    /// Outputs to compute: all three, or the dense vector only.
    #[arg(long, value_enum, default_value_t = OutputChoice::All)]
    outputs: OutputChoice,

    /// Throughput (all texts in one call) or latency (one text per call).
    #[arg(long, value_enum, default_value_t = Mode::Throughput)]
    mode: Mode,

    /// Timed repetitions of the whole workload (throughput mode) [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: Option<u32>,

    /// Timed calls of one text each (latency mode) [default: 100].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    calls: Option<u32>,

    /// Untimed calls of one text each before timing starts, so that ONNX Runtime's
    /// first-run allocations are not timed.
    #[arg(long, default_value_t = 1)]
    warmup: u32,

    /// Max length in tokens, <s> and </s> included; longer texts are truncated.
    #[arg(long, default_value_t = bge_m3::DEFAULT_MAX_LENGTH, value_parser = bge_m3_server::flags::max_length)]
    max_length: usize,

    /// Max padded tokens in one model call (texts × longest text).
    #[arg(long, default_value_t = bge_m3::DEFAULT_TOKEN_BUDGET, value_parser = bge_m3_server::flags::token_budget)]
    token_budget: usize,

    /// ONNX Runtime intra-op threads (default: one per physical core available, and 0 lets
    /// ONNX Runtime choose).
    #[arg(long, env = "BGE_M3_THREADS")]
    threads: Option<usize>,

    /// Whether ONNX Runtime's intra-op threads spin while they wait for work.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    spinning: bool,
}

/// Outputs a workload computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputChoice {
    /// Dense, sparse and ColBERT.
    All,
    /// The dense vector only.
    Dense,
}

impl OutputChoice {
    fn outputs(self) -> Outputs {
        match self {
            Self::All => Outputs::ALL,
            Self::Dense => Outputs {
                dense: true,
                sparse: false,
                colbert: false,
            },
        }
    }
}

/// Timing mode of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// All texts in one call, repeated.
    Throughput,
    /// One text per call.
    Latency,
}

/// The JSON object printed on stdout. Peers print the same fields.
#[derive(Debug, Serialize)]
struct Report {
    engine: &'static str,
    engine_version: &'static str,
    mode: Mode,
    outputs: OutputChoice,
    /// ONNX Runtime intra-op threads (0: ONNX Runtime's default).
    threads: usize,
    token_budget: usize,
    spinning: bool,
    max_length: usize,
    texts: usize,
    /// Tokens of one pass over the texts, `<s>` and `</s>` included, padding excluded.
    tokens: usize,
    load_seconds: f64,
    rss_after_load_mib: f64,
    /// Peak resident memory of the whole process, load included.
    peak_rss_mib: f64,
    /// Peak resident memory during the workload minus the resident memory after the load.
    peak_rss_above_load_mib: f64,
    /// Seconds of each timed repetition (throughput) or of each call (latency).
    seconds: Vec<f64>,
    best_seconds: f64,
    median_seconds: f64,
    tokens_per_second: f64,
    texts_per_second: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    notes: Vec<String>,
}

/// Runs `bge-m3 bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let texts = read_texts(&args.input, InputFormat::JsonLines)?;
    if texts.is_empty() {
        bail!("the input file {} contains no texts", args.input.display());
    }

    let folder = args.model.resolve()?;
    let start = Instant::now();
    let embedder = Embedder::try_new(&folder, options(args))
        .with_context(|| format!("failed to load the model {}", args.model.value()))?;
    let load_seconds = start.elapsed().as_secs_f64();
    let load_memory = MemoryStatus::read()?;
    let memory_peak_reset = reset_peak_rss();

    warn_of_unused_count(args);
    let repeat = args.repeat.unwrap_or(DEFAULT_REPEAT);
    let calls = args.calls.unwrap_or(DEFAULT_CALLS);
    // In latency mode a text that no call reaches is left out of the report, so that
    // its tokens and texts/s describe the texts that were timed.
    let texts = match args.mode {
        Mode::Throughput => &texts[..],
        Mode::Latency => &texts[..texts.len().min(calls as usize)],
    };
    let outputs = args.outputs.outputs();
    for index in 0..args.warmup as usize {
        embed(&embedder, &texts[index % texts.len()..][..1], outputs)?;
    }
    let (seconds, tokens, tokens_per_call) = match args.mode {
        Mode::Throughput => {
            let (seconds, tokens) = time_throughput(&embedder, texts, outputs, repeat)?;
            (seconds, tokens, tokens as f64)
        }
        Mode::Latency => time_latency(&embedder, texts, outputs, calls)?,
    };
    let run_memory = MemoryStatus::read()?;

    let mut notes = Vec::new();
    if !memory_peak_reset {
        notes.push("the peak RSS could not be reset after the load".to_owned());
    }
    let report = Report::new(args, texts, tokens, tokens_per_call, seconds)
        .with_threads(embedder.options().threads)
        .with_memory(load_seconds, &load_memory, &run_memory)
        .with_notes(notes);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report).context("failed to write the report")?;
    out.write_all(b"\n").context("failed to write the report")?;
    Ok(ExitCode::SUCCESS)
}

const DEFAULT_REPEAT: u32 = 3;
const DEFAULT_CALLS: u32 = 100;

/// Warns of `--repeat` in latency mode and `--calls` in throughput mode, which the
/// other mode uses.
fn warn_of_unused_count(args: &BenchArgs) {
    match args.mode {
        Mode::Throughput if args.calls.is_some() => {
            tracing::warn!("--calls applies to --mode latency only; ignored");
        }
        Mode::Latency if args.repeat.is_some() => {
            tracing::warn!("--repeat applies to --mode throughput only; ignored");
        }
        _ => {}
    }
}

fn options(args: &BenchArgs) -> EmbedderOptions {
    let mut options = EmbedderOptions::new()
        .with_max_length(args.max_length)
        .with_token_budget(args.token_budget)
        .with_spinning(args.spinning)
        .with_outputs(args.outputs.outputs());
    if let Some(threads) = args.threads {
        options = options.with_threads(threads);
    }
    options
}

/// Embeds `texts` in one call and returns the tokens given to the model.
fn embed(embedder: &Embedder, texts: &[String], outputs: Outputs) -> anyhow::Result<usize> {
    let embeddings = embedder
        .embed_with(texts, outputs, &mut |_| {})
        .context("failed to embed the workload")?;
    if embeddings.len() != texts.len() {
        bail!(
            "the engine returned {} embeddings for {} texts",
            embeddings.len(),
            texts.len()
        );
    }
    Ok(embeddings.iter().map(|embedding| embedding.tokens).sum())
}

fn time_throughput(
    embedder: &Embedder,
    texts: &[String],
    outputs: Outputs,
    repeat: u32,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut seconds = Vec::new();
    let mut tokens = 0;
    for _ in 0..repeat {
        let start = Instant::now();
        tokens = embed(embedder, texts, outputs)?;
        seconds.push(start.elapsed().as_secs_f64());
    }
    Ok((seconds, tokens))
}

/// Times `calls` calls of one text each, cycling through the texts. Returns the
/// seconds of each call, the tokens of one pass over all texts and the mean tokens
/// of a call (calls may reach some texts once more than others).
fn time_latency(
    embedder: &Embedder,
    texts: &[String],
    outputs: Outputs,
    calls: u32,
) -> anyhow::Result<(Vec<f64>, usize, f64)> {
    let mut seconds = Vec::new();
    let mut tokens_per_text = vec![0; texts.len()];
    let mut call_tokens = 0;
    for call in 0..calls as usize {
        let index = call % texts.len();
        let start = Instant::now();
        tokens_per_text[index] = embed(embedder, &texts[index..=index], outputs)?;
        seconds.push(start.elapsed().as_secs_f64());
        call_tokens += tokens_per_text[index];
    }
    let tokens_per_call = call_tokens as f64 / f64::from(calls);
    Ok((seconds, tokens_per_text.iter().sum(), tokens_per_call))
}

impl Report {
    /// Builds the report from the timings. `tokens_per_call` is the tokens of one
    /// repetition (throughput) or the mean tokens of one call (latency).
    fn new(
        args: &BenchArgs,
        texts: &[String],
        tokens: usize,
        tokens_per_call: f64,
        seconds: Vec<f64>,
    ) -> Self {
        let mut sorted = seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let best_seconds = sorted[0];
        let median_seconds = percentile(&sorted, 50.0);
        // Rates are per call: a repetition of all texts (throughput, the best one) or
        // one text (latency, the median call).
        let (call_seconds, texts_per_call) = match args.mode {
            Mode::Throughput => (best_seconds, texts.len() as f64),
            Mode::Latency => (median_seconds, 1.0),
        };
        let latency = args.mode == Mode::Latency;
        Self {
            engine: "bge-m3",
            engine_version: env!("CARGO_PKG_VERSION"),
            mode: args.mode,
            outputs: args.outputs,
            threads: 0,
            token_budget: args.token_budget,
            spinning: args.spinning,
            max_length: args.max_length,
            texts: texts.len(),
            tokens,
            load_seconds: 0.0,
            rss_after_load_mib: 0.0,
            peak_rss_mib: 0.0,
            peak_rss_above_load_mib: 0.0,
            best_seconds,
            median_seconds,
            tokens_per_second: tokens_per_call / call_seconds,
            texts_per_second: texts_per_call / call_seconds,
            p50_ms: latency.then_some(median_seconds * 1e3),
            p99_ms: latency.then(|| percentile(&sorted, 99.0) * 1e3),
            seconds,
            notes: Vec::new(),
        }
    }

    fn with_memory(
        mut self,
        load_seconds: f64,
        after_load: &MemoryStatus,
        after_run: &MemoryStatus,
    ) -> Self {
        self.load_seconds = load_seconds;
        self.rss_after_load_mib = mib(after_load.rss_kib);
        self.peak_rss_mib = mib(after_load.peak_rss_kib.max(after_run.peak_rss_kib));
        self.peak_rss_above_load_mib =
            mib(after_run.peak_rss_kib.saturating_sub(after_load.rss_kib));
        self
    }

    fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    fn with_notes(mut self, notes: Vec<String>) -> Self {
        self.notes = notes;
        self
    }
}

/// Returns the nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], percent: f64) -> f64 {
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Resident memory figures of this process, in KiB, from `/proc/self/status`.
struct MemoryStatus {
    /// `VmRSS`: resident memory now.
    rss_kib: u64,
    /// `VmHWM`: peak resident memory since the start or the last reset.
    peak_rss_kib: u64,
}

impl MemoryStatus {
    fn read() -> anyhow::Result<Self> {
        let status = std::fs::read_to_string("/proc/self/status")
            .context("failed to read /proc/self/status (bge-m3 bench needs Linux)")?;
        Ok(Self {
            rss_kib: status_field(&status, "VmRSS")?,
            peak_rss_kib: status_field(&status, "VmHWM")?,
        })
    }
}

/// Parses a `Name:   123 kB` line of `/proc/self/status`.
fn status_field(status: &str, name: &str) -> anyhow::Result<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("/proc/self/status has no {name} field in kB"))
}

/// Resets `VmHWM` to the current resident memory (Linux 4.0 and later). Returns
/// whether the kernel accepted the reset.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
    }

    #[test]
    fn status_field_parses_kib() {
        let status = "Name:\tbge-m3\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_field(status, "VmRSS").unwrap(), 1024);
        assert_eq!(status_field(status, "VmHWM").unwrap(), 2048);
        assert!(status_field(status, "VmSwap").is_err());
    }
}
