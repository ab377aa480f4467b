//! The token embedding table, read into memory when the model loads.
//!
//! ONNX Runtime maps a graph's external data file and reads the token embedding table
//! through that mapping (BGE-M3's is 250002 × 1024 float32, 977 MiB). A page of the
//! table becomes resident only when a text uses one of its token ids. So the RSS after
//! the load leaves most of the table out, and long texts with ids across the vocabulary
//! raise the RSS by up to the table's size. One 8192-token text of random ids peaked at
//! 961 MiB above the load, against 565 MiB with ids below 600
//! (`bench/probe_session.py memory`, onnxruntime 1.32.0).
//!
//! This module reads the table once, at load time, from where the model folder check
//! found it, and the session takes it as an initializer (ONNX Runtime's
//! `AddInitializer`) in place of the file's copy. The whole table is then part of the
//! loaded model, and what a call adds to the RSS depends on its batch alone. The
//! session module owns the rest of the loading; tables stored inside the graph are
//! already read with it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::onnx_proto::ExternalTensor;

/// `TensorProto.DataType.FLOAT`.
const FLOAT32: u64 = 1;
/// Bytes read from the data file at a time.
const CHUNK_BYTES: usize = 4 << 20;

/// The token embedding table of a graph, with the initializer name it replaces.
#[derive(Debug)]
pub(crate) struct EmbeddingTable {
    /// The initializer's name in the graph.
    pub name: String,
    /// The table's shape, `[vocabulary, hidden]`.
    pub shape: Vec<i64>,
    /// The values, row-major.
    pub values: Vec<f32>,
}

