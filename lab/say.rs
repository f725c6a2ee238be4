//! Lines on stderr, each written whole in one `write`: a sweep runs cells side by side, each a
//! `lab train` process on the same stderr, and `eprintln!` writes its pieces one `write` at a
//! time (stderr is unbuffered), so two cells' lines interleaved mid-line.

use std::io::Write;

/// `eprintln!`'s arguments, written as one line in one call.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(format!($($arg)*))
    };
}

/// Write `text` and a newline to stderr in one call (errors ignored, as `eprintln!` would
/// panic on them: a closed stderr must not stop a run).
pub fn line(mut text: String) {
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
