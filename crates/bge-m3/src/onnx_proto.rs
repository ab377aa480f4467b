//! Just enough protobuf reading to inspect an ONNX graph without loading it.
//!
//! Downloads use it to decide, before any session exists, whether a root `model.onnx`
//! is backbone-only and needs the `.pt` head files. The session uses it to find where
//! the token embedding table is stored. The fields read, from `onnx/onnx.proto`, are
//! the constants below.

const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_INITIALIZER: u64 = 5;
const GRAPH_OUTPUT: u64 = 12;
const VALUE_INFO_NAME: u64 = 1;
const NODE_INPUT: u64 = 1;
const NODE_OP_TYPE: u64 = 4;
const NODE_DOMAIN: u64 = 7;
const TENSOR_DIMS: u64 = 1;
const TENSOR_DATA_TYPE: u64 = 2;
const TENSOR_NAME: u64 = 8;
const TENSOR_EXTERNAL_DATA: u64 = 13;
const TENSOR_DATA_LOCATION: u64 = 14;
const ENTRY_KEY: u64 = 1;
const ENTRY_VALUE: u64 = 2;
/// `TensorProto.DataLocation.EXTERNAL`.
const LOCATION_EXTERNAL: u64 = 1;

/// An initializer whose data lives in an external file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExternalTensor {
    /// The initializer's name in the graph.
    pub name: String,
    /// `TensorProto.DataType`: 1 is float32.
    pub data_type: u64,
    /// The tensor's shape.
    pub dims: Vec<u64>,
    /// The data file, relative to the graph's folder.
    pub location: String,
    /// Byte offset of the data in the file, 0 when absent.
    pub offset: u64,
    /// Byte length of the data, when the graph states it.
    pub length: Option<u64>,
}

/// Returns the output names of the graph in a serialised `ModelProto`, or `None` when
/// the bytes are not a well-formed one.
// Listing graph outputs is needed only to plan Hub downloads.
#[cfg_attr(not(feature = "hub"), allow(dead_code))]
pub(crate) fn graph_output_names(model: &[u8]) -> Option<Vec<String>> {
    let graph = last_bytes_field(model, MODEL_GRAPH)?;
    let mut names = Vec::new();
    for field in Fields::new(graph) {
        let (number, value) = field?;
        if let (GRAPH_OUTPUT, Value::Bytes(output)) = (number, value) {
            names.push(last_string_field(output, VALUE_INFO_NAME)?.to_owned());
        }
    }
    Some(names)
}

/// Returns the initializer that the graph's `Gather` on `ids_input` reads from, when
/// it is stored in an external file. That is the token embedding table.
///
/// Returns `None` when the bytes are not a well-formed `ModelProto`, when no
/// `Gather` of the main graph takes `ids_input` as its indices, or when its table is
/// stored inside the graph.
pub(crate) fn gathered_external_table(model: &[u8], ids_input: &str) -> Option<ExternalTensor> {
    let graph = last_bytes_field(model, MODEL_GRAPH)?;
    let table = gather_table_name(graph, ids_input)?;
    for field in Fields::new(graph) {
        if let (GRAPH_INITIALIZER, Value::Bytes(tensor)) = field? {
            if last_string_field(tensor, TENSOR_NAME) == Some(table) {
                return external_tensor(tensor);
            }
        }
    }
    None
}

/// Returns the data input of the first `Gather` whose indices are `ids_input`.
fn gather_table_name<'a>(graph: &'a [u8], ids_input: &str) -> Option<&'a str> {
    for field in Fields::new(graph) {
        let (GRAPH_NODE, Value::Bytes(node)) = field? else {
            continue;
        };
        let is_gather = last_string_field(node, NODE_OP_TYPE) == Some("Gather")
            && last_string_field(node, NODE_DOMAIN)
                .unwrap_or("")
                .is_empty();
        if !is_gather {
            continue;
        }
        let inputs = string_fields(node, NODE_INPUT)?;
        if let [table, ids] = inputs[..] {
            if ids == ids_input {
                return Some(table);
            }
        }
    }
    None
}

