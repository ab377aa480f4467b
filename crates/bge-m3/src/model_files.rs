//! The files of a model folder, checked before anything is loaded.
//!
//! Two layouts are accepted:
//!
//! - a three-output export (`python/export_onnx.py`): `model.onnx` in the folder
//!   root, with the external data files it references (`model.onnx_data`);
//! - the layout of the `BAAI/bge-m3` repository: a backbone-only export in
//!   `onnx/model.onnx` with its external data files (`onnx/model.onnx_data`,
//!   `onnx/Constant_7_attr__value`), and FlagEmbedding's heads `colbert_linear.pt`
//!   and `sparse_linear.pt` in the folder root.
//!
//! A root `model.onnx` takes precedence over `onnx/model.onnx`. A root graph may also
//! be backbone-only with the head files beside it. Only the graph's outputs tell the
//! two apart, so `model` decides once the session is loaded. Both layouts need
//! `tokenizer.json` in the folder root, and read `config.json` and
//! `special_tokens_map.json` from there when present. Files may be symlinks, as in
//! the Hugging Face cache, whose snapshot folders link every file to a blob named by
//! its hash.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::head_weights::{COLBERT_HEAD_FILE, SPARSE_HEAD_FILE};
use crate::onnx_proto::{gathered_external_table, read_varint, ExternalTensor};
use crate::session::INPUT_IDS;

/// File name of the ONNX graph inside a model folder.
pub const MODEL_FILE: &str = "model.onnx";
/// Folder of the backbone-only graph in the `BAAI/bge-m3` layout.
pub const ONNX_DIR: &str = "onnx";
/// File name of the Hugging Face tokenizer inside a model folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// File name of the Hugging Face model config inside a model folder.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the special token roles inside a model folder.
pub const SPECIAL_TOKENS_FILE: &str = "special_tokens_map.json";

const HEADS_HINT: &str =
    "the BAAI/bge-m3 layout keeps FlagEmbedding's heads in the folder root, beside onnx/";

/// Larger graphs are not scanned for external data references. A graph with inline
/// weights can reach the 2 GB protobuf limit, and ONNX Runtime reports its own
/// missing files in that case.
const MAX_SCANNED_GRAPH_BYTES: u64 = 512 << 20;

/// The checked paths of a model folder, all absolute.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The model folder.
    pub dir: PathBuf,
    /// The ONNX graph: `model.onnx`, or `onnx/model.onnx` in the `BAAI/bge-m3` layout.
    pub model: PathBuf,
    /// The external data files that the graph references, possibly none.
    pub external_data: Vec<PathBuf>,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// `config.json`, when present.
    pub config: Option<PathBuf>,
    /// `special_tokens_map.json`, when present.
    pub special_tokens: Option<PathBuf>,
    /// `colbert_linear.pt`, when present; always present with `onnx/model.onnx`.
    pub colbert_head: Option<PathBuf>,
    /// `sparse_linear.pt`, when present; always present with `onnx/model.onnx`.
    pub sparse_head: Option<PathBuf>,
    /// The place of the graph's token embedding table, when it is in an external data
    /// file.
    pub(crate) embedding_table: Option<ExternalTensor>,
}

impl ModelFiles {
    /// Checks that `dir` contains a complete model in one of the two layouts and returns
    /// its file paths.
    ///
    /// A relative `dir` is resolved against the current directory once, here, so the
    /// result stays valid if the process changes directory later.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = std::path::absolute(dir.as_ref()).map_err(|source| Error::ReadFile {
            path: dir.as_ref().to_path_buf(),
            source,
        })?;
        if !dir.is_dir() {
            return Err(Error::ModelDirNotFound { path: dir });
        }
        let graph_dir = graph_folder(&dir)?;
        let model = dir.join(graph_dir).join(MODEL_FILE);
        let scan = GraphScan::read(&model)?;
        let external_data = scan
            .locations
            .into_iter()
            .map(|location| {
                let file = Path::new(graph_dir).join(location);
                require(
                    &dir,
                    &file.to_string_lossy(),
                    "it holds weights that the graph references",
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let (colbert_head, sparse_head) = if graph_dir == ONNX_DIR {
            let colbert = require(&dir, COLBERT_HEAD_FILE, HEADS_HINT)?;
            let sparse = require(&dir, SPARSE_HEAD_FILE, HEADS_HINT)?;
            (Some(colbert), Some(sparse))
        } else {
            (
                optional(&dir, COLBERT_HEAD_FILE),
                optional(&dir, SPARSE_HEAD_FILE),
            )
        };
        let tokenizer = require(&dir, TOKENIZER_FILE, "copy it from the model's repository")?;
        Ok(Self {
            config: optional(&dir, CONFIG_FILE),
            special_tokens: optional(&dir, SPECIAL_TOKENS_FILE),
            dir,
            model,
            external_data,
            tokenizer,
            colbert_head,
            sparse_head,
            embedding_table: scan.embedding_table,
        })
    }
}

/// Returns the folder of the graph relative to `dir`: `""` for a root `model.onnx`,
/// else `onnx`.
fn graph_folder(dir: &Path) -> Result<&'static str> {
    if dir.join(MODEL_FILE).is_file() {
        Ok("")
    } else if dir.join(ONNX_DIR).join(MODEL_FILE).is_file() {
        Ok(ONNX_DIR)
    } else {
        Err(Error::UnknownLayout {
            dir: dir.to_path_buf(),
        })
    }
}

