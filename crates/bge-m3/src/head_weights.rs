//! Loading FlagEmbedding's head files, `colbert_linear.pt` and `sparse_linear.pt`.
//!
//! Each is the `state_dict()` of a `torch.nn.Linear` (`weight` `[out, in]`, `bias`
//! `[out]`), as FlagEmbedding 1.4.2 saves them
//! (`finetune/embedder/encoder_only/m3/modeling.py`, `save`). `BAAI/bge-m3` stores
//! them in float16; they are converted to float32 on load, as `load_state_dict` into
//! FlagEmbedding's float32 layers does.

use std::path::Path;

use crate::error::{Error, Result};
use crate::linear_heads::Linear;
use crate::state_dict::StateDict;

/// File name of the ColBERT head.
pub const COLBERT_HEAD_FILE: &str = "colbert_linear.pt";
/// File name of the sparse head.
pub const SPARSE_HEAD_FILE: &str = "sparse_linear.pt";

/// The two linear heads of BGE-M3.
#[derive(Debug, Clone)]
pub(crate) struct HeadWeights {
    /// `hidden → colbert size` (1024 → 1024 in BGE-M3).
    pub colbert: Linear,
    /// `hidden → 1`.
    pub sparse: Linear,
}

impl HeadWeights {
    /// Reads both head files and checks that their shapes fit together.
    pub fn load(colbert: &Path, sparse: &Path) -> Result<Self> {
        let colbert_head = read_linear(colbert)?;
        let sparse_head = read_linear(sparse)?;
        if sparse_head.out_features != 1 || sparse_head.in_features != colbert_head.in_features {
            return Err(Error::TensorShape {
                path: sparse.to_path_buf(),
                key: "weight".to_owned(),
                expected: format!(
                    "[1, {}] (the input size of {COLBERT_HEAD_FILE})",
                    colbert_head.in_features
                ),
                found: vec![sparse_head.out_features, sparse_head.in_features],
            });
        }
        tracing::debug!(
            hidden = colbert_head.in_features,
            colbert = colbert_head.out_features,
            "loaded the head files"
        );
        Ok(Self {
            colbert: colbert_head,
            sparse: sparse_head,
        })
    }

    /// Returns the hidden size the heads expect.
    pub fn hidden(&self) -> usize {
        self.colbert.in_features
    }
}

fn read_linear(path: &Path) -> Result<Linear> {
    let state = StateDict::read(path)?;
    let weight = state.tensor("weight")?;
    let [out_features, in_features] = weight.shape[..] else {
        return Err(shape_error(
            &state,
            "weight",
            "[out_features, in_features]",
            &weight.shape,
        ));
    };
    let bias = state.tensor("bias")?;
    if bias.shape != [out_features] {
        return Err(shape_error(
            &state,
            "bias",
            &format!("[{out_features}]"),
            &bias.shape,
        ));
    }
    Ok(Linear {
        in_features,
        out_features,
        weight: weight.data.clone(),
        bias: bias.data.clone(),
    })
}

fn shape_error(state: &StateDict, key: &str, expected: &str, found: &[usize]) -> Error {
    Error::TensorShape {
        path: state.path().to_path_buf(),
        key: key.to_owned(),
        expected: expected.to_owned(),
        found: found.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
    }

    #[test]
    fn loads_half_heads() {
        let dir = fixtures().join("tiny-bge-m3-official");
        let heads =
            HeadWeights::load(&dir.join(COLBERT_HEAD_FILE), &dir.join(SPARSE_HEAD_FILE)).unwrap();
        assert_eq!(heads.hidden(), 32);
        assert_eq!(heads.colbert.out_features, 32);
        assert_eq!(heads.colbert.weight.len(), 32 * 32);
        assert_eq!(heads.sparse.weight.len(), 32);
        assert_eq!(heads.sparse.bias.len(), 1);
    }

    #[test]
    fn swapped_heads_are_rejected() {
        let dir = fixtures().join("tiny-bge-m3-official");
        let error = HeadWeights::load(&dir.join(SPARSE_HEAD_FILE), &dir.join(COLBERT_HEAD_FILE))
            .unwrap_err();
        assert!(
            matches!(&error, Error::TensorShape { found, .. } if found == &[32, 32]),
            "{error:?}"
        );
        assert!(error.to_string().contains(COLBERT_HEAD_FILE), "{error}");
    }

    #[test]
    fn reads_linear_shape_from_weight() {
        // `weight` [2, 3] and `bias` [2]: a 3 → 2 layer.
        let path = fixtures().join("state-dicts/float32.pt");
        let linear = read_linear(&path).unwrap();
        assert_eq!((linear.out_features, linear.in_features), (2, 3));
        assert_eq!(linear.bias, vec![0.25, -1.5]);
    }

    #[test]
    fn missing_head_file_is_named() {
        let path = fixtures().join("tiny-bge-m3-official/no_such_head.pt");
        let error = read_linear(&path).unwrap_err();
        assert!(matches!(&error, Error::ReadFile { .. }), "{error:?}");
        assert!(error.to_string().contains("no_such_head.pt"), "{error}");
    }
}
