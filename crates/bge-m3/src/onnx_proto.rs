//! Just enough protobuf reading to list an ONNX graph's outputs without loading it.
//!
//! Downloads use it to decide, before any session exists, whether a root `model.onnx`
//! is backbone-only and needs the `.pt` head files. The messages read, from
//! `onnx/onnx.proto`: `ModelProto.graph = 7`, `GraphProto.output = 12` and
//! `ValueInfoProto.name = 1`.

const MODEL_GRAPH: u64 = 7;
const GRAPH_OUTPUT: u64 = 12;
const VALUE_INFO_NAME: u64 = 1;

/// Returns the output names of the graph in a serialised `ModelProto`, or `None` when
/// the bytes are not a well-formed one.
pub(crate) fn graph_output_names(model: &[u8]) -> Option<Vec<String>> {
    let graph = last_bytes_field(model, MODEL_GRAPH)?;
    let mut names = Vec::new();
    for field in Fields::new(graph) {
        let (number, value) = field?;
        if let (GRAPH_OUTPUT, Value::Bytes(output)) = (number, value) {
            let name = last_bytes_field(output, VALUE_INFO_NAME)?;
            names.push(String::from_utf8(name.to_vec()).ok()?);
        }
    }
    Some(names)
}

/// Returns the last length-delimited field `number` of a message, as protobuf merges
/// repeated occurrences of a singular field.
fn last_bytes_field(message: &[u8], number: u64) -> Option<&[u8]> {
    let mut found = None;
    for field in Fields::new(message) {
        if let (field_number, Value::Bytes(bytes)) = field? {
            if field_number == number {
                found = Some(bytes);
            }
        }
    }
    found
}

/// A field value; only length-delimited contents are kept.
enum Value<'a> {
    Bytes(&'a [u8]),
    Other,
}

/// The fields of one message; yields `None` once on malformed input, then stops.
struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(message: &'a [u8]) -> Self {
        Self {
            rest: message,
            failed: false,
        }
    }

    fn read(&mut self) -> Option<(u64, Value<'a>)> {
        let (key, used) = read_varint(self.rest)?;
        self.rest = &self.rest[used..];
        let value = match key & 7 {
            0 => {
                let (_, used) = read_varint(self.rest)?;
                self.skip(used)?;
                Value::Other
            }
            1 => {
                self.skip(8)?;
                Value::Other
            }
            2 => {
                let (length, used) = read_varint(self.rest)?;
                self.skip(used)?;
                let length = usize::try_from(length).ok()?;
                let bytes = self.rest.get(..length)?;
                self.skip(length)?;
                Value::Bytes(bytes)
            }
            5 => {
                self.skip(4)?;
                Value::Other
            }
            _ => return None,
        };
        Some((key >> 3, value))
    }

    fn skip(&mut self, count: usize) -> Option<()> {
        self.rest = self.rest.get(count..)?;
        Some(())
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<(u64, Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let field = self.read();
        self.failed = field.is_none();
        Some(field)
    }
}

/// Reads a base-128 varint and returns it with the number of bytes it used.
pub(crate) fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        std::fs::read(root.join(path)).unwrap()
    }

    #[test]
    fn lists_backbone_outputs() {
        let names = graph_output_names(&fixture("tiny-bge-m3-official/onnx/model.onnx")).unwrap();
        assert_eq!(names, vec!["token_embeddings", "sentence_embedding"]);
    }

    #[test]
    fn lists_three_outputs() {
        let names = graph_output_names(&fixture("tiny-bge-m3/model.onnx")).unwrap();
        assert_eq!(
            names,
            vec!["dense_embeddings", "sparse_weights", "colbert_vectors"]
        );
    }

    #[test]
    fn truncated_graph_is_rejected() {
        let mut bytes = fixture("tiny-bge-m3-official/onnx/model.onnx");
        bytes.truncate(bytes.len() / 2);
        assert_eq!(graph_output_names(&bytes), None);
    }

    #[test]
    fn varint_reads_multiple_bytes() {
        assert_eq!(read_varint(&[0xac, 0x02, 0xff]), Some((300, 2)));
        assert_eq!(read_varint(&[0x80, 0x80]), None);
    }
}
