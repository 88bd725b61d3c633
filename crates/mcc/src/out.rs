//! Standard output that survives its reader going away.
//!
//! `println!` panics when stdout is a closed pipe (`mcc list | head -1`),
//! because Rust programs ignore SIGPIPE. These write to stdout and, when the
//! reader has gone, end the process the way a tool killed by SIGPIPE would
//! (exit status 141) instead of printing a panic.

use std::io::Write;

use crate::cli::Output;
use crate::table;

pub fn write(text: &str) {
    let mut out = std::io::stdout().lock();
    let result = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("mcc: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Like `println!`, through [`write`].
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::write(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Like `print!`, through [`write`].
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::out::write(&format!($($arg)*))
    };
}

pub(crate) use {say, say_raw};

/// A value as pretty JSON on stdout.
pub(crate) fn json<T: serde::Serialize>(value: &T) {
    say!(
        "{}",
        serde_json::to_string_pretty(value).expect("serializable")
    );
}

/// A list as `--output` asks: JSON, or a table under `header` with a row
/// made by `row` for each item.
pub(crate) fn print_list<T: serde::Serialize>(
    output: Output,
    list: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) {
    match output {
        Output::Json => json(&list),
        Output::Text => {
            let rows: Vec<Vec<String>> = list.iter().map(row).collect();
            say_raw!("{}", table::render(header, &rows));
        }
    }
}

/// `n` and the noun, in the singular for one: "1 worker", "2 workers".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts() {
        assert_eq!(super::count(0, "worker"), "0 workers");
        assert_eq!(super::count(1, "network"), "1 network");
        assert_eq!(super::count(3, "volume"), "3 volumes");
    }
}
