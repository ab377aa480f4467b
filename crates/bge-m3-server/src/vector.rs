//! Vectors in responses: JSON floats, or base64 of little-endian float32 as the
//! OpenAI API's `encoding_format: "base64"` defines it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The encoding of vectors in a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// A JSON array of numbers.
    #[default]
    Float,
    /// A base64 string of the values as little-endian float32, 4 bytes each.
    Base64,
}

/// One vector in the chosen encoding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Vector {
    /// JSON numbers. The library rejects NaN and infinity, so none is written as `null`.
    Float(Vec<f32>),
    /// Base64 of little-endian float32.
    Base64(String),
}

impl EncodingFormat {
    /// Encodes one vector.
    pub fn encode(self, values: Vec<f32>) -> Vector {
        match self {
            Self::Float => Vector::Float(values),
            Self::Base64 => Vector::Base64(to_base64(&values)),
        }
    }
}

fn to_base64(values: &[f32]) -> String {
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_little_endian_float32() {
        let Vector::Base64(text) = EncodingFormat::Base64.encode(vec![1.0, -2.5]) else {
            panic!("expected base64");
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        assert_eq!(bytes, [0, 0, 128, 63, 0, 0, 32, 192]);
    }

    #[test]
    fn float_keeps_values() {
        assert_eq!(
            EncodingFormat::Float.encode(vec![0.25]),
            Vector::Float(vec![0.25])
        );
    }
}
