//! Differences between two revisions of a post-mortem, section by section and line by line,
//! for the history page and the conflict page.
//!
//! Myers' diff costs O((N+M)·D): two revisions whose 25,000 lines all differ once cost seconds
//! of CPU per view. So a part longer than [`MAX_LINES`] lines or [`MAX_BYTES`] on either side is
//! not compared (the page says it is too large), a whole comparison has a deadline after which
//! the rest is shown as removed-then-added (still correct, only less minimal), and the async
//! callers run it on the blocking pool (see `postmortems::compare_revisions`).

use std::time::{Duration, Instant};

use similar::{Algorithm, ChangeTag, TextDiff};

use super::{Content, RootCause};
use crate::error::{AppError, AppResult};

/// How a line differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTag {
    Same,
    Added,
    Removed,
}

impl LineTag {
    /// CSS class and the marker shown in the gutter.
    pub fn class(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Added => "added",
            Self::Removed => "removed",
        }
    }

    pub fn marker(self) -> &'static str {
        match self {
            Self::Same => " ",
            Self::Added => "+",
            Self::Removed => "−",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub tag: LineTag,
    pub text: String,
}

/// Most lines on either side of one part that are compared line by line.
pub const MAX_LINES: usize = 5_000;
/// Most bytes on either side of one part that are compared line by line.
pub const MAX_BYTES: usize = 512 * 1024;
/// Longest one comparison (every part of two revisions together) searches for the smallest
/// diff; past it the remaining differences are shown coarser.
pub const DEADLINE: Duration = Duration::from_millis(200);

/// The changed lines of one part of the post-mortem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub title: String,
    pub lines: Vec<Line>,
    /// The part differs but is too large to compare line by line: `lines` is empty.
    pub too_large: bool,
}

impl Block {
    pub fn added(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.tag == LineTag::Added)
            .count()
    }
    pub fn removed(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.tag == LineTag::Removed)
            .count()
    }
}

/// How two texts differ line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lines {
    Same,
    Changed(Vec<Line>),
    /// Different, but one side is over [`MAX_LINES`] or [`MAX_BYTES`].
    TooLarge,
}

impl Lines {
    /// The lines to show (none when the texts are the same or too large to compare).
    pub fn into_lines(self) -> Vec<Line> {
        match self {
            Self::Changed(lines) => lines,
            Self::Same | Self::TooLarge => Vec::new(),
        }
    }
}

/// Line differences from `old` to `new`, searching for the smallest diff until `deadline`.
pub fn lines(old: &str, new: &str, deadline: Instant) -> Lines {
    // A final newline on both sides keeps "last line changed" from reading as two changes;
    // empty text has no lines at all.
    let norm = |s: &str| match s.trim_end_matches('\n') {
        "" => String::new(),
        t => format!("{t}\n"),
    };
    let (old, new) = (norm(old), norm(new));
    if old == new {
        return Lines::Same;
    }
    let too_large = |s: &str| s.len() > MAX_BYTES || s.lines().count() > MAX_LINES;
    if too_large(&old) || too_large(&new) {
        return Lines::TooLarge;
    }
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .deadline(deadline)
        .diff_lines(&old, &new);
    Lines::Changed(
        diff.iter_all_changes()
            .map(|change| Line {
                tag: match change.tag() {
                    ChangeTag::Equal => LineTag::Same,
                    ChangeTag::Insert => LineTag::Added,
                    ChangeTag::Delete => LineTag::Removed,
                },
                text: change.value().trim_end_matches('\n').to_owned(),
            })
            .collect(),
    )
}

/// A block for `title` when the texts differ.
fn block(title: &str, old: &str, new: &str, deadline: Instant) -> Option<Block> {
    let (lines, too_large) = match lines(old, new, deadline) {
        Lines::Same => return None,
        Lines::Changed(lines) => (lines, false),
        Lines::TooLarge => (Vec::new(), true),
    };
    Some(Block {
        title: title.to_owned(),
        lines,
        too_large,
    })
}

