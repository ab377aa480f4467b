//! Reading input records: one text per line, or one JSON object per line.
//!
//! Lines are split on `\n` only. Texts may contain U+2028, U+0085, vertical tab and
//! form feed, which other line splitters (Python's `str.splitlines`) treat as line
//! breaks. A UTF-8 byte order mark at the start of the input is removed. In JSONL
//! input, lines with only whitespace are not records and are skipped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// The format of the text in each input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// The line is the text. A trailing `\r` (Windows line ending) is removed.
    PlainText,
    /// The line is a JSON object with a string field `text`; blank lines are skipped.
    JsonLines,
}

/// An input line that could not be read as a record.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The input could not be read; no later line can be read either.
    #[error("failed to read the input")]
    Read(#[source] std::io::Error),
    /// A line is not valid UTF-8.
    #[error("input line {line} is not valid UTF-8 (at byte {byte}); convert the input to UTF-8")]
    InvalidUtf8 {
        /// 1-based line number.
        line: usize,
        /// Offset of the first invalid byte in the line.
        byte: usize,
    },
    /// A line is not the expected JSON object.
    // The parse error is part of the message and not a `source`, so that error chains
    // do not print it twice.
    #[error("input line {line} is not a JSON object with {expected}: {parse_error}")]
    InvalidJson {
        /// 1-based line number.
        line: usize,
        /// The fields the object needs, in words.
        expected: &'static str,
        /// The parse error.
        parse_error: serde_json::Error,
    },
}

impl InputError {
    /// Returns whether reading cannot go on, as opposed to one invalid line.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Read(_))
    }
}

#[derive(Deserialize)]
struct TextRecord {
    text: String,
}

/// A query and the passage to score it against.
#[derive(Debug, Clone, Deserialize)]
pub struct PairRecord {
    /// The query text.
    pub query: String,
    /// The passage text.
    pub passage: String,
}

const TEXT_FIELDS: &str = "a string field \"text\"";
const PAIR_FIELDS: &str = "string fields \"query\" and \"passage\"";

/// Reads records line by line.
pub struct RecordReader<R> {
    reader: R,
    format: InputFormat,
    line: usize,
    buffer: Vec<u8>,
}

impl<R: BufRead> RecordReader<R> {
    /// Wraps a reader.
    pub fn new(reader: R, format: InputFormat) -> Self {
        Self {
            reader,
            format,
            line: 0,
            buffer: Vec::new(),
        }
    }

    /// Returns the next text, `None` at the end of the input.
    pub fn next_text(&mut self) -> Result<Option<String>, InputError> {
        match self.format {
            InputFormat::PlainText => {
                let line = self.next_line()?;
                Ok(line.map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned()))
            }
            InputFormat::JsonLines => {
                let record: Option<TextRecord> = self.next_json(TEXT_FIELDS)?;
                Ok(record.map(|record| record.text))
            }
        }
    }

    /// Returns the next query/passage pair of a JSONL input, `None` at the end.
    pub fn next_pair(&mut self) -> Result<Option<PairRecord>, InputError> {
        self.next_json(PAIR_FIELDS)
    }

    /// Parses the next non-blank line as a JSON object.
    fn next_json<T: for<'de> Deserialize<'de>>(
        &mut self,
        expected: &'static str,
    ) -> Result<Option<T>, InputError> {
        loop {
            let line_number = self.line + 1;
            let Some(line) = self.next_line()? else {
                return Ok(None);
            };
            if line.trim().is_empty() {
                continue;
            }
            return parse_object(line, line_number, expected).map(Some);
        }
    }

    /// Reads one line without its `\n` and checks that it is UTF-8.
    fn next_line(&mut self) -> Result<Option<&str>, InputError> {
        self.buffer.clear();
        let read = self
            .reader
            .read_until(b'\n', &mut self.buffer)
            .map_err(InputError::Read)?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
        }
        let bytes = match self.line {
            1 => self
                .buffer
                .strip_prefix(b"\xef\xbb\xbf")
                .unwrap_or(&self.buffer),
            _ => &self.buffer[..],
        };
        let line = std::str::from_utf8(bytes).map_err(|error| InputError::InvalidUtf8 {
            line: self.line,
            byte: error.valid_up_to(),
        })?;
        Ok(Some(line))
    }
}

