//! Writing for people. Results go to standard output and a failed write is returned
//! (a reader that went away, as in `| head -1`, ends the command quietly: see
//! `cli::exit`). Notes go to standard error and never fail or panic the command:
//! `println!`/`eprintln!` panic when their stream is closed.

use std::fmt;
use std::io::Write;

/// Writes `text` to standard output and flushes it.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes one line to standard error; a closed or full stderr is ignored.
pub fn write_note(args: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// `note!("...", ...)`: one line on standard error, like `eprintln!` but never panics.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::console::write_note(format_args!($($arg)*))
    };
}
pub(crate) use note;