/// Reads a `TensorProto` stored externally, or returns `None` for one stored in the
/// graph.
fn external_tensor(tensor: &[u8]) -> Option<ExternalTensor> {
    let mut dims = Vec::new();
    let mut data_type = 0;
    let mut location = None;
    let mut offset = 0;
    let mut length = None;
    let mut data_location = 0;
    for field in Fields::new(tensor) {
        match field? {
            (TENSOR_DIMS, Value::Varint(dim)) => dims.push(dim),
            (TENSOR_DIMS, Value::Bytes(packed)) => dims.extend(packed_varints(packed)?),
            (TENSOR_DATA_TYPE, Value::Varint(value)) => data_type = value,
            (TENSOR_DATA_LOCATION, Value::Varint(value)) => data_location = value,
            (TENSOR_EXTERNAL_DATA, Value::Bytes(entry)) => {
                let key = last_string_field(entry, ENTRY_KEY)?;
                let value = last_string_field(entry, ENTRY_VALUE)?;
                match key {
                    "location" => location = Some(value.to_owned()),
                    "offset" => offset = value.parse().ok()?,
                    "length" => length = Some(value.parse().ok()?),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if data_location != LOCATION_EXTERNAL {
        return None;
    }
    Some(ExternalTensor {
        name: last_string_field(tensor, TENSOR_NAME)?.to_owned(),
        data_type,
        dims,
        location: location?,
        offset,
        length,
    })
}

fn packed_varints(mut bytes: &[u8]) -> Option<Vec<u64>> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        let (value, used) = read_varint(bytes)?;
        values.push(value);
        bytes = &bytes[used..];
    }
    Some(values)
}

/// Returns every occurrence of a repeated string field, in order.
fn string_fields(message: &[u8], number: u64) -> Option<Vec<&str>> {
    let mut found = Vec::new();
    for field in Fields::new(message) {
        if let (field_number, Value::Bytes(bytes)) = field? {
            if field_number == number {
                found.push(std::str::from_utf8(bytes).ok()?);
            }
        }
    }
    Some(found)
}

/// Returns the last occurrence of a string field, or `None` when it is absent.
fn last_string_field(message: &[u8], number: u64) -> Option<&str> {
    std::str::from_utf8(last_bytes_field(message, number)?).ok()
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

/// A field value; length-delimited contents and varints are kept.
enum Value<'a> {
    Bytes(&'a [u8]),
    Varint(u64),
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
                let (value, used) = read_varint(self.rest)?;
                self.skip(used)?;
                Value::Varint(value)
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
    fn finds_the_external_embedding_table() {
        let table =
            gathered_external_table(&fixture("tiny-bge-m3/model.onnx"), "input_ids").unwrap();
        assert_eq!(
            table,
            ExternalTensor {
                name: "m3_model.model.embeddings.word_embeddings.weight".to_owned(),
                data_type: 1,
                dims: vec![689, 32],
                location: "model.onnx_data".to_owned(),
                offset: 0,
                length: Some(689 * 32 * 4),
            }
        );
        let official = fixture("tiny-bge-m3-official/onnx/model.onnx");
        let table = gathered_external_table(&official, "input_ids").unwrap();
        assert_eq!(table.name, "encoder.embeddings.word_embeddings.weight");
    }

    #[test]
    fn no_table_without_a_gather_on_the_input() {
        let graph = fixture("tiny-bge-m3/model.onnx");
        assert_eq!(gathered_external_table(&graph, "attention_mask"), None);
        assert_eq!(gathered_external_table(&graph, "token_type_ids"), None);
    }

    #[test]
    fn packed_dims_are_read() {
        // TensorProto: dims packed [3, 300], data_type 1, name "t", data_location 1,
        // external_data { key "location" value "d" }.
        let mut tensor = vec![0x0a, 0x03, 0x03, 0xac, 0x02, 0x10, 0x01, 0x42, 0x01, b't'];
        tensor.extend([0x70, 0x01, 0x6a, 0x0d, 0x0a, 0x08]);
        tensor.extend(b"location");
        tensor.extend([0x12, 0x01, b'd']);
        let table = external_tensor(&tensor).unwrap();
        assert_eq!(table.dims, vec![3, 300]);
        assert_eq!(table.location, "d");
        assert_eq!((table.offset, table.length), (0, None));
    }

    #[test]
    fn inline_tensor_is_not_external() {
        // dims [2], data_type 1, name "t", raw_data 8 bytes.
        let mut tensor = vec![0x08, 0x02, 0x10, 0x01, 0x42, 0x01, b't', 0x4a, 0x08];
        tensor.extend([0; 8]);
        assert_eq!(external_tensor(&tensor), None);
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
