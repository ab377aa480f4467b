//! Parsers for the length and budget flags that `bge-m3 serve` shares with the other
//! subcommands, so that a value too small is rejected with the flag's name before
//! the model loads.

/// Parses a max length in tokens: at least 2, the room for `<s>` and `</s>`.
///
/// The model's own limit (8192 for BGE-M3) is checked when it loads.
pub fn max_length(value: &str) -> Result<usize, String> {
    at_least(value, 2, "room for <s> and </s>")
}

/// Parses a token budget: at least 1 padded token per model call.
pub fn token_budget(value: &str) -> Result<usize, String> {
    at_least(value, 1, "a model call needs at least one token")
}

fn at_least(value: &str, min: usize, reason: &str) -> Result<usize, String> {
    let parsed: usize = value
        .parse()
        .map_err(|_| format!("expected a whole number of tokens, found {value:?}"))?;
    if parsed < min {
        return Err(format!("it must be at least {min} ({reason})"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_length_needs_two() {
        assert_eq!(max_length("2"), Ok(2));
        assert!(max_length("1").unwrap_err().contains("at least 2"));
        assert!(max_length("x").unwrap_err().contains("whole number"));
    }

    #[test]
    fn token_budget_needs_one() {
        assert_eq!(token_budget("1"), Ok(1));
        assert!(token_budget("0").unwrap_err().contains("at least 1"));
    }
}
