//! `bge-m3 score`: relevance scores of query/passage pairs, or of every query against
//! every passage, as JSON lines.
//!
//! Pairs come as JSONL `{"query": ..., "passage": ...}` from stdin or `--input`, one
//! output line per pair: `{"dense", "sparse", "colbert", "sparse+dense",
//! "colbert+sparse+dense"}`. With `--queries` and `--passages`, one output line per
//! query contains each score kind as an array over the passages. As in `embed`, an
//! invalid input line stops the run after the output of the lines before it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use bge_m3::{
    EmbedRequest, Embedder, EmbedderOptions, Embedding, Outputs, PairScores, ScoreWeights,
};
use serde::Serialize;

use crate::input::{
    embed_error, input_name, open_input, read_chunk, read_texts, stop_on_file_error,
    stop_on_input_error, InputFormat, PairRecord, RecordReader,
};
use crate::model_source::ModelArgs;

/// Arguments of `bge-m3 score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// Read JSONL pairs {"query": ..., "passage": ...} from this file instead of stdin.
    #[arg(long, conflicts_with_all = ["queries", "passages"])]
    input: Option<PathBuf>,

    /// Score every query of this file (one per line) against every passage.
    #[arg(long, requires = "passages")]
    queries: Option<PathBuf>,

    /// Passages to score the queries against (one per line).
    #[arg(long, requires = "queries")]
    passages: Option<PathBuf>,

    /// Read --queries and --passages as JSONL {"text": ...} instead of one text per line.
    #[arg(long, requires = "queries")]
    jsonl: bool,

    /// Weights of the dense, sparse and ColBERT scores in the combined scores.
    #[arg(long, value_delimiter = ',', default_value = "1,1,1")]
    weights: Vec<f32>,

    /// Max length of queries in tokens.
    #[arg(long, default_value_t = bge_m3::DEFAULT_QUERY_MAX_LENGTH, value_parser = bge_m3_server::flags::max_length)]
    max_query_length: usize,

    /// Max length of passages in tokens.
    #[arg(long, default_value_t = bge_m3::DEFAULT_PASSAGE_MAX_LENGTH, value_parser = bge_m3_server::flags::max_length)]
    max_passage_length: usize,

    /// Add the shared tokens behind each sparse score, keyed by token text (pairs only).
    #[arg(long, conflicts_with = "queries")]
    tokens: bool,

    /// Max padded tokens in one model call (texts × longest text).
    #[arg(long, default_value_t = bge_m3::DEFAULT_TOKEN_BUDGET, value_parser = bge_m3_server::flags::token_budget)]
    token_budget: usize,

    /// ONNX Runtime intra-op threads (default: one per physical core available, and 0 lets
    /// ONNX Runtime choose).
    #[arg(long, env = "BGE_M3_THREADS")]
    threads: Option<usize>,

    /// Pairs read and scored together before their output is written.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    chunk_size: u64,
}

impl ScoreArgs {
    fn weights(&self) -> anyhow::Result<ScoreWeights> {
        let [dense, sparse, colbert] = self.weights[..] else {
            bail!(
                "--weights needs three values (dense,sparse,colbert), got {:?}",
                self.weights
            );
        };
        let weights = ScoreWeights {
            dense,
            sparse,
            colbert,
        };
        weights.validate().context("invalid --weights")?;
        Ok(weights)
    }

    fn embedder(&self) -> anyhow::Result<Embedder> {
        let mut options = EmbedderOptions::new().with_token_budget(self.token_budget);
        if let Some(threads) = self.threads {
            options = options.with_threads(threads);
        }
        let model_dir = self.model.resolve()?;
        Embedder::try_new(&model_dir, options)
            .with_context(|| format!("failed to load the model {}", self.model.value()))
    }
}

/// Runs `bge-m3 score`.
pub fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let weights = args.weights()?;
    let embedder = args.embedder()?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let scorer = Scorer {
        embedder: &embedder,
        weights,
        query_request: EmbedRequest::new(Outputs::ALL, args.max_query_length),
        passage_request: EmbedRequest::new(Outputs::ALL, args.max_passage_length),
        input_name: input_name(args.input.as_deref()),
    };
    match (&args.queries, &args.passages) {
        (Some(queries), Some(passages)) => {
            let format = if args.jsonl {
                InputFormat::JsonLines
            } else {
                InputFormat::PlainText
            };
            let queries = match read_texts(queries, format) {
                Ok(texts) => texts,
                Err(error) => return stop_on_file_error(error),
            };
            let passages = match read_texts(passages, format) {
                Ok(texts) => texts,
                Err(error) => return stop_on_file_error(error),
            };
            scorer.write_matrix(&queries, &passages, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            let reader: Box<dyn BufRead> = match &args.input {
                Some(path) => Box::new(BufReader::new(open_input(path)?)),
                None => Box::new(std::io::stdin().lock()),
            };
            let chunk_size = usize::try_from(args.chunk_size).unwrap_or(usize::MAX);
            scorer.write_pairs(
                RecordReader::new(reader, InputFormat::JsonLines),
                chunk_size,
                args.tokens,
                &mut out,
            )
        }
    }
}

