//! The `input` (OpenAI) and `inputs` (text-embeddings-inference) field: one string
//! or an array of strings.
//!
//! Token ids (an array of integers, or an array of such arrays) are rejected with a
//! message that gives the reason: ids made by another tokenizer would be embedded without
//! any error, as wrong tokens, and give wrong embeddings.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// The message for token ids in the input.
pub const TOKEN_IDS_REJECTED: &str = "token ids are not accepted, send the text instead: \
     ids made by another tokenizer would silently give wrong embeddings";

/// The texts of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inputs {
    /// A single string; the response still contains a list of one.
    One(String),
    /// An array of strings.
    Many(Vec<String>),
}

impl Inputs {
    /// Returns the texts in request order.
    pub fn into_texts(self) -> Vec<String> {
        match self {
            Self::One(text) => vec![text],
            Self::Many(texts) => texts,
        }
    }
}

impl<'de> Deserialize<'de> for Inputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(InputsVisitor)
    }
}

struct InputsVisitor;

impl<'de> Visitor<'de> for InputsVisitor {
    type Value = Inputs;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Inputs, E> {
        Ok(Inputs::One(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Inputs, E> {
        Ok(Inputs::One(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inputs, A::Error> {
        let mut texts = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Text(text)) = seq.next_element()? {
            texts.push(text);
        }
        Ok(Inputs::Many(texts))
    }
}

/// One element of an input array: a string, where integers and arrays get the
/// token-ids message.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Text, E> {
        Ok(Text(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Text, E> {
        Ok(Text(text))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text, E> {
        Err(E::custom(TOKEN_IDS_REJECTED))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text, E> {
        Err(E::custom(TOKEN_IDS_REJECTED))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Text, A::Error> {
        Err(de::Error::custom(TOKEN_IDS_REJECTED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Inputs, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn string_is_one_input() {
        assert_eq!(parse("\"hi\"").unwrap(), Inputs::One("hi".to_owned()));
    }

    #[test]
    fn array_keeps_order() {
        let inputs = parse("[\"a\", \"\", \"c\"]").unwrap();
        assert_eq!(inputs.into_texts(), ["a", "", "c"]);
    }

    #[test]
    fn token_ids_are_rejected() {
        for json in ["[1, 2, 3]", "[[1, 2], [3]]", "[\"a\", 5]"] {
            let error = parse(json).unwrap_err().to_string();
            assert!(
                error.contains("token ids are not accepted"),
                "{json}: {error}"
            );
        }
    }

    #[test]
    fn other_types_are_invalid() {
        for json in ["5", "null", "{}", "[null]", "[true]"] {
            let error = parse(json).unwrap_err().to_string();
            assert!(error.contains("invalid type"), "{json}: {error}");
        }
    }
}
