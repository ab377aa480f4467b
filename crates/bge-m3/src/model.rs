//! The model of one folder: a three-output graph, or a backbone-only graph with
//! FlagEmbedding's heads applied in Rust.
//!
//! Both produce the same [`BatchOutput`], so everything after a model call (cutting
//! each text's rows, the sparse post-processing, the checks for non-finite values)
//! does not depend on the layout.

use std::path::Path;

use crate::error::{Error, Result};
use crate::head_weights::{HeadWeights, COLBERT_HEAD_FILE, SPARSE_HEAD_FILE};
use crate::linear_heads::{self, TokenEmbeddings};
use crate::model_files::ModelFiles;
use crate::session::{
    Attention, BatchInput, BatchOutput, GraphKind, OnnxModel, Outputs, SessionSettings,
    TOKEN_EMBEDDINGS,
};

/// A loaded model.
#[derive(Debug)]
pub(crate) enum Model {
    /// A graph that returns the three outputs itself.
    ThreeOutputs(OnnxModel),
    /// A graph that returns `token_embeddings`, and the heads to apply to them.
    Backbone {
        graph: OnnxModel,
        heads: HeadWeights,
    },
}

impl Model {
    /// Loads the graph of `files`, and the head files when the graph is backbone-only.
    pub fn load(files: &ModelFiles, settings: SessionSettings) -> Result<Self> {
        let graph = OnnxModel::load(&files.model, files.embedding_table.as_ref(), settings)?;
        if graph.kind() == GraphKind::ThreeOutputs {
            return Ok(Self::ThreeOutputs(graph));
        }
        let (Some(colbert), Some(sparse)) = (&files.colbert_head, &files.sparse_head) else {
            return Err(Error::UnexpectedOutputs {
                path: files.model.clone(),
                found: graph.output_names().to_vec(),
            });
        };
        let heads = HeadWeights::load(colbert, sparse)?;
        Ok(Self::Backbone { graph, heads })
    }

    /// Runs one batch and returns the selected outputs.
    pub fn run(&self, input: &BatchInput, outputs: Outputs) -> Result<BatchOutput> {
        match self {
            Self::ThreeOutputs(graph) => graph.run(input, outputs),
            Self::Backbone { graph, heads } => run_backbone(graph, heads, input, outputs),
        }
    }

    /// Returns the path of the graph.
    pub fn path(&self) -> &Path {
        match self {
            Self::ThreeOutputs(graph) | Self::Backbone { graph, .. } => graph.path(),
        }
    }

    /// Returns how the graph computes attention.
    pub fn attention(&self) -> Attention {
        match self {
            Self::ThreeOutputs(graph) | Self::Backbone { graph, .. } => graph.attention(),
        }
    }

    /// Returns a short name of the layout, for logs.
    pub fn layout(&self) -> &'static str {
        match self {
            Self::ThreeOutputs(_) => "three outputs",
            Self::Backbone { .. } => "backbone with head files",
        }
    }
}

fn run_backbone(
    graph: &OnnxModel,
    heads: &HeadWeights,
    input: &BatchInput,
    outputs: Outputs,
) -> Result<BatchOutput> {
    let states = graph.run_backbone(input)?;
    if states.hidden != heads.hidden() {
        return Err(Error::OutputShape {
            output: TOKEN_EMBEDDINGS,
            expected: format!(
                "[batch, sequence, {}] (the input size of {COLBERT_HEAD_FILE} and \
                 {SPARSE_HEAD_FILE})",
                heads.hidden()
            ),
            found: [input.batch, input.sequence, states.hidden]
                .map(|dim| i64::try_from(dim).unwrap_or(i64::MAX))
                .to_vec(),
        });
    }
    let tokens = TokenEmbeddings {
        batch: input.batch,
        sequence: input.sequence,
        hidden: states.hidden,
        values: &states.values,
    };
    Ok(BatchOutput {
        dense_dim: states.hidden,
        colbert_dim: heads.colbert.out_features,
        dense: outputs.dense.then(|| linear_heads::dense(tokens)),
        sparse: outputs
            .sparse
            .then(|| linear_heads::sparse(tokens, &heads.sparse)),
        colbert: outputs
            .colbert
            .then(|| linear_heads::colbert(tokens, &input.attention_mask, &heads.colbert)),
    })
}
