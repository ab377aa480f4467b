//! `bge-m3 verify`: compare the engine with a FlagEmbedding reference dump.
//!
//! The dump comes from `python/dump_reference.py` run on the same texts with the
//! FlagEmbedding checkpoint the model was exported from. For each text the report
//! shows the dense cosine similarity and max abs difference. For sparse weights it
//! shows the token counts on both sides, whether the id sets are equal, the max weight
//! difference and the top-5 tokens side by side. For ColBERT it shows the row counts
//! and the max difference. The exit code
//! is 1 when any text is outside a tolerance, and the report names those texts.

mod compare;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bge_m3::{EmbedRequest, Embedder, EmbedderOptions, Outputs, Tokenizer};

use compare::{ReferenceRecord, TextComparison, Tolerances};

use crate::model_source::ModelArgs;

/// Arguments of `bge-m3 verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// Reference dump written by python/dump_reference.py (JSONL).
    #[arg(long)]
    reference: PathBuf,

    /// Max absolute difference allowed in a dense value.
    #[arg(long, default_value_t = 1e-5, value_parser = parse_tolerance)]
    dense_tolerance: f32,

    /// Max absolute difference allowed in a sparse weight.
    #[arg(long, default_value_t = 1e-5, value_parser = parse_tolerance)]
    sparse_tolerance: f32,

    /// Max absolute difference allowed in a ColBERT value.
    #[arg(long, default_value_t = 1e-5, value_parser = parse_tolerance)]
    colbert_tolerance: f32,

    /// ONNX Runtime intra-op threads (default: one per physical core available, and 0 lets
    /// ONNX Runtime choose).
    #[arg(long, env = "BGE_M3_THREADS")]
    threads: Option<usize>,
}

