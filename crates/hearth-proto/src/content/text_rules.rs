//! The text rules of the module documentation: single-line and multi-line fields.

use super::ContentError;

pub(super) fn too_long(
    field: &'static str,
    len: usize,
    max: usize,
    unit: &'static str,
) -> ContentError {
    ContentError::TooLong {
        field,
        len,
        max,
        unit,
    }
}

/// A single-line field limited in characters.
pub(super) fn single_line_chars(
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<(), ContentError> {
    // Bytes bound characters from above: skip counting when the bytes already fit.
    if text.len() > max {
        let chars = text.chars().count();
        if chars > max {
            return Err(too_long(field, chars, max, "characters"));
        }
    }
    single_line(field, text)
}

/// Not blank, no control character at all.
pub(super) fn single_line(field: &'static str, text: &str) -> Result<(), ContentError> {
    if text.trim().is_empty() {
        return Err(ContentError::Blank { field });
    }
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(ContentError::ControlCharacter {
            field,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// A multi-line field limited in bytes: not blank, no control character but LF, CR and tab.
pub(super) fn multi_line(field: &'static str, text: &str, max: usize) -> Result<(), ContentError> {
    if text.len() > max {
        return Err(too_long(field, text.len(), max, "bytes"));
    }
    if text.trim().is_empty() {
        return Err(ContentError::Blank { field });
    }
    match text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some(c) => Err(ContentError::ControlCharacter {
            field,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}
