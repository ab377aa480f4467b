//! Tokenization with the model's `tokenizer.json`, as FlagEmbedding does it.
//!
//! FlagEmbedding 1.4.2 (`inference/embedder/encoder_only/m3.py`) calls the Hugging
//! Face tokenizer with `truncation=True, max_length=...`: special tokens are added
//! and the text is cut so that `<s> ... </s>` fits in the max length. With
//! transformers 4.x the fast tokenizer runs `tokenizer.json` as it is, so the
//! `tokenizers` crate on the same file gives the same ids. transformers 5.x rebuilds
//! the XLM-R pipeline instead and gives other ids for some whitespace and control
//! characters.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;
use tokenizers::{Encoding, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};
use crate::model_files::ModelFiles;

/// The ids of the special tokens that FlagEmbedding drops from the sparse output.
///
/// Read from `special_tokens_map.json` when the model folder has one (the roles
/// `cls_token`, `eos_token`, `pad_token`, `unk_token`, as FlagEmbedding reads them),
/// else the XLM-R tokens `<s>`, `</s>`, `<pad>`, `<unk>`, looked up in the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    /// `cls_token`, `<s>` in XLM-R.
    pub cls: u32,
    /// `eos_token`, `</s>` in XLM-R.
    pub eos: u32,
    /// `pad_token`, `<pad>` in XLM-R; padding positions get this id.
    pub pad: u32,
    /// `unk_token`, `<unk>` in XLM-R.
    pub unk: u32,
}

impl SpecialIds {
    /// Returns whether `id` is one of the four special ids.
    pub fn contains(&self, id: u32) -> bool {
        [self.cls, self.eos, self.pad, self.unk].contains(&id)
    }
}

/// One tokenized text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedText {
    /// Token ids, `<s>` first and `</s>` last, at most the max length.
    pub ids: Vec<u32>,
    /// Whether tokens were cut to fit the max length.
    pub truncated: bool,
}

/// The model's tokenizer with truncation set to a max length.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// A copy of `inner` without truncation, made on the first `count_tokens` call.
    untruncated: OnceLock<tokenizers::Tokenizer>,
    special_ids: SpecialIds,
    max_length: usize,
}

impl Tokenizer {
    /// Loads `tokenizer.json` and the special token roles, truncating at `max_length`
    /// tokens (special tokens included).
    pub fn from_files(files: &ModelFiles, max_length: usize) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_file(&files.tokenizer).map_err(|source| {
            Error::TokenizerLoad {
                path: files.tokenizer.clone(),
                source,
            }
        })?;
        inner.with_padding(None);
        let truncation = TruncationParams {
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        };
        inner
            .with_truncation(Some(truncation))
            .map_err(|source| Error::InvalidOption {
                name: "max length",
                value: max_length.to_string(),
                reason: source.to_string(),
            })?;
        let special_ids = read_special_ids(&inner, files)?;
        Ok(Self {
            inner,
            untruncated: OnceLock::new(),
            special_ids,
            max_length,
        })
    }

    /// Returns the special token ids.
    pub fn special_ids(&self) -> SpecialIds {
        self.special_ids
    }

    /// Returns the max length in tokens, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Returns the text of a token id, if the vocabulary has it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Tokenizes one text; `input_index` names it in errors.
    pub fn encode(&self, text: &str, input_index: usize) -> Result<TokenizedText> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|source| Error::Tokenize {
                input_index,
                source,
            })?;
        Ok(to_tokenized(encoding))
    }

    /// Counts the tokens of one text without truncation, `<s>` and `</s>` included;
    /// `input_index` names it in errors.
    ///
    /// The first call copies the tokenizer once (a copy without truncation), so a
    /// caller that only needs counts for truncated texts pays for it only then.
    pub fn count_tokens(&self, text: &str, input_index: usize) -> Result<usize> {
        let untruncated = self.untruncated.get_or_init(|| {
            let mut copy = self.inner.clone();
            // tokenizers only validates truncation parameters, and `None` has none.
            copy.with_truncation(None)
                .expect("removing truncation cannot fail");
            copy
        });
        let encoding = untruncated
            .encode(text, true)
            .map_err(|source| Error::Tokenize {
                input_index,
                source,
            })?;
        Ok(encoding.get_ids().len())
    }
}

fn to_tokenized(encoding: Encoding) -> TokenizedText {
    TokenizedText {
        truncated: !encoding.get_overflowing().is_empty(),
        ids: encoding.get_ids().to_vec(),
    }
}

const ROLES: [(&str, &str); 4] = [
    ("cls_token", "<s>"),
    ("eos_token", "</s>"),
    ("pad_token", "<pad>"),
    ("unk_token", "<unk>"),
];

fn read_special_ids(tokenizer: &tokenizers::Tokenizer, files: &ModelFiles) -> Result<SpecialIds> {
    let roles = match &files.special_tokens {
        Some(path) => read_json(path)?,
        None => Value::Null,
    };
    let mut ids = [0u32; 4];
    for (slot, (role, default)) in ids.iter_mut().zip(ROLES) {
        let token = role_token(&roles, role).unwrap_or(default);
        *slot = tokenizer
            .token_to_id(token)
            .ok_or_else(|| Error::SpecialTokenMissing {
                token: token.to_owned(),
                role,
                path: files.tokenizer.clone(),
            })?;
    }
    let [cls, eos, pad, unk] = ids;
    Ok(SpecialIds { cls, eos, pad, unk })
}

/// Returns the token of a role: a plain string, or an object with `content`.
fn role_token<'a>(roles: &'a Value, role: &str) -> Option<&'a str> {
    let entry = roles.get(role)?;
    entry
        .as_str()
        .or_else(|| entry.get("content").and_then(Value::as_str))
}

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::InvalidJson {
        path: path.to_path_buf(),
        source,
    })
}
