//! The confirmation before a break: only `yes` proceeds, as with `terraform force-unlock`.

use crate::Io;
use tflock_core::Error;

/// Asks for `yes` on a terminal; refuses without one unless `--yes`. `question` is
/// already safe to show (built from escaped text).
pub fn confirm(io: &mut Io<'_>, yes: bool, target: &str, question: &str) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !io.interactive {
        return Err(Error::refused(
            target,
            "not breaking without confirmation: no terminal to ask on; pass --yes (or --dry-run to look first)",
        ));
    }
    let _ = write!(io.err, "{question} Only 'yes' will be accepted: ");
    let _ = io.err.flush();
    let mut answer = String::new();
    let _ = io.input.read_line(&mut answer);
    if answer.trim() != "yes" {
        return Err(Error::refused(
            target,
            "not broken: confirmation was not 'yes'",
        ));
    }
    Ok(())
}
