//! Tokenization with the model's `tokenizer.json`, as FlagEmbedding does it.
//!
//! FlagEmbedding 1.4.2 (`inference/embedder/encoder_only/m3.py`) calls the Hugging
//! Face tokenizer with `truncation=True, max_length=...`: special tokens are added
//! and the text is cut so that `<s> ... </s>` fits in the max length. With
//! transformers 4.x the fast tokenizer runs `tokenizer.json` as it is, so the
//! `tokenizers` crate on the same file gives the same ids. transformers 5.x rebuilds
//! the XLM-R pipeline instead and gives other ids for some whitespace and control
//! characters.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use tokenizers::{PostProcessor as _, TruncationDirection};

use crate::error::{Error, Result};
use crate::heads::SparseEmbedding;
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

/// The model's tokenizer; each call gives its own max length.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    special_ids: SpecialIds,
    added_tokens: usize,
}

impl Tokenizer {
    /// Loads `tokenizer.json` and the special token roles.
    pub fn from_files(files: &ModelFiles) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_file(&files.tokenizer).map_err(|source| {
            Error::TokenizerLoad {
                path: files.tokenizer.clone(),
                source,
            }
        })?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .expect("disabling truncation cannot fail");
        let added_tokens = inner
            .get_post_processor()
            .map_or(0, |processor| processor.added_tokens(false));
        let special_ids = read_special_ids(&inner, files)?;
        Ok(Self {
            inner,
            special_ids,
            added_tokens,
        })
    }

    /// Returns the special token ids.
    pub fn special_ids(&self) -> SpecialIds {
        self.special_ids
    }

    /// Returns the number of special tokens added to every text (2 for XLM-R).
    pub fn added_tokens(&self) -> usize {
        self.added_tokens
    }

    /// Returns the text of a token id, if the vocabulary has it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Returns the text of one token id as FlagEmbedding's `convert_id_to_token` gives
    /// it: the decoded id, so `▁a` (a word start) and `a` both give `a`.
    pub fn token_text(&self, id: u32) -> Result<String> {
        self.inner
            .decode(&[id], false)
            .map_err(|source| Error::Decode { id, source })
    }

    /// Returns sparse weights keyed by token text, in id order.
    ///
    /// The text of an id is [`Tokenizer::token_text`], as in FlagEmbedding's
    /// `convert_id_to_token`. Different ids can decode to the same text (`▁a` and `a`
    /// both give `a`), and FlagEmbedding then keeps one weight and drops the other.
    /// Here no weight is lost: each such key gets its id appended, as in `a [85]`.
    pub fn sparse_by_text(&self, sparse: &SparseEmbedding) -> Result<Vec<(String, f32)>> {
        let texts = sparse
            .entries
            .iter()
            .map(|&(id, _)| self.token_text(id))
            .collect::<Result<Vec<_>>>()?;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for text in &texts {
            *counts.entry(text.as_str()).or_default() += 1;
        }
        let keyed = sparse
            .entries
            .iter()
            .zip(&texts)
            .map(|(&(id, weight), text)| match counts[text.as_str()] {
                1 => (text.clone(), weight),
                _ => (format!("{text} [{id}]"), weight),
            })
            .collect();
        Ok(keyed)
    }

    /// Tokenizes one text, special tokens included, cut to `max_length` tokens;
    /// `input_index` names the text in errors.
    ///
    /// This is what the `tokenizers` library does with truncation enabled
    /// (`TruncationStrategy::LongestFirst`, stride 0, from the right): the text's own
    /// tokens are cut to `max_length` minus the special tokens, then the post-processor
    /// adds `<s>` and `</s>`. `max_length` must leave room for the special tokens.
    pub fn encode(
        &self,
        text: &str,
        max_length: usize,
        input_index: usize,
    ) -> Result<TokenizedText> {
        let tokenize_error = |source| Error::Tokenize {
            input_index,
            source,
        };
        let mut encoding = self.inner.encode(text, false).map_err(tokenize_error)?;
        let budget = max_length.saturating_sub(self.added_tokens);
        let truncated = encoding.len() > budget;
        encoding.truncate(budget, 0, TruncationDirection::Right);
        encoding.take_overflowing();
        let encoding = self
            .inner
            .post_process(encoding, None, true)
            .map_err(tokenize_error)?;
        Ok(TokenizedText {
            ids: encoding.get_ids().to_vec(),
            truncated,
        })
    }

    /// Returns the token count of a text with special tokens, without truncation.
    pub fn count_tokens(&self, text: &str, input_index: usize) -> Result<usize> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|source| Error::Tokenize {
                input_index,
                source,
            })?;
        Ok(encoding.len() + self.added_tokens)
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
