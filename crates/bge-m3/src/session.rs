//! The ONNX Runtime session of a BGE-M3 graph.
//!
//! Two graph contracts are accepted. Both take
//!
//! | name             | type  | shape               |
//! |------------------|-------|---------------------|
//! | `input_ids`      | int64 | `[batch, sequence]` |
//! | `attention_mask` | int64 | `[batch, sequence]` |
//!
//! A three-output export (`python/export_onnx.py`, and community exports of BGE-M3
//! with the same outputs) returns
//!
//! | name               | type    | shape                              |
//! |--------------------|---------|------------------------------------|
//! | `dense_embeddings` | float32 | `[batch, hidden]`, L2-normalised   |
//! | `sparse_weights`   | float32 | `[batch, sequence, 1]`, ReLU       |
//! | `colbert_vectors`  | float32 | `[batch, sequence - 1, hidden]`    |
//!
//! `sparse_weights` is not masked: padding positions carry non-zero weights, so the
//! caller must only read the first `length` positions of each row.
//!
//! A backbone-only export, such as the `onnx/model.onnx` of `BAAI/bge-m3`, returns
//! `token_embeddings` (float32 `[batch, sequence, hidden]`, the last hidden state) and
//! usually `sentence_embedding`, which is not read. The heads are then applied by
//! `linear_heads`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{OutputSelector, RunOptions, Session, SessionOutputs};
use ort::value::Tensor;

use crate::embedding_table;
use crate::error::{Error, Result};
use crate::onnx_proto::ExternalTensor;
use crate::runtime;

/// Input name of the token ids.
pub const INPUT_IDS: &str = "input_ids";
/// Input name of the attention mask.
pub const ATTENTION_MASK: &str = "attention_mask";
/// Output name of the dense embeddings.
pub const DENSE: &str = "dense_embeddings";
/// Output name of the per-token sparse weights.
pub const SPARSE: &str = "sparse_weights";
/// Output name of the ColBERT vectors.
pub const COLBERT: &str = "colbert_vectors";
/// Output name of the last hidden state in a backbone-only graph.
pub const TOKEN_EMBEDDINGS: &str = "token_embeddings";

/// The output contract a graph follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GraphKind {
    /// `dense_embeddings`, `sparse_weights` and `colbert_vectors`.
    ThreeOutputs,
    /// `token_embeddings`; the heads run outside the graph.
    Backbone,
}

/// The selection of outputs to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outputs {
    /// The dense vector.
    pub dense: bool,
    /// The sparse (lexical) weights.
    pub sparse: bool,
    /// The ColBERT multi-vector.
    pub colbert: bool,
}

impl Outputs {
    /// All three outputs.
    pub const ALL: Self = Self {
        dense: true,
        sparse: true,
        colbert: true,
    };

    /// Returns whether no output is selected.
    pub fn is_empty(&self) -> bool {
        !(self.dense || self.sparse || self.colbert)
    }
}

impl Default for Outputs {
    fn default() -> Self {
        Self::ALL
    }
}

/// Padded model input for one batch, row-major `[batch, sequence]`.
#[derive(Debug, Clone)]
pub(crate) struct BatchInput {
    pub batch: usize,
    pub sequence: usize,
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
}

/// Output tensors of one batch, row-major, each present when it was selected.
#[derive(Debug, Default)]
pub(crate) struct BatchOutput {
    /// Length of a dense vector.
    pub dense_dim: usize,
    /// Length of a ColBERT vector.
    pub colbert_dim: usize,
    /// `[batch, dense_dim]`.
    pub dense: Option<Vec<f32>>,
    /// `[batch, sequence]`.
    pub sparse: Option<Vec<f32>>,
    /// `[batch, sequence - 1, colbert_dim]`.
    pub colbert: Option<Vec<f32>>,
}

/// The `token_embeddings` of one batch, `[batch, sequence, hidden]`, row-major.
#[derive(Debug)]
pub(crate) struct HiddenStates {
    pub hidden: usize,
    pub values: Vec<f32>,
}

/// Settings of the ONNX Runtime session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionSettings {
    pub intra_threads: usize,
    pub intra_spinning: bool,
}

/// Model metadata key that `python/export_onnx.py` sets on fused-attention graphs.
const ATTENTION_METADATA_KEY: &str = "bge_m3.attention";
/// The value for graphs whose attention skips the score matrices on unpadded batches.
const SPLIT_ON_PADDING: &str = "multi_head_attention_split_on_padding";

/// How a graph computes attention, which decides what a batch costs in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attention {
    /// Operators as PyTorch traces them: every batch keeps its score matrices in memory.
    Standard,
    /// ONNX Runtime `MultiHeadAttention`, flash attention when the batch has no padding.
    FusedSplitOnPadding,
}

/// A loaded graph and the contract it follows.
#[derive(Debug)]
pub(crate) struct OnnxModel {
    session: Mutex<Session>,
    path: PathBuf,
    kind: GraphKind,
    output_names: Vec<String>,
    attention: Attention,
}

