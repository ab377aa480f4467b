//! Grouping tokenized texts into batches under a token budget and an attention budget.
//!
//! Texts are sorted by length, longest first, as FlagEmbedding does, so each batch
//! pads little. Two limits apply to a batch of `n` texts padded to `s` tokens:
//!
//! - the token budget: `n × s` tokens, padding included;
//! - the attention budget: the attention score matrices that ONNX Runtime holds for
//!   one layer, `n × heads × s² × 4` bytes. Graphs exported with fused attention
//!   (see `python/fused_attention.py`) skip them, by running flash attention, when
//!   the batch has no padding, so the budget then applies only to padded batches.
//!
//! A text over either limit runs alone; with fused attention a text alone has no
//! padding, so its attention memory stays small whatever its length.

/// A batch: indices into the tokenized texts, longest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Positions of the texts in the input, longest text first.
    pub members: Vec<usize>,
    /// Padded length of every row: the longest member's token count.
    pub sequence: usize,
    /// Whether some member is shorter than `sequence`.
    pub is_padded: bool,
}

/// The limits of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Max padded tokens (texts × longest text).
    pub token_budget: usize,
    /// Max bytes of one layer's attention scores (texts × heads × sequence² × 4).
    pub attention_budget: usize,
    /// Attention heads of the model.
    pub heads: usize,
    /// Whether unpadded batches skip the score matrices (fused attention graphs).
    pub flash_without_padding: bool,
}

impl BatchLimits {
    fn admits(&self, texts: usize, sequence: usize, is_padded: bool) -> bool {
        if texts.saturating_mul(sequence) > self.token_budget {
            return false;
        }
        if self.flash_without_padding && !is_padded {
            return true;
        }
        attention_bytes(texts, sequence, self.heads) <= self.attention_budget as u128
    }
}

/// Returns the bytes of one layer's attention scores for a padded batch.
pub fn attention_bytes(texts: usize, sequence: usize, heads: usize) -> u128 {
    let sequence = sequence as u128;
    texts as u128 * heads as u128 * sequence * sequence * 4
}

/// Splits texts with the given token counts into batches within `limits`. Ties in
/// length keep input order, so the plan is deterministic.
pub fn plan_batches(lengths: &[usize], limits: &BatchLimits) -> Vec<Batch> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));

    let mut batches: Vec<Batch> = Vec::new();
    for index in order {
        let length = lengths[index];
        let joined = batches.last_mut().filter(|batch| {
            let is_padded = batch.is_padded || length < batch.sequence;
            limits.admits(batch.members.len() + 1, batch.sequence, is_padded)
        });
        match joined {
            Some(batch) => {
                batch.is_padded |= length < batch.sequence;
                batch.members.push(index);
            }
            None => batches.push(Batch {
                members: vec![index],
                sequence: length,
                is_padded: false,
            }),
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens_only(token_budget: usize) -> BatchLimits {
        BatchLimits {
            token_budget,
            attention_budget: usize::MAX,
            heads: 16,
            flash_without_padding: false,
        }
    }

    fn fused(token_budget: usize, attention_budget: usize) -> BatchLimits {
        BatchLimits {
            token_budget,
            attention_budget,
            heads: 1,
            flash_without_padding: true,
        }
    }

    #[test]
    fn plan_sorts_longest_first() {
        let batches = plan_batches(&[3, 10, 5, 10], &tokens_only(100));
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].members, vec![1, 3, 2, 0]);
        assert_eq!(batches[0].sequence, 10);
        assert!(batches[0].is_padded);
    }

    #[test]
    fn plan_respects_token_budget() {
        let lengths = [8, 8, 8, 4, 4, 4, 4, 2];
        let batches = plan_batches(&lengths, &tokens_only(16));
        for batch in &batches {
            assert!(batch.members.len() * batch.sequence <= 16, "{batch:?}");
        }
        let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.members.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
    }

    #[test]
    fn plan_runs_oversized_text_alone() {
        let batches = plan_batches(&[50, 3, 3], &tokens_only(10));
        assert_eq!(batches[0].members, vec![0]);
        assert_eq!(batches[0].sequence, 50);
        assert_eq!(batches[1].members, vec![1, 2]);
        assert!(!batches[1].is_padded);
    }

    #[test]
    fn plan_of_nothing_is_empty() {
        assert!(plan_batches(&[], &tokens_only(10)).is_empty());
    }

    #[test]
    fn padded_batch_respects_attention_budget() {
        // 2 texts × 1 head × 100² × 4 bytes = 80 000 bytes.
        let limits = fused(10_000, 80_000);
        let batches = plan_batches(&[100, 99, 98], &limits);
        assert_eq!(batches[0].members, vec![0, 1]);
        assert_eq!(batches[1].members, vec![2]);
        for batch in &batches {
            let bytes = attention_bytes(batch.members.len(), batch.sequence, 1);
            assert!(!batch.is_padded || bytes <= 80_000, "{batch:?}");
        }
    }

    #[test]
    fn unpadded_batch_skips_attention_budget_when_fused() {
        let limits = fused(10_000, 80_000);
        let batches = plan_batches(&[100, 100, 100, 100], &limits);
        assert_eq!(batches.len(), 1);
        assert!(!batches[0].is_padded);
    }

    #[test]
    fn unpadded_batch_keeps_attention_budget_when_standard() {
        let limits = BatchLimits {
            flash_without_padding: false,
            ..fused(10_000, 80_000)
        };
        let batches = plan_batches(&[100, 100, 100, 100], &limits);
        assert_eq!(batches.len(), 2);
    }

    #[test]
    fn long_texts_of_different_length_run_alone() {
        // Two long texts: a padded pair would need 2 × 16 × 8192² × 4 bytes.
        let limits = BatchLimits {
            token_budget: 16_384,
            attention_budget: 512 << 20,
            heads: 16,
            flash_without_padding: true,
        };
        let batches = plan_batches(&[8000, 8192], &limits);
        assert_eq!(batches.len(), 2);
        assert!(batches.iter().all(|batch| !batch.is_padded));
    }
}