/// Reads the float32 table that the graph gathers `input_ids` from, at the place in
/// an external data file that the model folder check found.
///
/// Returns `None` when the table is stored in another type: ONNX Runtime then loads
/// it as it would anyway.
pub(crate) fn read(graph: &Path, table: &ExternalTensor) -> Result<Option<EmbeddingTable>> {
    if table.data_type != FLOAT32 {
        tracing::debug!(
            data_type = table.data_type,
            "embedding table is not float32; left to ONNX Runtime"
        );
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let values = read_values(graph, table)?;
    tracing::debug!(
        tensor = %table.name,
        bytes = values.len() * 4,
        ms = started.elapsed().as_millis(),
        "read the embedding table"
    );
    // `byte_length` has checked that 4 × the shape's product fits in a u64, so every
    // dimension is below 2^62 and fits in an i64.
    let shape = table.dims.iter().map(|&dim| dim as i64).collect();
    Ok(Some(EmbeddingTable {
        name: table.name.clone(),
        shape,
        values,
    }))
}

/// Reads the table's float32 values, little-endian as ONNX stores them.
fn read_values(graph: &Path, table: &ExternalTensor) -> Result<Vec<f32>> {
    let problem = |problem: String| Error::ExternalData {
        graph: graph.to_path_buf(),
        tensor: table.name.clone(),
        problem,
    };
    let length = byte_length(table).ok_or_else(|| {
        problem(format!(
            "shape {:?} with length {:?} is not a float32 tensor",
            table.dims, table.length
        ))
    })?;

    let location = Path::new(&table.location);
    if !is_beside(location) {
        return Err(problem(format!(
            "location {:?} is not a file name relative to the graph's folder",
            table.location
        )));
    }

    let path = graph.parent().unwrap_or(Path::new("")).join(location);
    let read_error = |source| Error::ReadFile {
        path: path.clone(),
        source,
    };
    let mut file = File::open(&path).map_err(read_error)?;
    let file_bytes = file.metadata().map_err(read_error)?.len();
    let end = table.offset.checked_add(length);
    if end.is_none_or(|end| end > file_bytes) {
        return Err(problem(format!(
            "{} has {file_bytes} bytes, the tensor needs bytes {} to {}",
            path.display(),
            table.offset,
            table.offset.saturating_add(length)
        )));
    }

    file.seek(SeekFrom::Start(table.offset))
        .map_err(read_error)?;
    read_floats(&mut file, length).map_err(read_error)
}

/// Returns the table's size in bytes, checked against the stated length.
fn byte_length(table: &ExternalTensor) -> Option<u64> {
    if table.dims.len() != 2 {
        return None;
    }
    let elements = table
        .dims
        .iter()
        .try_fold(1u64, |product, &dim| product.checked_mul(dim))?;
    let bytes = elements.checked_mul(4)?;
    table
        .length
        .is_none_or(|stated| stated == bytes)
        .then_some(bytes)
}

/// Returns whether a location names a file inside the graph's folder.
fn is_beside(location: &Path) -> bool {
    location
        .components()
        .all(|component| matches!(component, Component::Normal(_)))
}

fn read_floats(file: &mut File, length: u64) -> std::io::Result<Vec<f32>> {
    let count = usize::try_from(length / 4).map_err(std::io::Error::other)?;
    let mut values = Vec::with_capacity(count);
    let mut chunk = vec![0u8; CHUNK_BYTES.min(count * 4)];
    while values.len() < count {
        let take = chunk.len().min((count - values.len()) * 4);
        file.read_exact(&mut chunk[..take])?;
        values.extend(
            chunk[..take]
                .chunks_exact(4)
                .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        );
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-bge-m3")
    }

    /// Returns the tiny model's table, as the model folder check finds it.
    fn tiny_table() -> ExternalTensor {
        crate::ModelFiles::from_dir(tiny_model())
            .unwrap()
            .embedding_table
            .unwrap()
    }

    /// Copies the tiny model's graph and data file into a temporary folder.
    fn copy_tiny_model() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in ["model.onnx", "model.onnx_data"] {
            std::fs::copy(tiny_model().join(file), dir.path().join(file)).unwrap();
        }
        dir
    }

    fn table(location: &str, offset: u64, length: Option<u64>) -> ExternalTensor {
        ExternalTensor {
            name: "table".to_owned(),
            data_type: FLOAT32,
            dims: vec![3, 2],
            location: location.to_owned(),
            offset,
            length,
        }
    }

    #[test]
    fn reads_tiny_table() {
        let table = read(&tiny_model().join("model.onnx"), &tiny_table())
            .unwrap()
            .unwrap();
        assert_eq!(
            table.name,
            "m3_model.model.embeddings.word_embeddings.weight"
        );
        assert_eq!(table.shape, vec![689, 32]);
        let values = &table.values;
        assert_eq!(values.len(), 689 * 32);

        let data = std::fs::read(tiny_model().join("model.onnx_data")).unwrap();
        let first = f32::from_le_bytes(data[..4].try_into().unwrap());
        let last = f32::from_le_bytes(data[88188..88192].try_into().unwrap());
        assert_eq!((values[0], values[689 * 32 - 1]), (first, last));
        assert!(values.iter().any(|value| *value != 0.0));
    }

    #[test]
    fn short_data_file_is_invalid() {
        let dir = copy_tiny_model();
        let data = dir.path().join("model.onnx_data");
        let file = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
        file.set_len(1000).unwrap();

        let error = read(&dir.path().join("model.onnx"), &tiny_table()).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::ExternalData { .. }), "{message}");
        assert!(
            message.contains("model.onnx_data has 1000 bytes"),
            "{message}"
        );
        assert!(message.contains("bytes 0 to 88192"), "{message}");
    }

    #[test]
    fn missing_data_file_fails_to_read() {
        let dir = copy_tiny_model();
        std::fs::remove_file(dir.path().join("model.onnx_data")).unwrap();
        let error = read(&dir.path().join("model.onnx"), &tiny_table()).unwrap_err();
        assert!(
            matches!(&error, Error::ReadFile { path, .. } if path.ends_with("model.onnx_data")),
            "{error}"
        );
    }

    #[test]
    fn location_outside_folder_is_rejected() {
        let dir = copy_tiny_model();
        let graph = dir.path().join("model.onnx");
        for location in ["../model.onnx_data", "/etc/passwd"] {
            let error = read_values(&graph, &table(location, 0, None)).unwrap_err();
            assert!(
                error.to_string().contains("is not a file name relative"),
                "{error}"
            );
        }
    }

    #[test]
    fn stated_length_matches_shape() {
        assert_eq!(byte_length(&table("d", 0, None)), Some(24));
        assert_eq!(byte_length(&table("d", 0, Some(24))), Some(24));
        assert_eq!(byte_length(&table("d", 0, Some(20))), None);
        let mut three_dims = table("d", 0, None);
        three_dims.dims = vec![1, 3, 2];
        assert_eq!(byte_length(&three_dims), None);
    }

    #[test]
    fn reads_from_offset() {
        let dir = copy_tiny_model();
        let graph = dir.path().join("model.onnx");
        let values = read_values(&graph, &table("model.onnx_data", 8, Some(24))).unwrap();
        let data = std::fs::read(dir.path().join("model.onnx_data")).unwrap();
        let third = f32::from_le_bytes(data[8..12].try_into().unwrap());
        assert_eq!(values.len(), 6);
        assert_eq!(values[0], third);
    }
}