impl OnnxModel {
    /// Loads a graph (its external data is read from the same folder) and checks its
    /// inputs and outputs. `stored_table` is where the graph's token embedding table
    /// is stored, when it is in an external data file.
    pub fn load(
        path: &Path,
        stored_table: Option<&ExternalTensor>,
        settings: SessionSettings,
    ) -> Result<Self> {
        let environment = runtime::environment()?;
        let onnx_error = |action: &str| {
            let action = action.to_owned();
            move |source| Error::Onnx { action, source }
        };
        // All of ONNX Runtime's graph optimisations (`ORT_ENABLE_ALL`, onnxruntime
        // Python's default), set explicitly. ort's `Level3` is `ORT_ENABLE_LAYOUT`.
        let mut builder = Session::builder(environment)
            .map_err(onnx_error("create a session builder"))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| onnx_error("set the graph optimization level")(e.into()))?
            .with_intra_op_spinning(settings.intra_spinning)
            .map_err(|e| onnx_error("set intra-op spinning")(e.into()))?
            // The memory pattern puts all of a run's planned tensors in one block, made
            // for the input shape on its second run. At 8192 tokens that block raised
            // the peak from 565 to 869 MiB above the load at the same speed
            // (`bench/probe_session.py memory --runs 2`, onnxruntime 1.32.0).
            .with_memory_pattern(false)
            .map_err(|e| onnx_error("turn off the memory pattern")(e.into()))?;
        if settings.intra_threads > 0 {
            builder = builder
                .with_intra_threads(settings.intra_threads)
                .map_err(|e| onnx_error("set the intra-op thread count")(e.into()))?;
        }
        // The table goes in as a user initializer (`AddInitializer`), which ONNX Runtime
        // uses in place. As an external initializer (`AddExternalInitializers`) it was
        // copied: the RSS after the load rose by twice the table's 977 MiB.
        let table = match stored_table {
            Some(stored) => embedding_table::read(path, stored)?,
            None => {
                tracing::debug!(graph = %path.display(), "no external embedding table found");
                None
            }
        };
        if let Some(table) = table {
            let tensor = Tensor::from_array((table.shape, table.values))
                .map_err(onnx_error("create the embedding table tensor"))?;
            builder = builder
                .with_initializer(&table.name, tensor.into_dyn())
                .map_err(|e| onnx_error("pass the embedding table")(e.into()))?;
        }
        let session = builder
            .commit_from_file(path)
            .map_err(onnx_error(&format!("load {}", path.display())))?;
        check_inputs(&session, path)?;
        let output_names: Vec<String> = session
            .outputs()
            .iter()
            .map(|output| output.name().to_owned())
            .collect();
        let kind = graph_kind(&output_names).ok_or_else(|| Error::UnexpectedOutputs {
            path: path.to_path_buf(),
            found: output_names.clone(),
        })?;
        let attention = read_attention(&session);
        Ok(Self {
            session: Mutex::new(session),
            path: path.to_path_buf(),
            kind,
            output_names,
            attention,
        })
    }

    /// Returns how the graph computes attention.
    pub fn attention(&self) -> Attention {
        self.attention
    }

    /// Returns the contract the graph follows.
    pub fn kind(&self) -> GraphKind {
        self.kind
    }

    /// Returns the graph's output names.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Runs one batch through a three-output graph and copies out the selected outputs.
    pub fn run(&self, input: &BatchInput, outputs: Outputs) -> Result<BatchOutput> {
        let shape = input_shape(input.batch, input.sequence);
        self.run_session(input, select(outputs), |result| {
            read_outputs(result, &shape, outputs)
        })
    }

    /// Runs one batch through a backbone-only graph and copies out `token_embeddings`.
    pub fn run_backbone(&self, input: &BatchInput) -> Result<HiddenStates> {
        let selector = OutputSelector::no_default().with(TOKEN_EMBEDDINGS);
        let (dims, values) =
            self.run_session(input, selector, |result| extract(result, TOKEN_EMBEDDINGS))?;
        let shape = input_shape(input.batch, input.sequence);
        let expected = [Some(shape.batch), Some(shape.sequence), None];
        expect_shape(
            TOKEN_EMBEDDINGS,
            &dims,
            &expected,
            "[batch, sequence, hidden]",
        )?;
        Ok(HiddenStates {
            hidden: dim(&dims, 2),
            values,
        })
    }

    /// Returns the path of the graph.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one batch, computing only the outputs of `selector`, and passes them to
    /// `read` while the session is held.
    fn run_session<T>(
        &self,
        input: &BatchInput,
        selector: OutputSelector,
        read: impl FnOnce(&SessionOutputs<'_>) -> Result<T>,
    ) -> Result<T> {
        let onnx_error = |action: &'static str| {
            move |source| Error::Onnx {
                action: action.to_owned(),
                source,
            }
        };
        let shape = [input.batch, input.sequence];
        let ids = Tensor::from_array((shape, input.input_ids.clone()))
            .map_err(onnx_error("create the input_ids tensor"))?;
        let mask = Tensor::from_array((shape, input.attention_mask.clone()))
            .map_err(onnx_error("create the attention_mask tensor"))?;
        let options = RunOptions::new()
            .map_err(onnx_error("create run options"))?
            .with_outputs(selector);

        let mut session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = session
            .run_with_options(
                ort::inputs![INPUT_IDS => ids, ATTENTION_MASK => mask],
                &options,
            )
            .map_err(onnx_error("run the model"))?;
        read(&result)
    }
}

