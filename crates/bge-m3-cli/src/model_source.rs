//! The `--model` argument: a model folder, or a Hub repository downloaded into the
//! Hugging Face cache first.

use std::path::PathBuf;

use anyhow::Context as _;
use bge_m3::hub::{HubOptions, ModelSource, DEFAULT_REPO, DEFAULT_REVISION};

use crate::progress::DownloadBar;

/// Arguments that choose the model.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// Model folder (a three-output model.onnx, or the BAAI/bge-m3 layout with
    /// onnx/model.onnx and the .pt heads), or a Hugging Face Hub repository id, which is
    /// downloaded into the Hub cache (HF_HUB_CACHE) on first use.
    #[arg(long, env = "BGE_M3_MODEL", default_value = DEFAULT_REPO)]
    model: String,

    /// Branch, tag or commit of a Hub repository.
    #[arg(long, default_value = DEFAULT_REVISION)]
    revision: String,
}

impl ModelArgs {
    /// Returns the model folder, downloading a Hub repository when needed.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        let source = ModelSource::parse(&self.model)?;
        if matches!(source, ModelSource::Folder(_)) && self.revision != DEFAULT_REVISION {
            tracing::warn!(
                model = %self.model,
                revision = %self.revision,
                "--revision applies to Hub repositories only, not to a model folder; ignored"
            );
        }
        let options = HubOptions::from_env().with_revision(&self.revision);
        let mut progress = DownloadBar::new();
        source.resolve(&options, &mut progress).with_context(|| {
            let mut message = format!("failed to get the model {}", self.model);
            if !std::path::Path::new(&self.model).is_dir() {
                let here = std::env::current_dir().unwrap_or_default();
                message += &format!(
                    " (no folder of that name in {}, so it was looked up as a Hub repository)",
                    here.display()
                );
            }
            message
        })
    }

    /// Returns the `--model` value as given.
    pub fn value(&self) -> &str {
        &self.model
    }

    /// Returns the repository id when `--model` names a Hub repository, not a folder.
    pub fn repository(&self) -> Option<String> {
        match ModelSource::parse(&self.model) {
            Ok(ModelSource::Hub(repo)) => Some(repo),
            _ => None,
        }
    }
}
