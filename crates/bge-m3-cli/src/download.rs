//! `bge-m3 download`: fetch a Hub repository's model into the cache without embedding.
//!
//! Prints the snapshot folder on stdout, so that `--model "$(bge-m3 download)"` works.
//! Every cached file is hashed, the large weights included, so this also checks a
//! cache that embedding runs check by size only.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use bge_m3::hub::{fetch_model, HubOptions, ModelSource, DEFAULT_REPO, DEFAULT_REVISION};

use crate::progress::DownloadBar;

/// Arguments of `bge-m3 download`.
#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// Hub repository id.
    #[arg(default_value = DEFAULT_REPO)]
    repo: String,

    /// Branch, tag or commit.
    #[arg(long, default_value = DEFAULT_REVISION)]
    revision: String,
}

/// Runs `bge-m3 download`.
pub fn run(args: &DownloadArgs) -> anyhow::Result<ExitCode> {
    if matches!(ModelSource::parse(&args.repo), Ok(ModelSource::Folder(_))) {
        anyhow::bail!(
            "{:?} is a folder in the current directory. The download command takes a Hub \
             repository id, and the other commands take a model folder as it is. To download \
             a repository of that name, run download from another directory",
            args.repo
        );
    }
    let options = HubOptions::from_env()
        .with_revision(&args.revision)
        .with_rehash_large_files(true);
    let mut progress = DownloadBar::new();
    let snapshot = fetch_model(&args.repo, &options, &mut progress)
        .with_context(|| format!("failed to download {}", args.repo))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", snapshot.display()).context("failed to write the output")?;
    Ok(ExitCode::SUCCESS)
}
