//! Differences between two revisions of a post-mortem, section by section and line by line,
//! for the history page and the conflict page.

use similar::{ChangeTag, TextDiff};

use super::{Content, RootCause};

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

/// The changed lines of one part of the post-mortem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub title: String,
    pub lines: Vec<Line>,
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

/// Line differences from `old` to `new`; empty when they are the same.
pub fn lines(old: &str, new: &str) -> Vec<Line> {
    // A final newline on both sides keeps "last line changed" from reading as two changes;
    // empty text has no lines at all.
    let norm = |s: &str| match s.trim_end_matches('\n') {
        "" => String::new(),
        t => format!("{t}\n"),
    };
    let (old, new) = (norm(old), norm(new));
    if old == new {
        return Vec::new();
    }
    let diff = TextDiff::from_lines(&old, &new);
    diff.iter_all_changes()
        .map(|change| Line {
            tag: match change.tag() {
                ChangeTag::Equal => LineTag::Same,
                ChangeTag::Insert => LineTag::Added,
                ChangeTag::Delete => LineTag::Removed,
            },
            text: change.value().trim_end_matches('\n').to_owned(),
        })
        .collect()
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
/// only in the older one come last).
pub fn compare(old: &Content, new: &Content) -> Vec<Block> {
    let mut blocks = Vec::new();
    for section in &new.sections {
        let before = old.section(&section.key).map_or("", |s| s.body.as_str());
        let lines = lines(before, &section.body);
        if !lines.is_empty() {
            blocks.push(Block {
                title: section.title.clone(),
                lines,
            });
        }
    }
    for section in &old.sections {
        if new.section(&section.key).is_none() && !section.body.is_empty() {
            blocks.push(Block {
                title: section.title.clone(),
                lines: lines(&section.body, ""),
            });
        }
    }
    let causes = lines(
        &cause_lines(&old.root_causes),
        &cause_lines(&new.root_causes),
    );
    if !causes.is_empty() {
        blocks.push(Block {
            title: "Root causes".into(),
            lines: causes,
        });
    }
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
        let lines = lines(a, b);
        if !lines.is_empty() {
            blocks.push(Block {
                title: title.into(),
                lines,
            });
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postmortems::Section;

    fn tags(lines: &[Line]) -> Vec<(LineTag, &str)> {
        lines.iter().map(|l| (l.tag, l.text.as_str())).collect()
    }

    #[test]
    fn a_changed_line_is_removed_then_added_between_unchanged_ones() {
        let got = lines("one\ntwo\nthree", "one\n2\nthree\nfour\n");
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
        assert!(lines("same\n", "same").is_empty());
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
