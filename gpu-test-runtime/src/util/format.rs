//! Numbers, durations and panics written for people, and the duration grammar of
//! `GPU_TEST_LEASE_TIMEOUT` (the attribute's `timeout` key reads durations the same way).

use std::any::Any;
use std::time::Duration;

/// `30s`, `1.5s`, `250ms`, `2m 5s`.
pub(crate) fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{:.1}s", duration.as_secs_f64())
        }
    } else {
        let seconds = duration.as_secs();
        match (seconds / 60, seconds % 60) {
            (minutes, 0) => format!("{minutes}m"),
            (minutes, rest) => format!("{minutes}m {rest}s"),
        }
    }
}

/// A duration such as `30s`, `500ms`, `10m` or `1h` (humantime's grammar), of at least 1ms: the
/// attribute's `timeout` key takes no less, and durations are shown in milliseconds.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    parse_duration_or_zero(text).filter(|duration| !duration.is_zero())
}

/// A duration as [`parse_duration`] reads it, or zero. Units above hours are refused: humantime
/// reads `5M` as five months, where a timeout of five minutes was surely meant.
pub(crate) fn parse_duration_or_zero(text: &str) -> Option<Duration> {
    let units_up_to_hours = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|unit| !unit.is_empty())
        .all(|unit| {
            !matches!(
                unit,
                "d" | "day" | "days" | "w" | "wk" | "wks" | "week" | "weeks" | "M" | "month" | "months" | "y"
                    | "yr" | "yrs" | "year" | "years"
            )
        });
    units_up_to_hours
        .then(|| humantime::parse_duration(text.trim()).ok())
        .flatten()
        .filter(|duration| duration.is_zero() || duration.as_millis() >= 1)
}

/// Bytes a device has, for people: an exact binary or decimal unit when there is one (`16 GiB`,
/// `80 GB`), otherwise GiB with one decimal, rounded down (`15.6 GiB`), so that what is had is
/// never shown as more than it is.
pub(crate) fn format_bytes(bytes: u64) -> String {
    format_bytes_rounded(bytes, false)
}

/// Bytes a test needs, as [`format_bytes`] writes them but rounded up, so that what is needed is
/// never shown as less than it is (`15.95 GiB` reads `16.0 GiB`, not the `15.9 GiB` a device of
/// 15.93 GiB would read).
pub(crate) fn format_bytes_needed(bytes: u64) -> String {
    format_bytes_rounded(bytes, true)
}

fn format_bytes_rounded(bytes: u64, up: bool) -> String {
    const BINARY: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    const DECIMAL: [(&str, u64); 4] = [
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
    ];
    let exact = BINARY
        .iter()
        .chain(DECIMAL.iter())
        .filter(|(_, size)| bytes >= *size && bytes.is_multiple_of(*size))
        .max_by_key(|(_, size)| *size);
    match exact {
        Some((unit, size)) if bytes / size < 10_000 => format!("{} {unit}", bytes / size),
        _ if bytes < 10_000 => format!("{bytes} B"),
        _ if bytes < 1 << 20 => tenths(bytes, 1 << 10, "KiB", up),
        _ if bytes < 1 << 30 => tenths(bytes, 1 << 20, "MiB", up),
        _ => tenths(bytes, 1 << 30, "GiB", up),
    }
}

/// `bytes` in `unit`s to a tenth, rounded down (or `up`): a card of 16376 MiB reads "15.9 GiB",
/// not a "16.0 GiB" that seems to meet a 16 GiB need.
fn tenths(bytes: u64, unit: u64, name: &str, up: bool) -> String {
    let scaled = u128::from(bytes) * 10;
    let unit = u128::from(unit);
    let tenths = if up { scaled.div_ceil(unit) } else { scaled / unit };
    format!("{}.{} {name}", tenths / 10, tenths % 10)
}

