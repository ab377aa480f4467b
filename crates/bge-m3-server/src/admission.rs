//! Admission control: the tokens of all queued and running requests stay under
//! `--max-queued-tokens`, and a request that does not fit is rejected at once (429)
//! instead of waiting without bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::ApiError;

/// The tokens of admitted requests that have no response yet, with their limit.
#[derive(Debug)]
pub struct QueuedTokens {
    current: AtomicUsize,
    max: usize,
}

/// Tokens admitted for one request, given back when it is dropped: when the
/// response is ready or the client has gone.
#[derive(Debug)]
pub struct Permit {
    gauge: Arc<QueuedTokens>,
    tokens: usize,
}

impl QueuedTokens {
    /// Creates an empty gauge with a limit of `max` tokens.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            current: AtomicUsize::new(0),
            max,
        })
    }

    /// Returns the tokens admitted now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Admits `tokens` if they fit under the limit.
    ///
    /// Fails with [`ApiError::RequestTooLarge`] when the request could never fit, and
    /// with [`ApiError::Overloaded`] when it does not fit now.
    pub fn try_admit(self: &Arc<Self>, tokens: usize) -> Result<Permit, ApiError> {
        if tokens > self.max {
            return Err(ApiError::RequestTooLarge {
                tokens,
                max: self.max,
            });
        }
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                let total = current + tokens;
                (total <= self.max).then_some(total)
            })
            .map_err(|queued| ApiError::Overloaded {
                queued,
                max: self.max,
            })?;
        Ok(Permit {
            gauge: Arc::clone(self),
            tokens,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gauge.current.fetch_sub(self.tokens, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit() {
        let gauge = QueuedTokens::new(10);
        let first = gauge.try_admit(6).unwrap();
        let second = gauge.try_admit(4).unwrap();
        assert_eq!(gauge.current(), 10);
        let error = gauge.try_admit(1).unwrap_err();
        assert!(
            matches!(
                error,
                ApiError::Overloaded {
                    queued: 10,
                    max: 10
                }
            ),
            "{error}"
        );
        drop(first);
        drop(second);
        assert_eq!(gauge.current(), 0);
    }

    #[test]
    fn request_over_the_limit_never_fits() {
        let gauge = QueuedTokens::new(10);
        let error = gauge.try_admit(11).unwrap_err();
        assert!(
            matches!(
                error,
                ApiError::RequestTooLarge {
                    tokens: 11,
                    max: 10
                }
            ),
            "{error}"
        );
    }
}
