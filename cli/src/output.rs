//! Small helpers shared by the commands' output: JSON documents, spaces in words, progress bars.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use wasmgym::Space;

use crate::error::Error;

/// Writes `value` as one pretty JSON document on stdout.
pub fn print_json(value: &impl Serialize) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// Writes `value` as one line of compact JSON to stdout: for output that programs read, where
/// pretty-printing costs more than producing it (a grade report of 20,000 tests).
pub fn print_json_line(value: &impl Serialize) -> Result<(), Error> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    serde_json::to_writer(&mut out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// A space in a few words, such as `Discrete(7)` or `Box(f32, [3, 6, 7], 0..1)`.
pub fn space(space: &Space) -> String {
    match space {
        Space::Discrete { n } => format!("Discrete({n})"),
        Space::Box { dtype, shape, low, high } => {
            let bound = |v: &[f64]| match v.first() {
                Some(&first) if v.iter().all(|&x| x == first) => format!("{first}"),
                _ => "[..]".to_string(),
            };
            format!("Box({}, {shape:?}, {}..{})", format!("{dtype:?}").to_lowercase(), bound(low), bound(high))
        }
        Space::MultiDiscrete { nvec } => format!("MultiDiscrete({nvec:?})"),
        Space::Text { max_length, charset: None } => format!("Text(max {max_length} chars)"),
        Space::Text { max_length, charset: Some(c) } => format!("Text(max {max_length} chars of {c:?})"),
    }
}

/// `text` safe to print on a terminal: control characters other than newline and tab (escape
/// sequences that could move the cursor, clear the screen or retitle the window) are shown as
/// `\u{1b}`. Text that comes from a guest (renders, messages, names) goes through here.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' && c != '\t' { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

/// Per-player numbers as `[1, -1]`, compact.
pub fn numbers(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
    format!("[{}]", parts.join(", "))
}

/// A progress bar on stderr for jobs of more than `threshold` items when stderr is a terminal;
/// a hidden one otherwise (never on stdout).
pub fn progress(total: u64, threshold: u64, what: &str) -> ProgressBar {
    if total <= threshold || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what.to_owned());
    bar
}

/// A spinner on stderr saying `what` is under way, when stderr is a terminal; hidden otherwise.
pub fn spinner(what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(what.to_owned());
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a typo (at most
/// 2 edits, and fewer than half the name's length): for "did you mean" hints.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut previous = row[0];
            row[0] = i + 1;
            for (j, &cb) in b.iter().enumerate() {
                let next = (previous + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
                previous = row[j + 1];
                row[j + 1] = next;
            }
        }
        row[b.len()]
    };
    let limit = 2.min(name.chars().count().saturating_sub(1) / 2).max(1);
    candidates.into_iter().map(|c| (distance(name, c), c)).filter(|&(d, _)| d <= limit).min().map(|(_, c)| c)
}

/// ` Did you mean `x`?` when one of `candidates` is close to `name`, else nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates).map(|c| format!(" Did you mean `{c}`?")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let names = ["tic_tac_toe", "connect_four", "cart_pole", "sum"];
        assert_eq!(super::closest("tic_tac_to", names), Some("tic_tac_toe"));
        assert_eq!(super::closest("cartpole", names), Some("cart_pole"));
        assert_eq!(super::closest("summ", names), Some("sum"));
        assert_eq!(super::closest("chess", names), None);
    }
}