/// `1 GPU`, `2 GPUs`.
pub(crate) fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// `text` with every control character written as an escape (`\n`, `\u{1b}`): text from a
/// driver, a file or the environment can then neither break a line nor start a GitHub workflow
/// command or a terminal sequence. So are the marks and overrides of Unicode's bidirectional
/// text (with which a name can read as another) and its line and paragraph separators, and the
/// `##[` of GitHub's older workflow commands, which the runner reads anywhere in a line.
pub(crate) fn escape_control(text: &str) -> String {
    if !text.chars().any(changes_what_text_shows) {
        return text.replace(OLD_WORKFLOW_COMMAND, "##\\[");
    }
    let escaped: String = text
        .chars()
        .map(|c| {
            if changes_what_text_shows(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    escaped.replace(OLD_WORKFLOW_COMMAND, "##\\[")
}

/// How GitHub's older workflow commands start (`##[add-mask]...`), anywhere in a line.
const OLD_WORKFLOW_COMMAND: &str = "##[";

/// `text` with nothing in it that GitHub's runner would read as a workflow command where it is
/// printed: a line that starts with `::` (after blanks, as the runner reads it) gets a backslash
/// before it, and `##[` becomes `##\[`. Both read the same in Markdown.
pub fn without_workflow_commands(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let blanks = line.len() - line.trim_start().len();
        if line[blanks..].starts_with("::") {
            out.push_str(&line[..blanks]);
            out.push('\\');
            out.push_str(&line[blanks..]);
        } else {
            out.push_str(line);
        }
    }
    out.replace(OLD_WORKFLOW_COMMAND, "##\\[")
}

/// Where text goes on a Markdown page (a job summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkdownPlace {
    /// A table's cell, where a pipe ends the cell even inside a code span (GitHub's tables split
    /// rows before reading what is in them), so pipes are escaped there too.
    Cell,
    /// A line or a list item, where a code span shows every character it holds as it is.
    Line,
}

/// `text` for a line or a table cell of a Markdown page: outside its code spans, `&`, `<` and
/// `>` as entities (GitHub would take `Vec<u8>` for a tag and drop it), backslashes, pipes and
/// brackets escaped (a report from elsewhere could put a link, or an image GitHub fetches,
/// there), so are the `.` of `www.` and the `:` of `://` (GitHub links those by themselves, up
/// to the next blank, past a backtick too), and lines joined by `<br>`, so that nothing breaks a
/// table row or a list item. A code span
/// (`` `lspci | grep -i nvidia` ``) is kept as it is, where Markdown would show escapes
/// literally, but for its line ends (spaces, as Markdown shows them) and, in a cell, its pipes.
/// A backtick that opens no span is escaped, so that GitHub reads the spans as this does.
pub fn markdown_text(text: &str, place: MarkdownPlace) -> String {
    let text = one_line_end(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find('`') {
        push_outside_code(&rest[..start], &mut out);
        let (fence, after) = rest[start..].split_at(backtick_run(&rest[start..]));
        match closing_fence(after, fence.len()) {
            Some(end) => {
                out.push_str(fence);
                push_inside_code(&after[..end], place, &mut out);
                out.push_str(fence);
                rest = &after[end + fence.len()..];
            }
            None => {
                out.push_str(&"\\`".repeat(fence.len()));
                rest = after;
            }
        }
    }
    push_outside_code(rest, &mut out);
    out
}

/// `text` as one code span for a line or a table cell of a Markdown page: fenced by more
/// backticks than any run of them in it, so that nothing in it ends the span early.
pub fn markdown_code(text: &str, place: MarkdownPlace) -> String {
    if text.is_empty() {
        return String::new();
    }
    let text = one_line_end(text);
    let longest = text
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick needs a space between it and the fence, which
    // Markdown then takes off again.
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    let mut out = format!("{fence}{pad}");
    push_inside_code(&text, place, &mut out);
    out.push_str(pad);
    out.push_str(&fence);
    out
}

/// `text` with each `\r\n` and `\r` as `\n`: Markdown ends a line at each.
fn one_line_end(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The length of the run of backticks `text` starts with.
fn backtick_run(text: &str) -> usize {
    text.len() - text.trim_start_matches('`').len()
}

/// Where in `text` the first run of exactly `length` backticks starts: the end of a code span
/// opened by such a run.
fn closing_fence(text: &str, length: usize) -> Option<usize> {
    let mut at = 0;
    while let Some(found) = text[at..].find('`') {
        let start = at + found;
        let run = backtick_run(&text[start..]);
        if run == length {
            return Some(start);
        }
        at = start + run;
    }
    None
}

fn push_outside_code(text: &str, out: &mut String) {
    for (at, c) in text.char_indices() {
        let starts_a_link = match c {
            '.' => text
                .get(at.saturating_sub(3)..at)
                .is_some_and(|before| before.eq_ignore_ascii_case("www")),
            ':' => text[at + 1..].starts_with("//"),
            _ => false,
        };
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push_str("<br>"),
            '\\' | '|' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if starts_a_link => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

fn push_inside_code(text: &str, place: MarkdownPlace, out: &mut String) {
    for c in text.chars() {
        match c {
            '\n' => out.push(' '),
            '|' if place == MarkdownPlace::Cell => out.push_str("\\|"),
            c => out.push(c),
        }
    }
}

/// A control character, a bidirectional mark or override, or a line or paragraph separator:
/// what text from elsewhere must not bring to a terminal or a page as it is.
pub fn changes_what_text_shows(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark, left-to-right and right-to-left marks
            '\u{061c}' | '\u{200e}' | '\u{200f}'
            // embeddings, overrides, isolates
            | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // line and paragraph separators
            | '\u{2028}' | '\u{2029}'
        )
}

/// The text of a panic payload, which is then dropped where a panic out of its `Drop` (code of
/// the test's own, for a payload of `panic_any`) stops there: out of a test's thread, it would
/// end that thread without its result, which libtest-mimic's runner then waits for without end.
pub(crate) fn into_panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = panic_message(&*payload);
    if let Err(again) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload))) {
        // Its drop could panic too.
        std::mem::forget(again);
    }
    message
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_are_made_inert() {
        assert_eq!(
            without_workflow_commands("boom\n::stop-commands::pwn\n   ::error file=a::x\nok ::notice::y ##[add-mask]z\n"),
            "boom\n\\::stop-commands::pwn\n   \\::error file=a::x\nok ::notice::y ##\\[add-mask]z\n"
        );
        assert_eq!(escape_control("NVIDIA ##[stop-commands]tok"), "NVIDIA ##\\[stop-commands]tok");
        assert_eq!(escape_control("a\n##[x"), "a\\n##\\[x");
    }

    /// Escapes belong outside code spans only: inside one, Markdown shows them as they are.
    #[test]
    fn markdown_escapes_stay_out_of_code_spans() {
        use MarkdownPlace::{Cell, Line};
        assert_eq!(
            markdown_text("MIG-<uuid> | [x](u)\n&", Line),
            "MIG-&lt;uuid&gt; \\| \\[x\\](u)<br>&amp;"
        );
        let hint = "run `lspci | grep -i nvidia`, then `cargo add <package>`\r\nor `a\rb`";
        assert_eq!(
            markdown_text(hint, Line),
            "run `lspci | grep -i nvidia`, then `cargo add <package>`<br>or `a b`"
        );
        assert_eq!(
            markdown_text(hint, Cell),
            "run `lspci \\| grep -i nvidia`, then `cargo add <package>`<br>or `a b`"
        );
        // GitHub links a bare `www.` or `https://` up to the next blank, past a backtick, which
        // would leave the span's text live: neither survives.
        let linked = markdown_text("see WWW.e.example/`<img src=x>` or ftp://e.example/`![p](u)`", Line);
        assert_eq!(
            linked,
            "see WWW\\.e.example/`<img src=x>` or ftp\\://e.example/`![p](u)`"
        );
        // A run of two backticks is closed by two, not one; a backtick that opens nothing is
        // escaped, and so is a backslash, which would otherwise escape a backtick GitHub then
        // would not read as a span's start.
        assert_eq!(markdown_text("``a`b`` <c>", Line), "``a`b`` &lt;c&gt;");
        assert_eq!(markdown_text("it's ` <img>", Line), "it's \\` &lt;img&gt;");
        assert_eq!(markdown_text("\\`<img src=x>`", Line), "\\\\`<img src=x>`");
        assert_eq!(markdown_code("a::b", Cell), "`a::b`");
        assert_eq!(markdown_code("x`|`y", Cell), "``x`\\|`y``");
        assert_eq!(markdown_code("`a", Line), "`` `a ``");
    }


    #[test]
    fn durations_print_briefly() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m 5s");
    }

    #[test]
    fn durations_parse_with_a_unit_and_more_than_zero() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("1m 30s"), Some(Duration::from_secs(90)));
        // Five months, to humantime: refused, as are days and beyond.
        for above_hours in ["5M", "1d", "2w", "3wks", "1yr", "1y", "1h 1day"] {
            assert_eq!(parse_duration(above_hours), None, "{above_hours}");
        }
    }

    #[test]
    fn bytes_print_in_the_unit_they_were_given_in() {
        assert_eq!(format_bytes(16 << 30), "16 GiB");
        assert_eq!(format_bytes(80_000_000_000), "80 GB");
        assert_eq!(format_bytes(512 << 20), "512 MiB");
        assert_eq!(format_bytes(15_843_721_216), "14.7 GiB");
        assert_eq!(format_bytes(1000), "1 KB");
        assert_eq!(format_bytes(2048), "2 KiB");
        assert_eq!(format_bytes(12_345), "12.0 KiB");
        assert_eq!(format_bytes(1234), "1234 B");
        assert_eq!(format_bytes(300_000_001), "286.1 MiB");
        // Rounded down: a 16376 MiB card must not read as meeting a 16 GiB need.
        assert_eq!(format_bytes(16376 << 20), "15.9 GiB");
        assert_eq!(format_bytes(u64::MAX), "17179869183.9 GiB");
        // What is needed is rounded up: 15.95 GiB needed is not shown as the 15.9 GiB a device has.
        let needed = (15.95 * (1u64 << 30) as f64) as u64;
        assert_eq!(format_bytes_needed(needed), "16.0 GiB");
        assert_eq!(format_bytes((15.93 * (1u64 << 30) as f64) as u64), "15.9 GiB");
        assert_eq!(format_bytes_needed(16 << 30), "16 GiB");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_control("NVIDIA H100"), "NVIDIA H100");
        assert_eq!(
            escape_control("H100\n::error::injected\u{1b}[31m"),
            "H100\\n::error::injected\\u{1b}[31m"
        );
        assert_eq!(
            escape_control("gpu_\u{202e}tset\u{2066}\u{2028}"),
            "gpu_\\u{202e}tset\\u{2066}\\u{2028}"
        );
        assert_eq!(escape_control("H100 — 80 GiB é"), "H100 — 80 GiB é");
    }

    #[test]
    fn panics_are_read_as_text() {
        let payload: Box<dyn Any + Send> = Box::new("boom");
        assert_eq!(panic_message(&*payload), "boom");
        let payload: Box<dyn Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(&*payload), "bang");
        let payload: Box<dyn Any + Send> = Box::new(7);
        assert_eq!(panic_message(&*payload), "a panic with a non-text payload");
    }
}