/// Up to a chunk size of records, and the input error that stopped the reading.
pub struct Chunk<T> {
    /// The records read, in input order.
    pub records: Vec<T>,
    /// The invalid line that ended the chunk early, if any.
    pub error: Option<InputError>,
    /// Whether the input has no more records after this chunk.
    pub is_last: bool,
}

/// Reads records with `next` until `size` are read, the input ends or a line is
/// invalid.
pub fn read_chunk<T>(
    size: usize,
    mut next: impl FnMut() -> Result<Option<T>, InputError>,
) -> Chunk<T> {
    let mut records = Vec::new();
    while records.len() < size {
        match next() {
            Ok(Some(record)) => records.push(record),
            Ok(None) => break,
            Err(error) => {
                return Chunk {
                    records,
                    error: Some(error),
                    is_last: true,
                }
            }
        }
    }
    let is_last = records.len() < size;
    Chunk {
        records,
        error: None,
        is_last,
    }
}

/// Ends a run stopped by an input error. A read failure is fatal and is returned as
/// an error (exit code 2). An invalid line is reported and gives exit code 1.
pub fn stop_on_input_error(
    error: InputError,
    input_name: &str,
) -> anyhow::Result<std::process::ExitCode> {
    if error.is_fatal() {
        return Err(anyhow::Error::new(error).context(format!("failed to read {input_name}")));
    }
    eprintln!("error: {error}");
    Ok(std::process::ExitCode::from(1))
}

/// Ends a run whose input file failed to read: an invalid line is reported and gives
/// exit code 1, as in streamed input, and any other error is returned (exit code 2).
pub fn stop_on_file_error(error: anyhow::Error) -> anyhow::Result<std::process::ExitCode> {
    let invalid_line = error
        .downcast_ref::<InputError>()
        .is_some_and(|input_error| !input_error.is_fatal());
    if invalid_line {
        eprintln!("error: {error:#}");
        return Ok(std::process::ExitCode::from(1));
    }
    Err(error)
}

/// Returns the name of an input for messages: its path, or "stdin".
pub fn input_name(path: Option<&std::path::Path>) -> String {
    path.map_or_else(|| "stdin".to_owned(), |path| path.display().to_string())
}

/// Adds the input record number to an embedding error about one text of a chunk
/// whose first record is `first_record` (1-based).
pub fn embed_error(error: bge_m3::Error, first_record: usize) -> anyhow::Error {
    match error.input_index() {
        Some(index) => {
            let record = first_record + index;
            anyhow::Error::new(error).context(format!("failed to embed input record {record}"))
        }
        None => anyhow::Error::new(error).context("failed to embed the input"),
    }
}

/// Parses a line that must be a JSON object (serde would also read a struct from an
/// array, so the shape is checked first).
///
/// The object is read straight into `T`, not through a map, so that a field given
/// twice is an error and not the last value silently.
fn parse_object<T: for<'de> Deserialize<'de>>(
    line: &str,
    line_number: usize,
    expected: &'static str,
) -> Result<T, InputError> {
    let invalid = |parse_error| InputError::InvalidJson {
        line: line_number,
        expected,
        parse_error,
    };
    if !line.trim_start().starts_with('{') {
        // Not an object: the parser's message for invalid JSON, else the shape.
        let error = match serde_json::from_str::<serde_json::Value>(line) {
            Err(error) => error,
            Ok(_) => <serde_json::Error as serde::de::Error>::custom("found another JSON value"),
        };
        return Err(invalid(error));
    }
    serde_json::from_str(line).map_err(invalid)
}

/// Opens an input file, with an error that names it.
pub fn open_input(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("failed to open the input file {}", path.display()))
}