/// Runs `bge-m3 verify`.
pub fn run(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let (records, lines) = read_reference(&args.reference)?;
    if records.is_empty() {
        anyhow::bail!(
            "the reference {} has no records; write it with python/dump_reference.py",
            args.reference.display()
        );
    }
    let mut options = EmbedderOptions::new();
    if let Some(threads) = args.threads {
        options = options.with_threads(threads);
    }
    let model_dir = args.model.resolve()?;
    let embedder = Embedder::try_new(&model_dir, options)
        .with_context(|| format!("failed to load the model {}", args.model.value()))?;
    let tolerances = Tolerances {
        dense: args.dense_tolerance,
        sparse: args.sparse_tolerance,
        colbert: args.colbert_tolerance,
    };
    let comparisons = compare_all(&embedder, &records)?;

    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut failed: Vec<usize> = Vec::new();
    for (index, (record, comparison)) in records.iter().zip(&comparisons).enumerate() {
        let failures = comparison.failures(tolerances);
        write_text_report(
            &mut out,
            lines[index],
            record,
            comparison,
            &failures,
            embedder.tokenizer(),
        )?;
        if !failures.is_empty() {
            failed.push(index);
        }
    }
    write_summary(&mut out, &records, &lines, &comparisons, &failed)?;
    out.flush()?;
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn parse_tolerance(value: &str) -> Result<f32, String> {
    let tolerance: f32 = value.parse().map_err(|error| format!("{error}"))?;
    if tolerance >= 0.0 {
        Ok(tolerance)
    } else {
        Err("a tolerance must be a number >= 0".to_owned())
    }
}

/// Reads the reference records and the line number (1-based) of each in the file.
fn read_reference(path: &PathBuf) -> anyhow::Result<(Vec<ReferenceRecord>, Vec<usize>)> {
    let file = File::open(path)
        .with_context(|| format!("failed to open the reference {}", path.display()))?;
    let text = std::io::read_to_string(BufReader::new(file))
        .with_context(|| format!("failed to read the reference {} as UTF-8", path.display()))?;
    text.split('\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| {
            let record = serde_json::from_str(line).with_context(|| {
                format!(
                    "line {} of {} is not a reference record (text, max_length, input_ids, \
                     dense, sparse, colbert); write it with python/dump_reference.py",
                    index + 1,
                    path.display()
                )
            })?;
            Ok((record, index + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(|numbered| numbered.into_iter().unzip())
}

/// Embeds every reference text at its own max length and compares it.
fn compare_all(
    embedder: &Embedder,
    records: &[ReferenceRecord],
) -> anyhow::Result<Vec<TextComparison>> {
    let mut by_length: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        by_length.entry(record.max_length).or_default().push(index);
    }
    let mut comparisons: Vec<Option<TextComparison>> = records.iter().map(|_| None).collect();
    for (max_length, indices) in by_length {
        let texts: Vec<&str> = indices.iter().map(|&i| records[i].text.as_str()).collect();
        let request = EmbedRequest::new(Outputs::ALL, max_length);
        let embeddings = embedder
            .embed_request(&texts, request, &mut |_| {})
            .with_context(|| {
                format!("failed to embed the reference texts of max length {max_length}")
            })?;
        for ((&index, embedding), text) in indices.iter().zip(&embeddings).zip(&texts) {
            let ids = embedder.tokenizer().encode(text, max_length, index)?.ids;
            comparisons[index] = Some(TextComparison::new(embedding, &ids, &records[index]));
        }
    }
    Ok(comparisons.into_iter().flatten().collect())
}

fn preview(text: &str) -> String {
    const CHARS: usize = 40;
    let mut shown: String = text.chars().take(CHARS).collect();
    if text.chars().count() > CHARS {
        shown.push('…');
    }
    format!("{shown:?}")
}

fn token_list(tokens: &[(u32, f32)], tokenizer: &Tokenizer) -> String {
    let shown: Vec<String> = tokens
        .iter()
        .map(|&(id, weight)| {
            let text = tokenizer
                .token_text(id)
                .unwrap_or_else(|_| format!("[{id}]"));
            format!("{text:?} {weight:.4}")
        })
        .collect();
    shown.join(", ")
}

fn write_text_report(
    out: &mut impl Write,
    line: usize,
    record: &ReferenceRecord,
    comparison: &TextComparison,
    failures: &[String],
    tokenizer: &Tokenizer,
) -> std::io::Result<()> {
    let verdict = if failures.is_empty() {
        "ok".to_owned()
    } else {
        format!("FAILED: {}", failures.join("; "))
    };
    writeln!(
        out,
        "line {line} {} (max length {}, {} tokens, ids {}): {verdict}",
        preview(&record.text),
        record.max_length,
        comparison.tokens,
        if comparison.ids_equal {
            "equal"
        } else {
            "DIFFERENT"
        },
    )?;
    writeln!(
        out,
        "  dense: cosine {:.7}, max abs diff {:.2e}",
        comparison.dense_cosine, comparison.dense_max_diff
    )?;
    let sparse = &comparison.sparse;
    writeln!(
        out,
        "  sparse: {} tokens (reference {}), ids {}, max weight diff {:.2e}",
        sparse.counts.0,
        sparse.counts.1,
        if sparse.same_keys {
            "equal"
        } else {
            "DIFFERENT"
        },
        sparse.max_diff
    )?;
    writeln!(
        out,
        "    top 5 engine:    {}",
        token_list(&sparse.top_engine, tokenizer)
    )?;
    writeln!(
        out,
        "    top 5 reference: {}",
        token_list(&sparse.top_reference, tokenizer)
    )?;
    let colbert_diff = comparison
        .colbert_max_diff
        .map_or_else(|| "not comparable".to_owned(), |diff| format!("{diff:.2e}"));
    writeln!(
        out,
        "  colbert: {} rows (reference {}), max abs diff {colbert_diff}",
        comparison.colbert_rows.0, comparison.colbert_rows.1
    )
}

fn write_summary(
    out: &mut impl Write,
    records: &[ReferenceRecord],
    lines: &[usize],
    comparisons: &[TextComparison],
    failed: &[usize],
) -> std::io::Result<()> {
    let worst =
        |value: fn(&TextComparison) -> f32| comparisons.iter().map(value).fold(0.0, f32::max);
    let min_cosine = comparisons
        .iter()
        .map(|c| c.dense_cosine)
        .fold(1.0, f32::min);
    writeln!(out)?;
    writeln!(
        out,
        "total: {} texts, {} passed, {} failed",
        records.len(),
        records.len() - failed.len(),
        failed.len()
    )?;
    writeln!(
        out,
        "  min dense cosine {min_cosine:.7}; max abs diff: dense {:.2e}, sparse {:.2e}, colbert {:.2e}",
        worst(|c| c.dense_max_diff),
        worst(|c| c.sparse.max_diff),
        worst(|c| c.colbert_max_diff.unwrap_or(f32::INFINITY)),
    )?;
    for &index in failed {
        writeln!(
            out,
            "  failed: line {} {}",
            lines[index],
            preview(&records[index].text)
        )?;
    }
    Ok(())
}