fn cause_lines(causes: &[RootCause]) -> String {
    causes
        .iter()
        .map(|c| {
            let role = if c.primary { "Primary" } else { "Contributing" };
            format!(
                "{role} · {}: {}",
                c.category,
                c.description.replace('\n', " ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every part that differs between two revisions, in the newer one's section order (sections
/// only in the older one come last). CPU-bound up to [`DEADLINE`]: async callers run it on the
/// blocking pool.
pub fn compare(old: &Content, new: &Content) -> Vec<Block> {
    let deadline = Instant::now() + DEADLINE;
    let mut blocks = Vec::new();
    for section in &new.sections {
        let before = old.section(&section.key).map_or("", |s| s.body.as_str());
        blocks.extend(block(&section.title, before, &section.body, deadline));
    }
    for section in &old.sections {
        if new.section(&section.key).is_none() && !section.body.is_empty() {
            blocks.extend(block(&section.title, &section.body, "", deadline));
        }
    }
    blocks.extend(block(
        "Root causes",
        &cause_lines(&old.root_causes),
        &cause_lines(&new.root_causes),
        deadline,
    ));
    for (title, a, b) in [
        (
            "Detection method",
            &old.detection_method,
            &new.detection_method,
        ),
        (
            "Reason for no action items",
            &old.no_action_items_reason,
            &new.no_action_items_reason,
        ),
    ] {
        blocks.extend(block(title, a, b, deadline));
    }
    blocks
}

/// Diffs computed at once across all requests: each is CPU-bound for up to [`DEADLINE`], so a
/// viewer reloading a large comparison many times at once waits for a turn instead of taking
/// every core.
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// [`compare`] on the blocking pool (never on the async workers), one of at most two at once.
pub async fn compare_off_thread(old: Content, new: Content) -> AppResult<Vec<Block>> {
    let _turn = RUNNING
        .acquire()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(tokio::task::spawn_blocking(move || compare(&old, &new)).await?)
}

/// [`lines`] on the blocking pool (never on the async workers), one of at most two at once.
pub async fn lines_off_thread(old: String, new: String) -> AppResult<Lines> {
    let _turn = RUNNING
        .acquire()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(tokio::task::spawn_blocking(move || lines(&old, &new, Instant::now() + DEADLINE)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postmortems::Section;

    fn tags(lines: &[Line]) -> Vec<(LineTag, &str)> {
        lines.iter().map(|l| (l.tag, l.text.as_str())).collect()
    }

    fn soon() -> Instant {
        Instant::now() + DEADLINE
    }

    #[test]
    fn a_changed_line_is_removed_then_added_between_unchanged_ones() {
        let got = lines("one\ntwo\nthree", "one\n2\nthree\nfour\n", soon()).into_lines();
        assert_eq!(
            tags(&got),
            vec![
                (LineTag::Same, "one"),
                (LineTag::Removed, "two"),
                (LineTag::Added, "2"),
                (LineTag::Same, "three"),
                (LineTag::Added, "four"),
            ]
        );
        assert_eq!(lines("same\n", "same", soon()), Lines::Same);
    }

    fn numbered(n: usize, tag: &str) -> String {
        (0..n).map(|i| format!("{tag} {i}\n")).collect()
    }

    #[test]
    fn parts_over_the_cap_are_too_large_to_compare() {
        let (old, new) = (numbered(MAX_LINES + 1, "old"), numbered(10, "new"));
        assert_eq!(lines(&old, &new, soon()), Lines::TooLarge);
        assert_eq!(
            lines(&old, &old, soon()),
            Lines::Same,
            "equal is still equal"
        );
        let wide = "x".repeat(MAX_BYTES + 1);
        assert_eq!(lines(&wide, "x", soon()), Lines::TooLarge);
        assert!(matches!(
            lines(&numbered(MAX_LINES, "old"), &new, soon()),
            Lines::Changed(_)
        ));
    }

    #[test]
    fn a_passed_deadline_still_gives_a_correct_diff() {
        // Every line differs: with no time left the diff is coarse, but applying it to the old
        // text still gives the new one.
        let (old, new) = (numbered(3_000, "old"), numbered(3_000, "new"));
        let got = lines(&old, &new, Instant::now()).into_lines();
        let rebuilt: Vec<&str> = got
            .iter()
            .filter(|l| l.tag != LineTag::Removed)
            .map(|l| l.text.as_str())
            .collect();
        let kept: Vec<&str> = got
            .iter()
            .filter(|l| l.tag != LineTag::Added)
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(rebuilt, new.lines().collect::<Vec<_>>());
        assert_eq!(kept, old.lines().collect::<Vec<_>>());
    }

    fn content(summary: &str, causes: Vec<RootCause>) -> Content {
        Content {
            sections: vec![
                Section {
                    key: "summary".into(),
                    title: "Summary".into(),
                    help: String::new(),
                    required: true,
                    body: summary.into(),
                },
                Section {
                    key: "lucky".into(),
                    title: "Where we got lucky".into(),
                    help: String::new(),
                    required: false,
                    body: "weekend".into(),
                },
            ],
            root_causes: causes,
            ..Content::default()
        }
    }

    #[test]
    fn compare_lists_only_the_parts_that_changed() {
        let old = content("Checkout failed.", vec![]);
        let new = content(
            "Checkout failed for 20 minutes.",
            vec![RootCause {
                category: "deploy".into(),
                description: "bad build".into(),
                primary: true,
            }],
        );
        let blocks = compare(&old, &new);
        let titles: Vec<&str> = blocks.iter().map(|b| b.title.as_str()).collect();
        assert_eq!(titles, ["Summary", "Root causes"]);
        assert_eq!((blocks[0].added(), blocks[0].removed()), (1, 1));
        assert_eq!(blocks[1].lines[0].text, "Primary · deploy: bad build");
        assert!(compare(&new, &new).is_empty());
    }
}