/// Reads every text of a file; an invalid line is an error naming the file and line.
pub fn read_texts(path: &Path, format: InputFormat) -> anyhow::Result<Vec<String>> {
    let mut records = RecordReader::new(BufReader::new(open_input(path)?), format);
    let mut texts = Vec::new();
    while let Some(text) = records
        .next_text()
        .with_context(|| format!("failed to read {}", path.display()))?
    {
        texts.push(text);
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], format: InputFormat) -> (Vec<String>, Option<InputError>) {
        let mut reader = RecordReader::new(bytes, format);
        let mut texts = Vec::new();
        loop {
            match reader.next_text() {
                Ok(Some(text)) => texts.push(text),
                Ok(None) => return (texts, None),
                Err(error) => return (texts, Some(error)),
            }
        }
    }

    #[test]
    fn plain_keeps_empty_lines_and_strips_cr() {
        let (texts, error) = read_all(b"one\r\n\ntwo", InputFormat::PlainText);
        assert!(error.is_none());
        assert_eq!(texts, vec!["one", "", "two"]);
    }

    #[test]
    fn plain_keeps_unicode_line_separators() {
        let (texts, _) = read_all(
            "a\u{2028}b\u{85}c\u{b}d\u{c}e\n".as_bytes(),
            InputFormat::PlainText,
        );
        assert_eq!(texts, vec!["a\u{2028}b\u{85}c\u{b}d\u{c}e"]);
    }

    #[test]
    fn invalid_utf8_names_line() {
        let (texts, error) = read_all(b"fine\nbad \xff byte\n", InputFormat::PlainText);
        assert_eq!(texts, vec!["fine"]);
        let message = error.unwrap().to_string();
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn jsonl_reads_text_field() {
        let input = "{\"text\": \"a\\u2028b\", \"id\": 7}\n{\"text\": \"\"}\n";
        let (texts, error) = read_all(input.as_bytes(), InputFormat::JsonLines);
        assert!(error.is_none());
        assert_eq!(texts, vec!["a\u{2028}b", ""]);
    }

    #[test]
    fn jsonl_skips_blank_lines() {
        let (texts, error) = read_all(
            b"{\"text\": \"a\"}\n\n  \n{\"text\": \"b\"}\n\n",
            InputFormat::JsonLines,
        );
        assert!(error.is_none());
        assert_eq!(texts, vec!["a", "b"]);
    }

    #[test]
    fn jsonl_rejects_array() {
        let (texts, error) = read_all(b"[\"a\"]\n", InputFormat::JsonLines);
        assert!(texts.is_empty());
        let message = error.unwrap().to_string();
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn jsonl_rejects_repeated_field() {
        let (texts, error) = read_all(
            b"{\"text\": \"a\", \"text\": \"b\"}\n",
            InputFormat::JsonLines,
        );
        assert!(texts.is_empty());
        let message = error.unwrap().to_string();
        assert!(message.contains("line 1"), "{message}");
        assert!(message.contains("duplicate field `text`"), "{message}");
    }

    #[test]
    fn jsonl_shape_errors_keep_parser_message() {
        let cases = [
            (&b"[\"a\"]\n"[..], "found another JSON value"),
            (b"x\n", "expected value"),
            (b"  {\"text\": \"a\"\n", "EOF while parsing"),
        ];
        for (input, expected) in cases {
            let (_, error) = read_all(input, InputFormat::JsonLines);
            let message = error.unwrap().to_string();
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn leading_bom_is_removed() {
        let (texts, _) = read_all(b"\xef\xbb\xbf{\"text\": \"a\"}\n", InputFormat::JsonLines);
        assert_eq!(texts, vec!["a"]);
        let (texts, _) = read_all(b"\xef\xbb\xbfa\n\xef\xbb\xbfb\n", InputFormat::PlainText);
        assert_eq!(
            texts,
            vec!["a", "\u{feff}b"],
            "only the first line's BOM is removed"
        );
    }

    #[test]
    fn pairs_read_query_and_passage() {
        let input = b"{\"query\": \"q\", \"passage\": \"p\"}\n{\"query\": \"q2\"}\n";
        let mut reader = RecordReader::new(&input[..], InputFormat::JsonLines);
        let pair = reader.next_pair().unwrap().unwrap();
        assert_eq!((pair.query.as_str(), pair.passage.as_str()), ("q", "p"));
        let message = reader.next_pair().unwrap_err().to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("passage"), "{message}");
    }

    #[test]
    fn jsonl_invalid_json_names_line() {
        let (texts, error) = read_all(
            b"{\"text\": \"ok\"}\n{\"text\": 3}\n",
            InputFormat::JsonLines,
        );
        assert_eq!(texts, vec!["ok"]);
        let message = error.unwrap().to_string();
        assert!(message.contains("line 2"), "{message}");
    }
}
