//! What the user sees and answers: rendering, the progress line, the confirmation
//! prompt, and one-line errors and warnings. Everything shown that came from outside
//! (lock metadata, IDs, paths, error texts) goes through [`safe`].

pub mod progress;
pub mod prompt;
pub mod render;

use crate::Io;
use std::borrow::Cow;
use tflock_core::Error;

/// Text from outside the process, made safe for a terminal: control characters and
/// bidi overrides become visible escapes (`\x1b`), so lock metadata cannot move the
/// cursor, retitle the terminal or fake a prompt.
pub fn safe(text: &str) -> Cow<'_, str> {
    tflock_core::text::escape_control(text)
}

/// `error: <target>: <what> (<hint>)` on stderr.
pub fn error(io: &mut Io<'_>, e: &Error) {
    let _ = writeln!(io.err, "error: {}", safe(&e.to_string()));
}

/// `warning: ...` on stderr.
pub fn warn(io: &mut Io<'_>, e: &Error) {
    let _ = writeln!(io.err, "warning: {}", safe(&e.to_string()));
}

/// A warning that is not an error value.
pub fn warn_text(io: &mut Io<'_>, text: &str) {
    let _ = writeln!(io.err, "warning: {}", safe(text));
}
