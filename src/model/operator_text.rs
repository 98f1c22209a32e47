//! Free text an operator types (a reason, a name): what is accepted, for the CLI and the API
//! alike, and which characters a terminal would act on instead of showing.

/// Longest free-text reason accepted: enough for a sentence or two, short enough that no
/// reason floods a terminal or a log line.
pub const MAX_REASON_CHARS: usize = 500;

/// Why operator text is refused; each front end words it for its own flag or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorTextError {
    Empty,
    /// Its length in characters.
    TooLong(usize),
}

/// `text` trimmed, not empty, at most `max` characters.
pub fn checked_text(text: &str, max: usize) -> Result<&str, OperatorTextError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(OperatorTextError::Empty);
    }
    let n = text.chars().count();
    if n > max {
        return Err(OperatorTextError::TooLong(n));
    }
    Ok(text)
}

/// Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts the
/// sequences that move the cursor or clear the screen), DEL, and the bidirectional overrides
/// that make text read in another order than it is.
pub fn acts_on_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
