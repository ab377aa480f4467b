//! `bge-m3 embed`: texts in, one JSON object per text out, in input order.
//!
//! Texts are read and embedded in chunks, and each chunk's output is written and
//! flushed before the next is read, so memory stays bounded on long inputs. An
//! invalid line stops the run: the texts before it are embedded and written first,
//! then the error names the line and the exit code is 1.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bge_m3::{Embedder, EmbedderOptions, Outputs};
use indicatif::{ProgressBar, ProgressStyle};

use crate::input::{
    embed_error, input_name, read_chunk, stop_on_input_error, InputFormat, RecordReader,
};
use crate::model_source::ModelArgs;
use crate::output::Record;

/// Arguments of `bge-m3 embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// Read texts from this file instead of stdin.
    #[arg(long)]
    input: Option<PathBuf>,

    /// Read one JSON object {"text": ...} per line instead of one text per line.
    #[arg(long)]
    jsonl: bool,

    /// Write the dense vector (all three outputs are written when none is chosen).
    #[arg(long)]
    dense: bool,

    /// Write the sparse weights, keyed by token id.
    #[arg(long)]
    sparse: bool,

    /// Write the ColBERT vectors.
    #[arg(long)]
    colbert: bool,

    /// Key sparse weights by token text instead of token id.
    #[arg(long)]
    tokens: bool,

    /// Max length in tokens, <s> and </s> included; longer texts are truncated.
    #[arg(long, default_value_t = bge_m3::DEFAULT_MAX_LENGTH, value_parser = bge_m3_server::flags::max_length)]
    max_length: usize,

    /// Max padded tokens in one model call (texts × longest text).
    #[arg(long, default_value_t = bge_m3::DEFAULT_TOKEN_BUDGET, value_parser = bge_m3_server::flags::token_budget)]
    token_budget: usize,

    /// ONNX Runtime intra-op threads (default: one per physical core available, and 0 lets
    /// ONNX Runtime choose).
    #[arg(long, env = "BGE_M3_THREADS")]
    threads: Option<usize>,

    /// Texts read and embedded together before their output is written.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    chunk_size: u64,
}

impl EmbedArgs {
    fn outputs(&self) -> Outputs {
        if !(self.dense || self.sparse || self.colbert) {
            return Outputs::ALL;
        }
        Outputs {
            dense: self.dense,
            sparse: self.sparse,
            colbert: self.colbert,
        }
    }

    fn options(&self) -> EmbedderOptions {
        let mut options = EmbedderOptions::new()
            .with_max_length(self.max_length)
            .with_token_budget(self.token_budget)
            .with_outputs(self.outputs());
        if let Some(threads) = self.threads {
            options = options.with_threads(threads);
        }
        options
    }

    fn reader(&self) -> anyhow::Result<Box<dyn BufRead>> {
        match &self.input {
            Some(path) => {
                let file = File::open(path)
                    .with_context(|| format!("failed to open the input file {}", path.display()))?;
                Ok(Box::new(BufReader::new(file)))
            }
            None => Ok(Box::new(std::io::stdin().lock())),
        }
    }
}

/// Runs `bge-m3 embed`.
pub fn run(args: &EmbedArgs) -> anyhow::Result<ExitCode> {
    let model_dir = args.model.resolve()?;
    let embedder = Embedder::try_new(&model_dir, args.options())
        .with_context(|| format!("failed to load the model {}", args.model.value()))?;
    let format = if args.jsonl {
        InputFormat::JsonLines
    } else {
        InputFormat::PlainText
    };
    let mut records = RecordReader::new(args.reader()?, format);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let progress = progress_bar();
    let chunk_size = usize::try_from(args.chunk_size).unwrap_or(usize::MAX);

    loop {
        let chunk = read_chunk(chunk_size, || records.next_text());
        write_chunk(&embedder, &chunk.records, args.tokens, &mut out, &progress)?;
        if let Some(error) = chunk.error {
            progress.abandon();
            return stop_on_input_error(error, &input_name(args.input.as_deref()));
        }
        if chunk.is_last {
            break;
        }
    }
    progress.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

fn write_chunk(
    embedder: &Embedder,
    texts: &[String],
    token_texts: bool,
    out: &mut impl Write,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    if texts.is_empty() {
        return Ok(());
    }
    let first_record = usize::try_from(progress.position()).unwrap_or(usize::MAX) + 1;
    let embeddings = embedder
        .embed_with_progress(texts, &mut |count| progress.inc(count as u64))
        .map_err(|error| embed_error(error, first_record))?;
    let tokenizer = token_texts.then(|| embedder.tokenizer());
    for embedding in &embeddings {
        let record = Record::new(embedding, tokenizer).context("failed to decode token ids")?;
        serde_json::to_writer(&mut *out, &record).context("failed to write the output")?;
        out.write_all(b"\n").context("failed to write the output")?;
    }
    out.flush().context("failed to write the output")?;
    Ok(())
}

fn progress_bar() -> ProgressBar {
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::new_spinner();
    let style =
        ProgressStyle::with_template("{spinner} {pos} texts embedded ({per_sec}, {elapsed})")
            .expect("the progress template is valid");
    bar.set_style(style);
    bar
}
