//! The `bge-m3` command: BGE-M3 embeddings from the command line.
//!
//! Data goes to stdout, messages and progress to stderr. Exit codes: 0 success,
//! 1 an input record was invalid (the output before it is complete), 2 a usage or
//! fatal error such as a model that does not load.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod download;
mod embed;
mod input;
mod model_source;
mod output;
mod progress;
mod score;
mod serve;
mod verify;

/// BGE-M3 embeddings (dense, sparse and ColBERT) on ONNX Runtime.
#[derive(Debug, Parser)]
#[command(name = "bge-m3", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Embed texts, one per input line, and write one JSON object per text.
    Embed(embed::EmbedArgs),
    /// Score queries against passages: dense, sparse, ColBERT and combined scores.
    Score(score::ScoreArgs),
    /// Compare the engine with a FlagEmbedding reference dump (python/dump_reference.py).
    Verify(verify::VerifyArgs),
    /// Download a model from the Hugging Face Hub into its cache and print the folder.
    Download(download::DownloadArgs),
    /// Serve embeddings over HTTP (OpenAI, text-embeddings-inference and native routes).
    Serve(serve::ServeCommand),
    /// Time one workload (throughput or latency) and print one JSON object of figures.
    Bench(bench::BenchArgs),
}

/// Default log filter of the commands: warnings only. ONNX Runtime's own log lines
/// repeat the errors that the engine returns, so they are off unless RUST_LOG enables them.
const COMMAND_LOGS: &str = "warn,ort=off";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => {
            init_logging(COMMAND_LOGS);
            embed::run(&args)
        }
        Command::Score(args) => {
            init_logging(COMMAND_LOGS);
            score::run(&args)
        }
        Command::Verify(args) => {
            init_logging(COMMAND_LOGS);
            verify::run(&args)
        }
        Command::Download(args) => {
            init_logging(COMMAND_LOGS);
            download::run(&args)
        }
        Command::Serve(args) => {
            // A service logs its start, stop and errors, so info is shown by default.
            // ONNX Runtime logs every graph optimisation at info, so it gets warn.
            init_logging("info,ort=warn");
            serve::run(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            init_logging(COMMAND_LOGS);
            bench::run(&args)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Sends logs to stderr, filtered by `RUST_LOG`, else at `default_level`.
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only on a terminal, so logs redirected to a file stay plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Returns whether the error is a closed stdout, as when the output is piped to `head`.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    // serde_json keeps the io::Error of a failed write inside its own error type, and
    // its `source()` skips it, so both types are checked.
    error.chain().any(|cause| {
        let io_kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind);
        let json_kind = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io_kind.or(json_kind) == Some(std::io::ErrorKind::BrokenPipe)
    })
}
