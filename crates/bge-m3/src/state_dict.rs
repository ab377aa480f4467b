//! Reading PyTorch state dicts (`.pt` files) without PyTorch.
//!
//! Since PyTorch 1.6, `torch.save` writes a zip archive with one top-level folder
//! (named after the file, or `archive`): `<folder>/data.pkl` is the pickle,
//! `<folder>/data/<key>` contains the raw little-endian bytes of each storage, and
//! `<folder>/byteorder`, when present, says `little` or `big`. The pickle is read by
//! [`crate::pickle`]; this module opens the archive and copies each tensor's strided
//! view out of its storage as contiguous float32 values. The older non-zip format is
//! not supported.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use crate::error::{Error, Result};
use crate::pickle::{unpickle, DType, TensorRef, Value};

/// A tensor of a state dict, converted to float32.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    /// The element type stored in the file.
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// The elements in row-major order, `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

/// The tensors of one `.pt` file, in the order the file lists them.
#[derive(Debug, Clone)]
pub(crate) struct StateDict {
    path: PathBuf,
    tensors: Vec<(String, Tensor)>,
}

impl StateDict {
    /// Reads a state dict of float16, bfloat16 or float32 tensors from a `.pt` file.
    pub fn read(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mut archive = Archive::open(file, path)?;
        let pickle = archive.read(&archive.data_pkl.clone())?;
        archive.check_byte_order()?;
        let root = unpickle(&pickle, path)?;
        let tensors = tensor_refs(root, path)?
            .into_iter()
            .map(|(key, tensor)| Ok((key, archive.materialize(&tensor)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// Returns the tensor stored under `key`.
    pub fn tensor(&self, key: &str) -> Result<&Tensor> {
        self.tensors
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, tensor)| tensor)
            .ok_or_else(|| Error::TensorMissing {
                path: self.path.clone(),
                key: key.to_owned(),
                found: self.keys(),
            })
    }

    /// Returns the keys, in file order.
    pub fn keys(&self) -> Vec<String> {
        self.tensors.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Returns the `.pt` file the state dict was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Checks that the pickle's result is a dict of string keys to tensors.
fn tensor_refs(root: Value, path: &Path) -> Result<Vec<(String, TensorRef)>> {
    let unsupported = |found: String| Error::TorchUnsupported {
        path: path.to_path_buf(),
        offset: 0,
        found,
    };
    let Value::Dict(pairs) = root else {
        return Err(unsupported(format!(
            "a top-level {root:?} instead of a state dict"
        )));
    };
    pairs
        .into_iter()
        .map(|pair| match pair {
            (Value::String(key), Value::Tensor(tensor)) => Ok((key, tensor)),
            (key, value) => Err(unsupported(format!(
                "entry {key:?} with the value {value:?}, not a tensor"
            ))),
        })
        .collect()
}

/// An opened `.pt` archive.
struct Archive {
    zip: ZipArchive<File>,
    path: PathBuf,
    /// `<folder>/`, the prefix of every entry.
    folder: String,
    /// `<folder>/data.pkl`.
    data_pkl: String,
}

impl Archive {
    fn open(file: File, path: &Path) -> Result<Self> {
        let zip = ZipArchive::new(file).map_err(|source| Error::TorchArchive {
            path: path.to_path_buf(),
            source,
        })?;
        let data_pkl = zip
            .file_names_raw()
            .filter_map(|raw| std::str::from_utf8(raw).ok())
            .find(|name| name.ends_with("/data.pkl") && name.matches('/').count() == 1)
            .map(str::to_owned)
            .ok_or_else(|| Error::TorchArchiveEntry {
                path: path.to_path_buf(),
                entry: "<folder>/data.pkl".to_owned(),
            })?;
        let folder = data_pkl.trim_end_matches("data.pkl").to_owned();
        Ok(Self {
            zip,
            path: path.to_path_buf(),
            folder,
            data_pkl,
        })
    }

    fn read(&mut self, entry: &str) -> Result<Vec<u8>> {
        let mut file = self.zip.by_name(entry).map_err(|source| match source {
            zip::result::ZipError::FileNotFound => Error::TorchArchiveEntry {
                path: self.path.clone(),
                entry: entry.to_owned(),
            },
            source => Error::TorchArchive {
                path: self.path.clone(),
                source,
            },
        })?;
        let mut bytes = Vec::with_capacity(usize::try_from(file.size()).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|source| Error::ReadFile {
                path: self.path.clone(),
                source,
            })?;
        Ok(bytes)
    }

    /// Rejects big-endian storages. Archives without a `byteorder` entry predate it
    /// and are little-endian.
    fn check_byte_order(&mut self) -> Result<()> {
        let entry = format!("{}byteorder", self.folder);
        if self.zip.index_for_name(&entry).is_none() {
            return Ok(());
        }
        let order = self.read(&entry)?;
        if order.trim_ascii() == b"little" {
            return Ok(());
        }
        Err(Error::TorchUnsupported {
            path: self.path.clone(),
            offset: 0,
            found: format!("byte order {:?}", String::from_utf8_lossy(&order)),
        })
    }

    /// Copies the tensor's strided view out of its storage as float32 values.
    fn materialize(&mut self, tensor: &TensorRef) -> Result<Tensor> {
        let entry = format!("{}data/{}", self.folder, tensor.storage.key);
        let bytes = self.read(&entry)?;
        let dtype = tensor.storage.dtype;
        let storage_len = bytes.len() / dtype.size();
        let indices = element_indices(tensor, storage_len).ok_or_else(|| Error::TorchInvalid {
            path: self.path.clone(),
            offset: tensor.pickle_offset,
            problem: format!(
                "tensor of shape {:?}, stride {:?} and offset {} reads past its storage {entry} \
                 of {storage_len} elements",
                tensor.shape, tensor.stride, tensor.offset
            ),
        })?;
        let data = indices
            .into_iter()
            .map(|index| element(&bytes, dtype, index))
            .collect();
        Ok(Tensor {
            dtype,
            shape: tensor.shape.clone(),
            data,
        })
    }
}

/// Returns the storage index of each element in row-major order, or `None` when the
/// view reaches past `storage_len` elements.
fn element_indices(tensor: &TensorRef, storage_len: usize) -> Option<Vec<usize>> {
    let count: usize = tensor
        .shape
        .iter()
        .try_fold(1usize, |total, &dim| total.checked_mul(dim))?;
    if count == 0 {
        return Some(Vec::new());
    }
    let last = tensor
        .shape
        .iter()
        .zip(&tensor.stride)
        .try_fold(tensor.offset, |index, (&dim, &stride)| {
            index.checked_add((dim - 1).checked_mul(stride)?)
        })?;
    if last >= storage_len {
        return None;
    }
    let mut indices = Vec::with_capacity(count);
    let mut position = vec![0usize; tensor.shape.len()];
    for _ in 0..count {
        let index = tensor.offset
            + position
                .iter()
                .zip(&tensor.stride)
                .map(|(p, s)| p * s)
                .sum::<usize>();
        indices.push(index);
        advance(&mut position, &tensor.shape);
    }
    Some(indices)
}

/// Steps a row-major multi-index forward by one element.
fn advance(position: &mut [usize], shape: &[usize]) {
    for axis in (0..shape.len()).rev() {
        position[axis] += 1;
        if position[axis] < shape[axis] {
            return;
        }
        position[axis] = 0;
    }
}

fn element(bytes: &[u8], dtype: DType, index: usize) -> f32 {
    let start = index * dtype.size();
    match dtype {
        DType::F16 => half::f16::from_le_bytes([bytes[start], bytes[start + 1]]).to_f32(),
        DType::BF16 => half::bf16::from_le_bytes([bytes[start], bytes[start + 1]]).to_f32(),
        DType::F32 => f32::from_le_bytes(bytes[start..start + 4].try_into().expect("4 bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
    }

    fn read(name: &str) -> Result<StateDict> {
        StateDict::read(&fixtures().join("state-dicts").join(name))
    }

    /// `python/make_state_dict_fixtures.py` stores `arange(6).reshape(2, 3) / 4 - 0.5`
    /// under `weight` and `[0.25, -1.5]` under `bias`; both are exact in every dtype.
    fn check_values(state: &StateDict, dtype: DType) {
        let weight = state.tensor("weight").unwrap();
        assert_eq!(weight.dtype, dtype);
        assert_eq!(weight.shape, vec![2, 3]);
        assert_eq!(weight.data, vec![-0.5, -0.25, 0.0, 0.25, 0.5, 0.75]);
        let bias = state.tensor("bias").unwrap();
        assert_eq!(bias.shape, vec![2]);
        assert_eq!(bias.data, vec![0.25, -1.5]);
    }

    #[test]
    fn reads_float16() {
        check_values(&read("float16.pt").unwrap(), DType::F16);
    }

    #[test]
    fn reads_float32() {
        check_values(&read("float32.pt").unwrap(), DType::F32);
    }

    #[test]
    fn reads_bfloat16() {
        check_values(&read("bfloat16.pt").unwrap(), DType::BF16);
    }

    #[test]
    fn reads_protocol_4() {
        check_values(&read("float32-protocol4.pt").unwrap(), DType::F32);
    }

    /// `weight` is saved as the transpose of a [3, 2] tensor: stride (1, 2).
    #[test]
    fn reads_strided_view() {
        check_values(&read("float32-transposed.pt").unwrap(), DType::F32);
    }

    #[test]
    fn half_heads_are_rounded_float_heads() {
        let float = StateDict::read(&fixtures().join("tiny-bge-m3/colbert_linear.pt")).unwrap();
        let half =
            StateDict::read(&fixtures().join("tiny-bge-m3-official/colbert_linear.pt")).unwrap();
        for key in ["weight", "bias"] {
            let float = float.tensor(key).unwrap();
            let half = half.tensor(key).unwrap();
            assert_eq!(float.dtype, DType::F32);
            assert_eq!(half.dtype, DType::F16);
            assert_eq!(float.shape, half.shape);
            let rounded: Vec<f32> = float
                .data
                .iter()
                .map(|&x| half::f16::from_f32(x).to_f32())
                .collect();
            assert_eq!(rounded, half.data, "{key}");
        }
    }

    #[test]
    fn missing_key_lists_keys() {
        let state = read("float32.pt").unwrap();
        let error = state.tensor("weights").unwrap_err();
        assert!(
            matches!(&error, Error::TensorMissing { key, .. } if key == "weights"),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("float32.pt"), "{message}");
        assert!(message.contains("weight, bias"), "{message}");
    }

    #[test]
    fn file_that_is_not_zip_is_rejected() {
        let error = read("legacy-format.pt").unwrap_err();
        assert!(matches!(&error, Error::TorchArchive { .. }), "{error:?}");
        assert!(error.to_string().contains("legacy-format.pt"), "{error}");
    }

    #[test]
    fn zip_without_pickle_is_rejected() {
        let error = read("no-pickle.pt").unwrap_err();
        assert!(
            matches!(&error, Error::TorchArchiveEntry { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("data.pkl"), "{error}");
    }

    #[test]
    fn float64_is_unsupported() {
        let error = read("float64.pt").unwrap_err();
        assert!(
            matches!(&error, Error::TorchUnsupported { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("torch.DoubleStorage"), "{error}");
    }

    #[test]
    fn other_objects_are_unsupported() {
        let error = read("with-numpy-value.pt").unwrap_err();
        assert!(
            matches!(&error, Error::TorchUnsupported { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("global numpy"), "{error}");
    }

    #[test]
    fn missing_storage_is_named() {
        let error = read("missing-storage.pt").unwrap_err();
        assert!(
            matches!(&error, Error::TorchArchiveEntry { entry, .. } if entry.ends_with("data/1")),
            "{error:?}"
        );
    }

    #[test]
    fn view_past_storage_is_invalid() {
        let tensor = TensorRef {
            storage: crate::pickle::StorageRef {
                dtype: DType::F32,
                key: "0".into(),
            },
            offset: 2,
            shape: vec![2, 2],
            stride: vec![2, 1],
            pickle_offset: 0,
        };
        assert_eq!(element_indices(&tensor, 6), Some(vec![2, 3, 4, 5]));
        assert_eq!(element_indices(&tensor, 5), None);
    }
}
