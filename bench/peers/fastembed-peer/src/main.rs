//! fastembed-rs 7.7's BGE-M3 path behind the `bge-m3 bench` command line.
//!
//! Loads a three-output BGE-M3 export from a path with
//! `Bgem3Embedding::try_new_from_path` (ONNX Runtime loaded at run time from
//! `ORT_DYLIB_PATH`), runs one workload and prints the JSON object that
//! `bge-m3 bench` prints, so `bench/run.py` can drive both the same way.
//!
//! fastembed batches by text count, in input order, and always computes all three
//! outputs. The token budget is turned into a batch size of
//! `token budget / longest text` (padded tokens, as the engine counts them), and a
//! dense-only request still computes all three outputs (noted in the report).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use fastembed::{Bgem3Embedding, InitOptionsUserDefined, TokenizerFiles};
use serde::Serialize;

/// The `bge-m3 bench` options, run on fastembed-rs.
#[derive(Debug, Parser)]
struct Args {
    /// Model folder: model.onnx, model.onnx_data, tokenizer.json and its configs.
    #[arg(long)]
    model: PathBuf,

    /// Workload texts, one JSON object {"text": ...} per line.
    #[arg(long)]
    input: PathBuf,

    /// Outputs requested: all three, or the dense vector only.
    #[arg(long, value_enum, default_value_t = OutputChoice::All)]
    outputs: OutputChoice,

    /// Throughput (all texts in one call) or latency (one text per call).
    #[arg(long, value_enum, default_value_t = Mode::Throughput)]
    mode: Mode,

    /// Timed repetitions of the whole workload (throughput mode).
    #[arg(long, default_value_t = 3)]
    repeat: u32,

    /// Timed calls of one text each (latency mode).
    #[arg(long, default_value_t = 100)]
    calls: u32,

    /// Untimed calls of one text each before timing starts.
    #[arg(long, default_value_t = 1)]
    warmup: u32,

    /// Max length in tokens, <s> and </s> included.
    #[arg(long, default_value_t = 8192)]
    max_length: usize,

    /// Max padded tokens in one model call; sets fastembed's batch size.
    #[arg(long, default_value_t = 16384)]
    token_budget: usize,

    /// ONNX Runtime intra-op threads (default: fastembed's, all CPUs).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum OutputChoice {
    All,
    Dense,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Throughput,
    Latency,
}

/// The JSON object of `bge-m3 bench`.
#[derive(Debug, Serialize)]
struct Report {
    engine: &'static str,
    engine_version: &'static str,
    mode: Mode,
    outputs: OutputChoice,
    threads: usize,
    token_budget: usize,
    max_length: usize,
    texts: usize,
    tokens: usize,
    load_seconds: f64,
    rss_after_load_mib: f64,
    peak_rss_mib: f64,
    peak_rss_above_load_mib: f64,
    seconds: Vec<f64>,
    best_seconds: f64,
    median_seconds: f64,
    tokens_per_second: f64,
    texts_per_second: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    notes: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let texts = read_texts(&args.input)?;
    if texts.is_empty() {
        bail!("the input file {} contains no texts", args.input.display());
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    let start = Instant::now();
    let mut model = load(&args.model, args.max_length, threads)?;
    let load_seconds = start.elapsed().as_secs_f64();
    let after_load = Memory::read()?;
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();

    let lengths = token_counts(&model, &texts)?;
    let longest = lengths.iter().copied().max().unwrap_or(1).max(1);
    let batch_size = (args.token_budget / longest).max(1);
    for index in 0..args.warmup as usize {
        embed(&mut model, &texts[index % texts.len()..][..1], 1)?;
    }
    let seconds = match args.mode {
        Mode::Throughput => {
            let mut seconds = Vec::new();
            for _ in 0..args.repeat.max(1) {
                let start = Instant::now();
                embed(&mut model, &texts, batch_size)?;
                seconds.push(start.elapsed().as_secs_f64());
            }
            seconds
        }
        Mode::Latency => {
            let mut seconds = Vec::new();
            for call in 0..args.calls.max(1) as usize {
                let index = call % texts.len();
                let start = Instant::now();
                embed(&mut model, &texts[index..=index], 1)?;
                seconds.push(start.elapsed().as_secs_f64());
            }
            seconds
        }
    };
    let after_run = Memory::read()?;

    let mut notes = vec![format!("batch size {batch_size} texts")];
    if args.outputs == OutputChoice::Dense {
        notes.push("fastembed-rs always computes all three outputs".to_owned());
    }
    if !peak_reset {
        notes.push("the peak RSS could not be reset after the load".to_owned());
    }
    let report = Report {
        engine: "fastembed-rs",
        engine_version: "7.7.0",
        mode: args.mode,
        outputs: args.outputs,
        threads,
        token_budget: args.token_budget,
        max_length: args.max_length,
        texts: texts.len(),
        tokens: lengths.iter().sum(),
        load_seconds,
        rss_after_load_mib: mib(after_load.rss_kib),
        peak_rss_mib: mib(after_load.peak_kib.max(after_run.peak_kib)),
        peak_rss_above_load_mib: mib(after_run.peak_kib.saturating_sub(after_load.rss_kib)),
        seconds: Vec::new(),
        best_seconds: 0.0,
        median_seconds: 0.0,
        tokens_per_second: 0.0,
        texts_per_second: 0.0,
        p50_ms: None,
        p99_ms: None,
        notes,
    }
    .with_times(seconds);
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn load(model_dir: &Path, max_length: usize, threads: usize) -> anyhow::Result<Bgem3Embedding> {
    let read = |name: &str| {
        let path = model_dir.join(name);
        std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))
    };
    let tokenizer_files = TokenizerFiles {
        tokenizer_file: read("tokenizer.json")?,
        config_file: read("config.json")?,
        special_tokens_map_file: read("special_tokens_map.json")?,
        tokenizer_config_file: read("tokenizer_config.json")?,
    };
    let options = InitOptionsUserDefined::new()
        .with_max_length(max_length)
        .with_intra_threads(threads);
    Bgem3Embedding::try_new_from_path(model_dir, tokenizer_files, options)
        .with_context(|| format!("fastembed failed to load {}", model_dir.display()))
}

