//! Grouping tokenized texts into batches under a token budget.
//!
//! Texts are sorted by length, longest first, as FlagEmbedding does, so each batch
//! pads little. A batch costs `texts × longest text` tokens, padding included, and
//! stays within the budget; a text longer than the budget runs alone.

/// A batch: indices into the tokenized texts, longest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Positions of the texts in the input, longest text first.
    pub members: Vec<usize>,
    /// Padded length of every row: the longest member's token count.
    pub sequence: usize,
}

/// Splits texts with the given token counts into batches of at most `token_budget`
/// padded tokens each. Ties in length keep input order, so the plan is deterministic.
pub fn plan_batches(lengths: &[usize], token_budget: usize) -> Vec<Batch> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));

    let mut batches: Vec<Batch> = Vec::new();
    for index in order {
        let fits = batches.last().is_some_and(|batch| {
            let padded = (batch.members.len() + 1).saturating_mul(batch.sequence);
            padded <= token_budget
        });
        match batches.last_mut() {
            Some(batch) if fits => batch.members.push(index),
            _ => batches.push(Batch {
                members: vec![index],
                sequence: lengths[index],
            }),
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_sorts_longest_first() {
        let batches = plan_batches(&[3, 10, 5, 10], 100);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].members, vec![1, 3, 2, 0]);
        assert_eq!(batches[0].sequence, 10);
    }

    #[test]
    fn plan_respects_budget() {
        let lengths = [8, 8, 8, 4, 4, 4, 4, 2];
        let batches = plan_batches(&lengths, 16);
        for batch in &batches {
            assert!(batch.members.len() * batch.sequence <= 16, "{batch:?}");
        }
        let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.members.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
    }

    #[test]
    fn plan_runs_oversized_text_alone() {
        let batches = plan_batches(&[50, 3, 3], 10);
        assert_eq!(batches[0].members, vec![0]);
        assert_eq!(batches[0].sequence, 50);
        assert_eq!(batches[1].members, vec![1, 2]);
    }

    #[test]
    fn plan_of_nothing_is_empty() {
        assert!(plan_batches(&[], 10).is_empty());
    }
}
