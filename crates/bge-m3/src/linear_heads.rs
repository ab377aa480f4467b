//! FlagEmbedding's dense, sparse and ColBERT heads applied to token embeddings.
//!
//! A backbone-only graph, such as the `onnx/model.onnx` of `BAAI/bge-m3`, returns the
//! last hidden state; these pure functions turn it into what a three-output export
//! returns. They follow FlagEmbedding 1.4.2,
//! `finetune/embedder/encoder_only/m3/modeling.py`:
//!
//! - dense: `last_hidden_state[:, 0]` (`cls` pooling), then `F.normalize`;
//! - sparse: `relu(sparse_linear(last_hidden_state))`, one weight per position;
//! - ColBERT: `colbert_linear(last_hidden_state[:, 1:]) * attention_mask[:, 1:]`,
//!   then `F.normalize` per row.
//!
//! `F.normalize(x, dim=-1)` divides by `max(‖x‖₂, 1e-12)`, so masked (all-zero) rows
//! stay zero. Everything is float32, as FlagEmbedding computes on CPU with
//! `use_fp16=False`: the float16 head files of `BAAI/bge-m3` are loaded into float32
//! linear layers there too. NaN passes through every step so that the caller can
//! report it.

/// The epsilon of `torch.nn.functional.normalize`.
const NORMALIZE_EPSILON: f64 = 1e-12;

/// A `torch.nn.Linear` layer in float32.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    /// `[out_features, in_features]`, row-major, as PyTorch stores it.
    pub weight: Vec<f32>,
    /// `[out_features]`.
    pub bias: Vec<f32>,
}

/// The backbone output of one batch: `[batch, sequence, hidden]`, row-major.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenEmbeddings<'a> {
    pub batch: usize,
    pub sequence: usize,
    pub hidden: usize,
    pub values: &'a [f32],
}

impl<'a> TokenEmbeddings<'a> {
    /// Returns the `[sequence, hidden]` block of one batch row.
    fn row(&self, row: usize) -> &'a [f32] {
        let size = self.sequence * self.hidden;
        &self.values[row * size..(row + 1) * size]
    }
}

/// Returns the dense vectors, `[batch, hidden]`: each row's normalised `<s>` state.
pub(crate) fn dense(states: TokenEmbeddings<'_>) -> Vec<f32> {
    let mut dense = Vec::with_capacity(states.batch * states.hidden);
    for row in 0..states.batch {
        let first = &states.row(row)[..states.hidden];
        let start = dense.len();
        dense.extend_from_slice(first);
        normalize(&mut dense[start..]);
    }
    dense
}

/// Returns the sparse weight of every position, `[batch, sequence]`, padding included
/// (FlagEmbedding masks nothing here either; its post-processing reads only the
/// text's own positions). `head` maps `hidden` values to one.
pub(crate) fn sparse(states: TokenEmbeddings<'_>, head: &Linear) -> Vec<f32> {
    debug_assert_eq!(head.out_features, 1);
    debug_assert_eq!(head.in_features, states.hidden);
    states
        .values
        .chunks_exact(states.hidden)
        .map(|token| relu(dot(token, &head.weight) + head.bias[0]))
        .collect()
}

/// Returns the ColBERT vectors, `[batch, sequence - 1, out_features]`: every
/// position but the first, projected and normalised, with zero rows where
/// `attention_mask` (`[batch, sequence]`) is 0.
pub(crate) fn colbert(
    states: TokenEmbeddings<'_>,
    attention_mask: &[i64],
    head: &Linear,
) -> Vec<f32> {
    debug_assert_eq!(head.in_features, states.hidden);
    debug_assert_eq!(attention_mask.len(), states.batch * states.sequence);
    if states.sequence == 0 {
        return Vec::new();
    }
    let rows = states.sequence - 1;
    let mut colbert = Vec::with_capacity(states.batch * rows * head.out_features);
    for row in 0..states.batch {
        let tokens = &states.row(row)[states.hidden..];
        let mut projected = linear(tokens, rows, head);
        let mask = &attention_mask[row * states.sequence + 1..(row + 1) * states.sequence];
        for (vector, &keep) in projected.chunks_exact_mut(head.out_features).zip(mask) {
            if keep == 0 {
                vector.fill(0.0);
            } else {
                normalize(vector);
            }
        }
        colbert.extend(projected);
    }
    colbert
}

/// Applies `head` to `count` input rows of `in_features` values: `rows · Wᵀ + b`.
fn linear(rows: &[f32], count: usize, head: &Linear) -> Vec<f32> {
    assert_eq!(
        rows.len(),
        count * head.in_features,
        "input rows of the linear layer"
    );
    assert_eq!(
        head.weight.len(),
        head.out_features * head.in_features,
        "linear weight size"
    );
    assert_eq!(head.bias.len(), head.out_features, "linear bias size");

    let mut output = vec![0.0f32; count * head.out_features];
    if output.is_empty() || head.in_features == 0 {
        return add_bias(output, head);
    }

    let stride = |value: usize| isize::try_from(value).expect("tensor dimensions fit in isize");
    // SAFETY: `rows` is a `count × in_features` row-major matrix, `head.weight` read
    // with row stride 1 and column stride `in_features` is its `in_features ×
    // out_features` transpose, and `output` is a `count × out_features` row-major
    // matrix. The asserts above guarantee that every element these strides reach lies
    // inside its slice, and `output` does not alias the inputs.
    unsafe {
        matrixmultiply::sgemm(
            count,
            head.in_features,
            head.out_features,
            1.0,
            rows.as_ptr(),
            stride(head.in_features),
            1,
            head.weight.as_ptr(),
            1,
            stride(head.in_features),
            0.0,
            output.as_mut_ptr(),
            stride(head.out_features),
            1,
        );
    }
    add_bias(output, head)
}

