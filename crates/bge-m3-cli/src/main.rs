//! The `bge-m3` command: BGE-M3 embeddings from the command line.
//!
//! Data goes to stdout, messages and progress to stderr. Exit codes: 0 success,
//! 1 an input record was invalid (the output before it is complete), 2 a usage or
//! fatal error such as a model that does not load.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod embed;
mod input;
mod output;
mod score;
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
    /// Time one workload (throughput or latency) and print one JSON object of figures.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => embed::run(&args),
        Command::Score(args) => score::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Bench(args) => bench::run(&args),
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Returns whether the error is a closed stdout, as when the output is piped to `head`.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