/// Classifies a graph by its output names: the three outputs, else `token_embeddings`.
fn graph_kind(output_names: &[String]) -> Option<GraphKind> {
    let has = |name: &str| output_names.iter().any(|found| found == name);
    if [DENSE, SPARSE, COLBERT].iter().all(|name| has(name)) {
        Some(GraphKind::ThreeOutputs)
    } else if has(TOKEN_EMBEDDINGS) {
        Some(GraphKind::Backbone)
    } else {
        None
    }
}

fn select(outputs: Outputs) -> OutputSelector {
    let mut selector = OutputSelector::no_default();
    for (wanted, name) in [
        (outputs.dense, DENSE),
        (outputs.sparse, SPARSE),
        (outputs.colbert, COLBERT),
    ] {
        if wanted {
            selector = selector.with(name);
        }
    }
    selector
}

struct InputShape {
    batch: i64,
    sequence: i64,
}

fn input_shape(batch: usize, sequence: usize) -> InputShape {
    InputShape {
        batch: i64::try_from(batch).unwrap_or(i64::MAX),
        sequence: i64::try_from(sequence).unwrap_or(i64::MAX),
    }
}

fn read_outputs(
    result: &SessionOutputs<'_>,
    shape: &InputShape,
    outputs: Outputs,
) -> Result<BatchOutput> {
    let mut batch = BatchOutput::default();
    if outputs.dense {
        let (dims, data) = extract(result, DENSE)?;
        expect_shape(DENSE, &dims, &[Some(shape.batch), None], "[batch, hidden]")?;
        batch.dense_dim = dim(&dims, 1);
        batch.dense = Some(data);
    }
    if outputs.sparse {
        let (dims, data) = extract(result, SPARSE)?;
        expect_shape(
            SPARSE,
            &dims,
            &[Some(shape.batch), Some(shape.sequence), Some(1)],
            "[batch, sequence, 1]",
        )?;
        batch.sparse = Some(data);
    }
    if outputs.colbert {
        let (dims, data) = extract(result, COLBERT)?;
        let rows = Some(shape.sequence - 1);
        expect_shape(
            COLBERT,
            &dims,
            &[Some(shape.batch), rows, None],
            "[batch, sequence - 1, hidden]",
        )?;
        batch.colbert_dim = dim(&dims, 2);
        batch.colbert = Some(data);
    }
    Ok(batch)
}

fn extract(result: &SessionOutputs<'_>, name: &'static str) -> Result<(Vec<i64>, Vec<f32>)> {
    let value = result.get(name).ok_or_else(|| Error::OutputShape {
        output: name,
        expected: "an output tensor".to_owned(),
        found: Vec::new(),
    })?;
    let (shape, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|source| Error::Onnx {
            action: format!("read the {name} output as float32"),
            source,
        })?;
    Ok((shape.to_vec(), data.to_vec()))
}

fn expect_shape(
    output: &'static str,
    dims: &[i64],
    expected: &[Option<i64>],
    words: &str,
) -> Result<()> {
    let fits = dims.len() == expected.len()
        && dims
            .iter()
            .zip(expected)
            .all(|(dim, want)| want.is_none_or(|want| want == *dim) && *dim >= 0);
    if fits {
        Ok(())
    } else {
        Err(Error::OutputShape {
            output,
            expected: words.to_owned(),
            found: dims.to_vec(),
        })
    }
}

fn dim(dims: &[i64], index: usize) -> usize {
    usize::try_from(dims[index]).unwrap_or(0)
}

fn read_attention(session: &Session) -> Attention {
    let value = session
        .metadata()
        .ok()
        .and_then(|metadata| metadata.custom(ATTENTION_METADATA_KEY));
    match value.as_deref() {
        Some(SPLIT_ON_PADDING) => Attention::FusedSplitOnPadding,
        _ => Attention::Standard,
    }
}

fn check_inputs(session: &Session, path: &Path) -> Result<()> {
    let mut found: Vec<String> = session
        .inputs()
        .iter()
        .map(|i| i.name().to_owned())
        .collect();
    found.sort();
    if found == [ATTENTION_MASK, INPUT_IDS] {
        Ok(())
    } else {
        Err(Error::UnexpectedInputs {
            path: path.to_path_buf(),
            found,
        })
    }
}