fn add_bias(mut output: Vec<f32>, head: &Linear) -> Vec<f32> {
    for vector in output.chunks_exact_mut(head.out_features.max(1)) {
        for (value, bias) in vector.iter_mut().zip(&head.bias) {
            *value += bias;
        }
    }
    output
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `torch.relu`, which keeps NaN (`f32::max(NaN, 0.0)` would return 0).
fn relu(value: f32) -> f32 {
    if value < 0.0 {
        0.0
    } else {
        value
    }
}

/// Divides by `max(‖x‖₂, 1e-12)` in place. The sum of squares is accumulated in f64,
/// which keeps the rounding below that of float32 reductions for any row length.
fn normalize(vector: &mut [f32]) {
    let squares: f64 = vector
        .iter()
        .map(|&value| f64::from(value) * f64::from(value))
        .sum();
    let norm = squares.sqrt().max(NORMALIZE_EPSILON);
    for value in vector.iter_mut() {
        *value = (f64::from(*value) / norm) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batch 2, sequence 3, hidden 2.
    const STATES: [f32; 12] = [
        3.0, 4.0, /* */ 1.0, 0.0, /* */ 0.0, 2.0, //
        0.0, 0.0, /* */ -1.0, 1.0, /* */ 5.0, 5.0,
    ];

    fn states() -> TokenEmbeddings<'static> {
        TokenEmbeddings {
            batch: 2,
            sequence: 3,
            hidden: 2,
            values: &STATES,
        }
    }

    fn assert_close(found: &[f32], expected: &[f32]) {
        assert_eq!(found.len(), expected.len(), "{found:?} vs {expected:?}");
        for (index, (a, b)) in found.iter().zip(expected).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6,
                "element {index}: {a} vs {b} in {found:?}"
            );
        }
    }

    #[test]
    fn dense_normalises_first_token() {
        // Row 0: (3, 4) / 5. Row 1: the zero vector stays zero (norm clamped to 1e-12).
        assert_close(&dense(states()), &[0.6, 0.8, 0.0, 0.0]);
    }

    #[test]
    fn sparse_is_relu_of_projection() {
        let head = Linear {
            in_features: 2,
            out_features: 1,
            weight: vec![1.0, -0.5],
            bias: vec![0.25],
        };
        // 3 - 2 + 0.25, 1 + 0.25, -1 + 0.25, 0.25, -1.5 + 0.25, 2.5 + 0.25
        let expected = [1.25, 1.25, 0.0, 0.25, 0.0, 2.75];
        assert_close(&sparse(states(), &head), &expected);
    }

    #[test]
    fn sparse_keeps_nan() {
        let values = [f32::NAN, 1.0];
        let states = TokenEmbeddings {
            batch: 1,
            sequence: 1,
            hidden: 2,
            values: &values,
        };
        let head = Linear {
            in_features: 2,
            out_features: 1,
            weight: vec![1.0, 1.0],
            bias: vec![0.0],
        };
        assert!(sparse(states, &head)[0].is_nan());
    }

    #[test]
    fn colbert_skips_first_token_masks_and_normalises() {
        // out = (x0 + x1 + 1, 2 * x0 - 1): a 2 → 2 layer with a bias.
        let head = Linear {
            in_features: 2,
            out_features: 2,
            weight: vec![1.0, 1.0, 2.0, 0.0],
            bias: vec![1.0, -1.0],
        };
        let mask = [1, 1, 1, /* */ 1, 1, 0];
        let found = colbert(states(), &mask, &head);
        // Row 0: (1, 0) → (2, 1); (0, 2) → (3, -1). Row 1: (-1, 1) → (1, -3); masked.
        let (a, b, c) = (5f32.sqrt(), 10f32.sqrt(), 10f32.sqrt());
        let expected = [
            2.0 / a,
            1.0 / a,
            3.0 / b,
            -1.0 / b,
            1.0 / c,
            -3.0 / c,
            0.0,
            0.0,
        ];
        assert_close(&found, &expected);
    }

    #[test]
    fn colbert_output_size_differs_from_hidden() {
        let head = Linear {
            in_features: 2,
            out_features: 3,
            weight: vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            bias: vec![0.0; 3],
        };
        let found = colbert(states(), &[1; 6], &head);
        assert_eq!(found.len(), 2 * 2 * 3);
        // Token (0, 2) of row 0 → (0, 2, 2) / √8.
        let root8 = 8f32.sqrt();
        assert_close(&found[3..6], &[0.0, 2.0 / root8, 2.0 / root8]);
    }

    #[test]
    fn linear_matches_naive_product() {
        let (count, in_features, out_features) = (5, 7, 3);
        let rows: Vec<f32> = (0..count * in_features)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let weight: Vec<f32> = (0..out_features * in_features)
            .map(|i| (i as f32 * 0.11).cos())
            .collect();
        let head = Linear {
            in_features,
            out_features,
            weight,
            bias: vec![0.5, -0.5, 0.0],
        };
        let found = linear(&rows, count, &head);
        let mut expected = Vec::new();
        for r in 0..count {
            for o in 0..out_features {
                let row = &rows[r * in_features..(r + 1) * in_features];
                let w = &head.weight[o * in_features..(o + 1) * in_features];
                expected.push(dot(row, w) + head.bias[o]);
            }
        }
        assert_close(&found, &expected);
    }
}