/// Returns each text's token count with fastembed's own tokenizer (truncation set
/// at load), `<s>` and `</s>` included.
fn token_counts(model: &Bgem3Embedding, texts: &[String]) -> anyhow::Result<Vec<usize>> {
    texts
        .iter()
        .map(|text| {
            let encoding = model
                .tokenizer
                .encode(text.as_str(), true)
                .map_err(|error| anyhow::anyhow!("failed to tokenize a text: {error}"))?;
            Ok(encoding.len())
        })
        .collect()
}

fn embed(model: &mut Bgem3Embedding, texts: &[String], batch_size: usize) -> anyhow::Result<()> {
    let output = model
        .embed(texts, Some(batch_size))
        .context("fastembed failed to embed the workload")?;
    if output.dense.len() != texts.len() {
        bail!(
            "fastembed returned {} embeddings for {} texts",
            output.dense.len(),
            texts.len()
        );
    }
    Ok(())
}

fn read_texts(path: &Path) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Record {
        text: String,
    }
    let content = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    // Split on \n only: texts may hold U+2028 and other line separators.
    content
        .split('\n')
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(index, line)| {
            let record: Record = serde_json::from_str(line)
                .with_context(|| format!("input line {} is not {{\"text\": ...}}", index + 1))?;
            Ok(record.text)
        })
        .collect()
}

impl Report {
    fn with_times(mut self, seconds: Vec<f64>) -> Self {
        let mut sorted = seconds.clone();
        sorted.sort_by(f64::total_cmp);
        self.best_seconds = sorted[0];
        self.median_seconds = percentile(&sorted, 50.0);
        let pass_seconds = match self.mode {
            Mode::Throughput => self.best_seconds,
            Mode::Latency => self.median_seconds * self.texts as f64,
        };
        self.tokens_per_second = self.tokens as f64 / pass_seconds;
        self.texts_per_second = self.texts as f64 / pass_seconds;
        if self.mode == Mode::Latency {
            self.p50_ms = Some(self.median_seconds * 1e3);
            self.p99_ms = Some(percentile(&sorted, 99.0) * 1e3);
        }
        self.seconds = seconds;
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

/// `VmRSS` and `VmHWM` of `/proc/self/status`, in KiB.
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

impl Memory {
    fn read() -> anyhow::Result<Self> {
        let status = std::fs::read_to_string("/proc/self/status")
            .context("failed to read /proc/self/status")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|value| value.trim().strip_suffix("kB"))
                .and_then(|value| value.trim().parse().ok())
                .with_context(|| format!("/proc/self/status has no {name} field"))
        };
        Ok(Self {
            rss_kib: field("VmRSS")?,
            peak_kib: field("VmHWM")?,
        })
    }
}
