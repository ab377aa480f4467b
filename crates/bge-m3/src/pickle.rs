//! A restricted pickle reader for the `data.pkl` of a PyTorch state dict.
//!
//! `torch.save(module.state_dict(), path)` pickles a `collections.OrderedDict` whose
//! values are rebuilt by `torch._utils._rebuild_tensor_v2`. Each tensor views a
//! storage that the pickle names by a persistent id, `('storage', torch.HalfStorage,
//! key, location, numel)`, and whose raw bytes are the archive entry `data/<key>`.
//! This module runs the
//! pickle opcodes that such a file uses (protocols 2 to 5) and builds a [`Value`]
//! tree. It never calls Python code: only the globals listed in [`Global`] are
//! accepted, and any other global is an error that names it. Reading the storages
//! is left to `state_dict`.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Element type of a tensor storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DType {
    /// `torch.HalfStorage`, IEEE binary16.
    F16,
    /// `torch.BFloat16Storage`.
    BF16,
    /// `torch.FloatStorage`.
    F32,
}

impl DType {
    /// Returns the size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::F16 | Self::BF16 => 2,
            Self::F32 => 4,
        }
    }
}

/// The Python globals the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(DType),
}

/// A storage named by a persistent id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    pub dtype: DType,
    /// Name of the storage's archive entry, `data/<key>`.
    pub key: String,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    /// Offset of the first element, in elements.
    pub offset: usize,
    pub shape: Vec<usize>,
    /// Strides in elements.
    pub stride: Vec<usize>,
    /// Pickle byte offset of the rebuild call, for error messages.
    pub pickle_offset: usize,
}

/// A value on the pickle machine's stack.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// A dict or an `OrderedDict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// Runs the pickle in `bytes` and returns its result. `path` names the `.pt` file in
/// errors.
pub(crate) fn unpickle(bytes: &[u8], path: &Path) -> Result<Value> {
    Machine::new(bytes, path).run()
}