struct Scorer<'a> {
    embedder: &'a Embedder,
    weights: ScoreWeights,
    query_request: EmbedRequest,
    passage_request: EmbedRequest,
    input_name: String,
}

/// One output line of pair scoring.
#[derive(Serialize)]
struct PairLine {
    #[serde(flatten)]
    scores: ScoreFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    lexical_matches: Option<BTreeMap<String, [f32; 2]>>,
}

#[derive(Serialize)]
struct ScoreFields {
    dense: f32,
    sparse: f32,
    colbert: f32,
    #[serde(rename = "sparse+dense")]
    sparse_dense: f32,
    #[serde(rename = "colbert+sparse+dense")]
    colbert_sparse_dense: f32,
}

impl From<&PairScores> for ScoreFields {
    fn from(scores: &PairScores) -> Self {
        Self {
            dense: scores.dense,
            sparse: scores.sparse,
            colbert: scores.colbert,
            sparse_dense: scores.sparse_dense,
            colbert_sparse_dense: scores.colbert_sparse_dense,
        }
    }
}

/// One output line of matrix scoring: each kind over all passages.
#[derive(Serialize, Default)]
struct MatrixLine {
    query: usize,
    dense: Vec<f32>,
    sparse: Vec<f32>,
    colbert: Vec<f32>,
    #[serde(rename = "sparse+dense")]
    sparse_dense: Vec<f32>,
    #[serde(rename = "colbert+sparse+dense")]
    colbert_sparse_dense: Vec<f32>,
}

impl Scorer<'_> {
    fn embed(
        &self,
        texts: &[String],
        request: EmbedRequest,
        first_record: usize,
    ) -> anyhow::Result<Vec<Embedding>> {
        self.embedder
            .embed_request(texts, request, &mut |_| {})
            .map_err(|error| embed_error(error, first_record))
    }

    fn score(&self, query: &Embedding, passage: &Embedding) -> PairScores {
        PairScores::from_embeddings(query, passage, self.weights)
            .expect("all three outputs were requested")
    }

    fn write_pairs(
        &self,
        mut records: RecordReader<Box<dyn BufRead + '_>>,
        chunk_size: usize,
        token_texts: bool,
        out: &mut impl Write,
    ) -> anyhow::Result<ExitCode> {
        let mut written = 0;
        loop {
            let chunk = read_chunk(chunk_size, || records.next_pair());
            self.write_pair_chunk(&chunk.records, written + 1, token_texts, out)?;
            written += chunk.records.len();
            if let Some(error) = chunk.error {
                return stop_on_input_error(error, &self.input_name);
            }
            if chunk.is_last {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }

    fn write_pair_chunk(
        &self,
        pairs: &[PairRecord],
        first_record: usize,
        token_texts: bool,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        let queries: Vec<String> = pairs.iter().map(|pair| pair.query.clone()).collect();
        let passages: Vec<String> = pairs.iter().map(|pair| pair.passage.clone()).collect();
        let queries = self.embed(&queries, self.query_request, first_record)?;
        let passages = self.embed(&passages, self.passage_request, first_record)?;
        for (query, passage) in queries.iter().zip(&passages) {
            let lexical_matches = match token_texts {
                true => Some(self.lexical_matches(query, passage)?),
                false => None,
            };
            let line = PairLine {
                scores: ScoreFields::from(&self.score(query, passage)),
                lexical_matches,
            };
            write_line(out, &line)?;
        }
        out.flush().context("failed to write the output")
    }

    /// Returns the tokens present in both texts, with the query and passage weights.
    fn lexical_matches(
        &self,
        query: &Embedding,
        passage: &Embedding,
    ) -> anyhow::Result<BTreeMap<String, [f32; 2]>> {
        let (Some(query), Some(passage)) = (&query.sparse, &passage.sparse) else {
            return Ok(BTreeMap::new());
        };
        let tokenizer = self.embedder.tokenizer();
        let texts = tokenizer
            .sparse_by_text(query)
            .context("failed to decode token ids")?;
        let matches = query
            .entries
            .iter()
            .zip(texts)
            .filter_map(|(&(id, q_weight), (text, _))| {
                passage
                    .weight(id)
                    .map(|p_weight| (text, [q_weight, p_weight]))
            })
            .collect();
        Ok(matches)
    }

    fn write_matrix(
        &self,
        queries: &[String],
        passages: &[String],
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        let queries = self.embed(queries, self.query_request, 1)?;
        let passages = self.embed(passages, self.passage_request, 1)?;
        for (index, query) in queries.iter().enumerate() {
            let mut line = MatrixLine {
                query: index,
                ..MatrixLine::default()
            };
            for passage in &passages {
                let scores = self.score(query, passage);
                line.dense.push(scores.dense);
                line.sparse.push(scores.sparse);
                line.colbert.push(scores.colbert);
                line.sparse_dense.push(scores.sparse_dense);
                line.colbert_sparse_dense.push(scores.colbert_sparse_dense);
            }
            write_line(out, &line)?;
        }
        out.flush().context("failed to write the output")
    }
}

fn write_line(out: &mut impl Write, line: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, line).context("failed to write the output")?;
    out.write_all(b"\n").context("failed to write the output")
}