fn require(dir: &Path, file: &str, hint: &'static str) -> Result<PathBuf> {
    let path = dir.join(file);
    // `is_file` follows symlinks, so a dangling link counts as missing.
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::ModelFileMissing {
            dir: dir.to_path_buf(),
            file: file.to_owned(),
            hint,
        })
    }
}

fn optional(dir: &Path, file: &str) -> Option<PathBuf> {
    let path = dir.join(file);
    path.is_file().then_some(path)
}

/// The facts the folder check reads from the graph file, in one read.
struct GraphScan {
    /// The distinct external data locations that the graph references.
    locations: Vec<String>,
    /// The external token embedding table, when there is one.
    embedding_table: Option<ExternalTensor>,
}

impl GraphScan {
    /// Reads the graph, or returns an empty scan when it is larger than
    /// `MAX_SCANNED_GRAPH_BYTES`.
    fn read(model: &Path) -> Result<Self> {
        let read_error = |source| Error::ReadFile {
            path: model.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(model).map_err(read_error)?.len();
        if size > MAX_SCANNED_GRAPH_BYTES {
            tracing::debug!(bytes = size, "graph too large to scan");
            return Ok(Self {
                locations: Vec::new(),
                embedding_table: None,
            });
        }
        let bytes = std::fs::read(model).map_err(read_error)?;
        Ok(Self {
            locations: scan_locations(&bytes),
            embedding_table: gathered_external_table(&bytes, INPUT_IDS),
        })
    }
}

/// Returns the distinct external data locations that an ONNX graph file references.
pub(crate) fn external_data_files(model: &Path) -> Result<Vec<String>> {
    Ok(GraphScan::read(model)?.locations)
}

/// Returns the distinct external data locations in a serialised graph.
///
/// An initializer stored outside the graph carries `external_data` entries, ONNX
/// `StringStringEntryProto { key = 1; value = 2 }`, one of them with the key
/// `location`. Its protobuf encoding is the bytes `0a 08 "location" 12`, followed by
/// the value's length and bytes; the scan looks for exactly that sequence.
fn scan_locations(bytes: &[u8]) -> Vec<String> {
    const MARKER: &[u8] = b"\x0a\x08location\x12";
    let mut locations: Vec<String> = Vec::new();
    let mut start = 0;
    while let Some(offset) = find(&bytes[start..], MARKER) {
        let value_start = start + offset + MARKER.len();
        start = value_start;
        let Some((length, varint_len)) = read_varint(&bytes[value_start..]) else {
            continue;
        };
        let begin = value_start + varint_len;
        let Some(value) = usize::try_from(length)
            .ok()
            .and_then(|length| bytes.get(begin..begin.checked_add(length)?))
        else {
            continue;
        };
        if let Ok(location) = std::str::from_utf8(value) {
            if !locations.iter().any(|known| known == location) {
                locations.push(location.to_owned());
            }
        }
    }
    locations
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(location: &str) -> Vec<u8> {
        let mut bytes = b"\x0a\x08location\x12".to_vec();
        bytes.push(u8::try_from(location.len()).unwrap());
        bytes.extend_from_slice(location.as_bytes());
        bytes
    }

    #[test]
    fn scan_finds_distinct_locations() {
        let mut graph = b"header".to_vec();
        graph.extend(entry("model.onnx_data"));
        graph.extend(b"\x0a\x06offset");
        graph.extend(entry("model.onnx_data"));
        graph.extend(entry("Constant_7_attr__value"));
        let found = scan_locations(&graph);
        assert_eq!(found, vec!["model.onnx_data", "Constant_7_attr__value"]);
    }

    #[test]
    fn scan_ignores_truncated_entry() {
        let mut graph = entry("model.onnx_data");
        graph.truncate(graph.len() - 3);
        assert!(scan_locations(&graph).is_empty());
    }
}
