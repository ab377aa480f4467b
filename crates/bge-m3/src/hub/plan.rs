//! Choosing which files of a repository the model needs, and fetching them.
//!
//! The layout follows [`crate::ModelFiles`]: a root `model.onnx` wins over
//! `onnx/model.onnx`. The graph is fetched first, because it names its external data
//! files and, for a root graph, its outputs show whether the `.pt` heads are needed.

use crate::error::{Error, Result};
use crate::head_weights::{COLBERT_HEAD_FILE, SPARSE_HEAD_FILE};
use crate::model_files::{
    external_data_files, CONFIG_FILE, MODEL_FILE, ONNX_DIR, SPECIAL_TOKENS_FILE, TOKENIZER_FILE,
};
use crate::onnx_proto::graph_output_names;
use crate::session::{COLBERT, DENSE, SPARSE};

use super::client::RepoInfo;
use super::download::Fetcher;

/// Graphs larger than this contain their weights inline and are not read to list
/// their outputs. Such a root graph is assumed to need the heads when the repository
/// has them.
const MAX_READ_GRAPH_BYTES: u64 = 512 << 20;

/// Fetches every file the repository's model needs, and nothing else.
pub(crate) fn fetch_layout(fetcher: &mut Fetcher<'_>, info: &RepoInfo) -> Result<()> {
    let nested_graph = format!("{ONNX_DIR}/{MODEL_FILE}");
    let (graph, folder) = if info.has(MODEL_FILE) {
        (MODEL_FILE.to_owned(), "")
    } else if info.has(&nested_graph) {
        (nested_graph, ONNX_DIR)
    } else {
        return Err(Error::HubUnknownLayout {
            repo: info.repo.clone(),
            revision: info.commit.clone(),
        });
    };
    // Missing required files are reported before anything large is downloaded.
    info.require(TOKENIZER_FILE)?;
    let nested = !folder.is_empty();
    if nested {
        info.require(COLBERT_HEAD_FILE)?;
        info.require(SPARSE_HEAD_FILE)?;
    }

    let graph_path = fetcher.fetch(&graph)?;
    for location in external_data_files(&graph_path)? {
        let file = if nested {
            format!("{folder}/{location}")
        } else {
            location
        };
        info.require(&file)?;
        fetcher.fetch(&file)?;
    }
    if nested || root_graph_needs_heads(&graph_path, info)? {
        for head in [COLBERT_HEAD_FILE, SPARSE_HEAD_FILE] {
            info.require(head)?;
            fetcher.fetch(head)?;
        }
    }
    fetcher.fetch(TOKENIZER_FILE)?;
    for optional in [CONFIG_FILE, SPECIAL_TOKENS_FILE] {
        if info.has(optional) {
            fetcher.fetch(optional)?;
        }
    }
    Ok(())
}

/// Returns whether a root graph lacks the three outputs and so needs the head files.
fn root_graph_needs_heads(graph: &std::path::Path, info: &RepoInfo) -> Result<bool> {
    let read_error = |source| Error::ReadFile {
        path: graph.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(graph).map_err(read_error)?.len();
    let outputs = if size <= MAX_READ_GRAPH_BYTES {
        graph_output_names(&std::fs::read(graph).map_err(read_error)?)
    } else {
        None
    };
    let Some(outputs) = outputs else {
        return Ok(info.has(COLBERT_HEAD_FILE) && info.has(SPARSE_HEAD_FILE));
    };
    let three_outputs = [DENSE, SPARSE, COLBERT]
        .iter()
        .all(|name| outputs.iter().any(|output| output == name));
    Ok(!three_outputs)
}

impl RepoInfo {
    fn has(&self, file: &str) -> bool {
        self.files.iter().any(|known| known == file)
    }

    fn require(&self, file: &str) -> Result<()> {
        if self.has(file) {
            return Ok(());
        }
        Err(Error::HubFileNotFound {
            repo: self.repo.clone(),
            revision: self.commit.clone(),
            file: file.to_owned(),
        })
    }
}