struct Machine<'a> {
    bytes: &'a [u8],
    position: usize,
    /// Offset of the opcode being run.
    opcode_at: usize,
    stack: Vec<Value>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    path: &'a Path,
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8], path: &'a Path) -> Self {
        Self {
            bytes,
            position: 0,
            opcode_at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            path,
        }
    }

    fn run(mut self) -> Result<Value> {
        loop {
            self.opcode_at = self.position;
            let opcode = self.read_u8()?;
            if opcode == b'.' {
                return self.pop();
            }
            self.step(opcode)?;
        }
    }

    /// Runs one opcode other than STOP.
    fn step(&mut self, opcode: u8) -> Result<()> {
        match opcode {
            0x80 => {
                // PROTO: the protocol number; every opcode below is checked on its own.
                self.read_u8()?;
            }
            0x95 => {
                // FRAME: a length prefix for buffered reading, no data of its own.
                self.read_bytes(8)?;
            }
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'J' => {
                let value = i32::from_le_bytes(self.read_array()?);
                self.stack.push(Value::Int(i64::from(value)));
            }
            b'K' => {
                let value = self.read_u8()?;
                self.stack.push(Value::Int(i64::from(value)));
            }
            b'M' => {
                let value = u16::from_le_bytes(self.read_array()?);
                self.stack.push(Value::Int(i64::from(value)));
            }
            0x8a => self.long1()?,
            b'G' => {
                let value = f64::from_be_bytes(self.read_array()?);
                self.stack.push(Value::Float(value));
            }
            b'X' => {
                let length = u32::from_le_bytes(self.read_array()?);
                self.string(u64::from(length))?;
            }
            0x8c => {
                let length = self.read_u8()?;
                self.string(u64::from(length))?;
            }
            0x8d => {
                let length = u64::from_le_bytes(self.read_array()?);
                self.string(length)?;
            }
            _ => self.step_container_or_object(opcode)?,
        }
        Ok(())
    }

    fn step_container_or_object(&mut self, opcode: u8) -> Result<()> {
        match opcode {
            b')' => self.stack.push(Value::Tuple(Vec::new())),
            b']' => self.stack.push(Value::List(Vec::new())),
            b'}' => self.stack.push(Value::Dict(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let count = usize::from(opcode - 0x84);
                let items = self.pop_many(count)?;
                self.stack.push(Value::Tuple(items));
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::List(items));
            }
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.stack.push(Value::Dict(pairs));
            }
            b'a' => {
                let item = self.pop()?;
                self.extend_list(vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_list(items)?;
            }
            b's' => {
                let items = self.pop_many(2)?;
                self.extend_dict(items)?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_dict(items)?;
            }
            _ => self.step_memo_or_call(opcode)?,
        }
        Ok(())
    }

    fn step_memo_or_call(&mut self, opcode: u8) -> Result<()> {
        match opcode {
            b'q' => {
                let index = self.read_u8()?;
                self.memoize(u64::from(index))?;
            }
            b'r' => {
                let index = u32::from_le_bytes(self.read_array()?);
                self.memoize(u64::from(index))?;
            }
            0x94 => self.memoize(self.memo.len() as u64)?,
            b'h' => {
                let index = self.read_u8()?;
                self.recall(u64::from(index))?;
            }
            b'j' => {
                let index = u32::from_le_bytes(self.read_array()?);
                self.recall(u64::from(index))?;
            }
            b'c' => {
                let module = self.read_line()?;
                let name = self.read_line()?;
                let global = self.global(&module, &name)?;
                self.stack.push(Value::Global(global));
            }
            0x93 => {
                let name = self.pop_string()?;
                let module = self.pop_string()?;
                let global = self.global(&module, &name)?;
                self.stack.push(Value::Global(global));
            }
            b'Q' => {
                let id = self.pop()?;
                let storage = self.persistent_storage(id)?;
                self.stack.push(Value::Storage(storage));
            }
            b'R' => {
                let arguments = self.pop()?;
                let callable = self.pop()?;
                let result = self.call(callable, arguments)?;
                self.stack.push(result);
            }
            b'b' => self.build()?,
            _ => return Err(self.unsupported(format!("opcode 0x{opcode:02x}"))),
        }
        Ok(())
    }

    fn global(&self, module: &str, name: &str) -> Result<Global> {
        let global = match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch", "HalfStorage") => Global::Storage(DType::F16),
            ("torch", "BFloat16Storage") => Global::Storage(DType::BF16),
            ("torch", "FloatStorage") => Global::Storage(DType::F32),
            _ => return Err(self.unsupported(format!("global {module}.{name}"))),
        };
        Ok(global)
    }

    /// Reads `('storage', <storage class>, key, location, numel)`.
    fn persistent_storage(&self, id: Value) -> Result<StorageRef> {
        let Value::Tuple(fields) = id else {
            return Err(self.invalid("a persistent id that is not a tuple"));
        };
        match fields.as_slice() {
            [Value::String(tag), Value::Global(Global::Storage(dtype)), Value::String(key), _, _]
                if tag == "storage" =>
            {
                Ok(StorageRef {
                    dtype: *dtype,
                    key: key.clone(),
                })
            }
            _ => Err(self.unsupported(format!("persistent id {fields:?}"))),
        }
    }

    fn call(&self, callable: Value, arguments: Value) -> Result<Value> {
        let Value::Tuple(arguments) = arguments else {
            return Err(self.invalid("call arguments that are not a tuple"));
        };
        match callable {
            Value::Global(Global::OrderedDict) => self.ordered_dict(arguments),
            Value::Global(Global::RebuildTensor) => self.rebuild_tensor(arguments),
            Value::Global(Global::RebuildParameter) => match arguments.into_iter().next() {
                Some(tensor @ Value::Tensor(_)) => Ok(tensor),
                _ => Err(self.invalid("_rebuild_parameter without a tensor")),
            },
            other => Err(self.unsupported(format!("call of {other:?}"))),
        }
    }

    fn ordered_dict(&self, arguments: Vec<Value>) -> Result<Value> {
        match arguments.as_slice() {
            [] => Ok(Value::Dict(Vec::new())),
            [Value::List(items)] => {
                let mut pairs = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::Tuple(pair) if pair.len() == 2 => {
                            pairs.push((pair[0].clone(), pair[1].clone()));
                        }
                        _ => return Err(self.invalid("OrderedDict item that is not a pair")),
                    }
                }
                Ok(Value::Dict(pairs))
            }
            _ => Err(self.unsupported("OrderedDict arguments other than a list of pairs".into())),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    fn rebuild_tensor(&self, arguments: Vec<Value>) -> Result<Value> {
        let invalid = || {
            self.invalid(
                "_rebuild_tensor_v2 arguments other than (storage, offset, size, stride, ...)",
            )
        };
        let [storage, offset, size, stride, ..] = arguments.as_slice() else {
            return Err(invalid());
        };
        let (Value::Storage(storage), Value::Int(offset)) = (storage, offset) else {
            return Err(invalid());
        };
        let (Value::Tuple(size), Value::Tuple(stride)) = (size, stride) else {
            return Err(invalid());
        };
        let shape = self.dimensions(size)?;
        let stride = self.dimensions(stride)?;
        if shape.len() != stride.len() {
            return Err(self.invalid("tensor size and stride of different lengths"));
        }
        let offset =
            usize::try_from(*offset).map_err(|_| self.invalid("negative storage offset"))?;
        Ok(Value::Tensor(TensorRef {
            storage: storage.clone(),
            offset,
            shape,
            stride,
            pickle_offset: self.opcode_at,
        }))
    }

    fn dimensions(&self, values: &[Value]) -> Result<Vec<usize>> {
        values
            .iter()
            .map(|value| match value {
                Value::Int(number) => {
                    usize::try_from(*number).map_err(|_| self.invalid("negative tensor dimension"))
                }
                _ => Err(self.invalid("tensor dimension that is not an integer")),
            })
            .collect()
    }

    /// BUILD sets an object's state. A state dict's `OrderedDict` gets its `_metadata`
    /// attribute this way, which carries module versions and no tensor, so it is
    /// dropped.
    fn build(&mut self) -> Result<()> {
        let _state = self.pop()?;
        match self.stack.last() {
            Some(Value::Dict(_)) => Ok(()),
            Some(other) => Err(self.unsupported(format!("state set on {other:?}"))),
            None => Err(self.invalid("stack underflow")),
        }
    }

    fn long1(&mut self) -> Result<()> {
        let length = usize::from(self.read_u8()?);
        if length > 8 {
            return Err(self.unsupported(format!("integer of {length} bytes")));
        }
        let digits = self.read_bytes(length)?;
        let mut buffer = if digits.last().is_some_and(|byte| byte & 0x80 != 0) {
            [0xff; 8]
        } else {
            [0; 8]
        };
        buffer[..length].copy_from_slice(digits);
        self.stack.push(Value::Int(i64::from_le_bytes(buffer)));
        Ok(())
    }

    fn string(&mut self, length: u64) -> Result<()> {
        let length =
            usize::try_from(length).map_err(|_| self.invalid("string longer than memory"))?;
        let bytes = self.read_bytes(length)?;
        let text =
            std::str::from_utf8(bytes).map_err(|_| self.invalid("string that is not UTF-8"))?;
        self.stack.push(Value::String(text.to_owned()));
        Ok(())
    }

    fn memoize(&mut self, index: u64) -> Result<()> {
        let top = self
            .stack
            .last()
            .ok_or_else(|| self.invalid("stack underflow"))?;
        self.memo.insert(index, top.clone());
        Ok(())
    }

    fn recall(&mut self, index: u64) -> Result<()> {
        let value = self
            .memo
            .get(&index)
            .ok_or_else(|| self.invalid(&format!("memo index {index} never stored")))?;
        self.stack.push(value.clone());
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<Value>) -> Result<()> {
        match self.stack.last_mut() {
            Some(Value::List(list)) => {
                list.extend(items);
                Ok(())
            }
            _ => Err(self.invalid("append to a value that is not a list")),
        }
    }

    fn extend_dict(&mut self, items: Vec<Value>) -> Result<()> {
        let pairs = self.pairs(items)?;
        match self.stack.last_mut() {
            Some(Value::Dict(dict)) => {
                dict.extend(pairs);
                Ok(())
            }
            _ => Err(self.invalid("set item on a value that is not a dict")),
        }
    }

    fn pairs(&self, items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
        if !items.len().is_multiple_of(2) {
            return Err(self.invalid("odd number of dict keys and values"));
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            pairs.push((key, value));
        }
        Ok(pairs)
    }

    fn pop(&mut self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.invalid("stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.invalid("stack underflow"))
    }

    fn pop_many(&mut self, count: usize) -> Result<Vec<Value>> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + count {
            return Err(self.invalid("stack underflow"));
        }
        Ok(self.stack.split_off(self.stack.len() - count))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.invalid("no MARK to pop to"))?;
        Ok(self.stack.split_off(mark))
    }

    fn pop_string(&mut self) -> Result<String> {
        match self.pop()? {
            Value::String(text) => Ok(text),
            _ => Err(self.invalid("global name that is not a string")),
        }
    }

    fn read_u8(&mut self) -> Result<u8> {
        Ok(self.read_bytes(1)?[0])
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.read_bytes(N)?;
        Ok(bytes.try_into().expect("read_bytes returns N bytes"))
    }

    fn read_bytes(&mut self, count: usize) -> Result<&'a [u8]> {
        let end = self
            .position
            .checked_add(count)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| self.invalid("truncated pickle"))?;
        let bytes = &self.bytes[self.position..end];
        self.position = end;
        Ok(bytes)
    }

    fn read_line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.position..];
        let length = rest
            .iter()
            .position(|&byte| byte == b'\n')
            .ok_or_else(|| self.invalid("truncated pickle"))?;
        let line = std::str::from_utf8(&rest[..length])
            .map_err(|_| self.invalid("global name that is not UTF-8"))?;
        self.position += length + 1;
        Ok(line.to_owned())
    }

    fn invalid(&self, problem: &str) -> Error {
        Error::TorchInvalid {
            path: self.path.to_path_buf(),
            offset: self.opcode_at,
            problem: problem.to_owned(),
        }
    }

    fn unsupported(&self, found: String) -> Error {
        Error::TorchUnsupported {
            path: self.path.to_path_buf(),
            offset: self.opcode_at,
            found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8]) -> Result<Value> {
        unpickle(bytes, Path::new("test.pt"))
    }

    /// `{'a': (1, -2, 300), 'b': [True, None]}` as Python 3.11 pickles it with protocol 2.
    #[test]
    fn reads_plain_values() {
        let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01J\xfe\xff\xff\xffM,\x01\x87q\x02\
            X\x01\x00\x00\x00bq\x03]q\x04(\x88Neu.";
        let value = run(bytes).unwrap();
        let expected = Value::Dict(vec![
            (
                Value::String("a".into()),
                Value::Tuple(vec![Value::Int(1), Value::Int(-2), Value::Int(300)]),
            ),
            (
                Value::String("b".into()),
                Value::List(vec![Value::Bool(true), Value::None]),
            ),
        ]);
        assert_eq!(value, expected);
    }

    #[test]
    fn negative_long1_is_sign_extended() {
        // LONG1 with the two bytes 0x00 0x80: -32768.
        let value = run(b"\x80\x02\x8a\x02\x00\x80.").unwrap();
        assert_eq!(value, Value::Int(-32768));
    }

    #[test]
    fn unknown_global_is_named() {
        let error = run(b"\x80\x02cos\nsystem\nq\x00.").unwrap_err();
        assert!(
            matches!(&error, Error::TorchUnsupported { offset: 2, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("os.system"), "{error}");
        assert!(error.to_string().contains("test.pt"), "{error}");
    }

    #[test]
    fn truncated_pickle_is_invalid() {
        let error = run(b"\x80\x02X\x05\x00\x00\x00ab").unwrap_err();
        assert!(
            matches!(&error, Error::TorchInvalid { offset: 2, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn stack_underflow_is_invalid() {
        let error = run(b"\x80\x02t.").unwrap_err();
        assert!(matches!(&error, Error::TorchInvalid { .. }), "{error:?}");
    }

    #[test]
    fn unknown_opcode_is_unsupported() {
        // INT (b'I') is protocol 0 text; torch.save never writes it.
        let error = run(b"\x80\x02I1\n.").unwrap_err();
        assert!(error.to_string().contains("opcode 0x49"), "{error}");
    }
}
