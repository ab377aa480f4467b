//! Reading input records: one text per line, or one JSON object per line.
//!
//! Lines are split on `\n` only. Texts may contain U+2028, U+0085, vertical tab and
//! form feed, which other line splitters (Python's `str.splitlines`) treat as line
//! breaks.

use std::io::BufRead;

use serde::Deserialize;

/// The format of the text in each input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// The line is the text. A trailing `\r` (Windows line ending) is removed.
    PlainText,
    /// The line is a JSON object with a string field `text`.
    JsonLines,
}

/// An input line that could not be read as a record.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The input could not be read.
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
    #[error("input line {line} is not a JSON object with {expected}: {source}")]
    InvalidJson {
        /// 1-based line number.
        line: usize,
        /// The fields the object needs, in words.
        expected: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
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
        let format = self.format;
        let line_number = self.line + 1;
        let Some(line) = self.next_line()? else {
            return Ok(None);
        };
        match format {
            InputFormat::PlainText => Ok(Some(line.strip_suffix('\r').unwrap_or(line).to_owned())),
            InputFormat::JsonLines => parse_json::<TextRecord>(line, line_number, TEXT_FIELDS)
                .map(|record| Some(record.text)),
        }
    }

    /// Returns the next query/passage pair of a JSONL input, `None` at the end.
    pub fn next_pair(&mut self) -> Result<Option<PairRecord>, InputError> {
        let line_number = self.line + 1;
        match self.next_line()? {
            Some(line) => parse_json(line, line_number, PAIR_FIELDS).map(Some),
            None => Ok(None),
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
        let line = std::str::from_utf8(&self.buffer).map_err(|error| InputError::InvalidUtf8 {
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

fn parse_json<T: for<'de> Deserialize<'de>>(
    line: &str,
    line_number: usize,
    expected: &'static str,
) -> Result<T, InputError> {
    serde_json::from_str(line).map_err(|source| InputError::InvalidJson {
        line: line_number,
        expected,
        source,
    })
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
