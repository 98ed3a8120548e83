//! Writing checks for post-mortem Markdown (and any other prose): the public API
//! ([`check`], [`Finding`], [`FindingKind`], [`People`]), the step that turns the rule
//! families' candidates into sorted, non-overlapping findings, and helpers they share.
//!
//! Everything here is pure: text and names in, [`Finding`]s out, no global state. The
//! blameless-language rules are data (`blameless_rules.txt`, compiled in and parsed once,
//! see `blame.rs`); the secret (`secrets.rs`) and personal-data (`personal.rs`) detectors
//! are code because each needs a small validator (Luhn, IP parsing, entropy) that a pattern
//! alone cannot express.
//!
//! Design choices, in short:
//! * Blame findings are skipped inside fenced code blocks and inline code;
//!   secret and personal-data findings are not, because pasted logs and
//!   configs are exactly where credentials leak.
//! * Rules such as "failed to" only fire when the clause's subject is a
//!   person, so "the deploy failed to start" stays quiet.
//! * Secret excerpts are masked so the page never re-displays a credential.
//! * Findings never overlap: secrets win over personal data, which wins over
//!   blame; within a kind the earliest, then longest, match wins.
//! * The names of the people who might be blamed are compiled once into a [`People`] by
//!   the caller and passed to every check, so checking many texts against the same names
//!   costs one compilation.

use regex::Regex;
use std::collections::{BTreeMap, HashSet};

/// One `#[test]` per case, so a failure names the exact example. Shared by the rule
/// families' tests: `cases! { FindingKind::Blame; name: "text" => Some("rule"); }`.
#[cfg(test)]
macro_rules! cases {
    ($kind:expr; $($name:ident: $text:expr => $rule:expr;)+) => {$(
        #[test]
        fn $name() {
            $crate::writing::test_support::expect($kind, $text, $rule);
        }
    )+};
}

mod blame;
mod code_spans;
mod personal;
mod secrets;

// ------------------------------------------------------------------ public API

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// Language that points at people rather than systems.
    Blame,
    /// Something that looks like a credential.
    Secret,
    /// Something that looks like personal data (email, IP, phone, card).
    PersonalData,
}

impl FindingKind {
    /// Stable machine name: `"blame"`, `"secret"` or `"personal_data"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Blame => "blame",
            FindingKind::Secret => "secret",
            FindingKind::PersonalData => "personal_data",
        }
    }

    /// Human label: `"Blameless language"`, `"Possible secret"` or `"Personal data"`.
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::Blame => "Blameless language",
            FindingKind::Secret => "Possible secret",
            FindingKind::PersonalData => "Personal data",
        }
    }

    /// Lower wins when two findings overlap: a leaked key matters more than
    /// the wording around it.
    fn priority(self) -> u8 {
        match self {
            FindingKind::Secret => 0,
            FindingKind::PersonalData => 1,
            FindingKind::Blame => 2,
        }
    }
}

/// One flagged span of the checked text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which family of check produced it.
    pub kind: FindingKind,
    /// Short rule label, e.g. `"failed to"`, `"GitHub token"`, `"email address"`.
    pub rule: String,
    /// 1-based line of `start`.
    pub line: usize,
    /// 1-based column of `start`, counted in chars.
    pub column: usize,
    /// Byte offset of the start of the span in the checked text.
    pub start: usize,
    /// Byte offset just past the end of the span.
    pub end: usize,
    /// The matched text, whitespace collapsed; secrets and card numbers are
    /// masked (at most the first 4 chars shown, then `••••`).
    pub excerpt: String,
    /// A gentle, actionable message for the writer.
    pub message: String,
}

/// The names of the people who might be named in a text, compiled for the blame check.
///
/// A known name as the subject of a failure ("Bob broke the build", "Ada Lovelace
/// accidentally deleted the bucket") is flagged, and a name counts as a person wherever the
/// blame rules look for one ("The root cause was Bob."). Names are matched case-sensitively:
/// a multi-word name as a whole, and a first name (or one-word name) on its own only when it
/// is capitalised and at least three characters long, so "Will" the person is found but
/// "will" the verb is not.
///
/// Building one compiles a pattern from every name, which costs more than checking a short
/// text: build it once for a list of names (say once per request) and pass it to every
/// [`check`] of texts written about those people. [`People::default()`] knows no one.
///
/// ```
/// use hindsight::writing::{self, People};
///
/// let people = People::new(["Ada Lovelace", "Bob"]);
/// let findings = writing::check("Bob broke the build.", &people);
/// assert_eq!(findings[0].rule, "person as subject");
/// ```
#[derive(Debug, Clone, Default)]
pub struct People {
    /// Full names and first names, for finding names in running text.
    regex: Option<Regex>,
    /// Single-word names (first names of 3+ letters, one-word full names).
    singles: HashSet<String>,
    /// Multi-word full names, split into words.
    fulls: Vec<Vec<String>>,
}

impl People {
    /// Compiles `names` (e.g. `["Ada Lovelace", "Bob"]`, or a `&Vec<String>` of user names).
    pub fn new<I>(names: I) -> People
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut singles = HashSet::new();
        let mut fulls = Vec::new();
        let mut alts: Vec<String> = Vec::new();
        for name in names {
            let words: Vec<&str> = name.as_ref().split_whitespace().collect();
            let Some(first) = words.first() else { continue };
            // A capitalised name is what distinguishes "Will" the person from
            // "will" the verb; short names like "Al" are too noisy.
            let usable = |w: &str| {
                w.chars().count() >= 3 && w.chars().next().is_some_and(char::is_uppercase)
            };
            if words.len() > 1 {
                fulls.push(words.iter().map(|w| w.to_string()).collect::<Vec<_>>());
                alts.push(
                    words
                        .iter()
                        .map(|w| regex::escape(w))
                        .collect::<Vec<_>>()
                        .join(r"\s+"),
                );
            }
            if usable(first) {
                singles.insert(first.to_string());
                alts.push(regex::escape(first));
            }
        }
        fulls.sort_by_key(|f: &Vec<String>| std::cmp::Reverse(f.len()));
        alts.sort_by_key(|a| std::cmp::Reverse(a.len()));
        alts.dedup();
        // Names are escaped, so this only fails on absurd sizes; then we just
        // skip the name rule rather than fail the whole check.
        let regex = (!alts.is_empty())
            .then(|| Regex::new(&format!(r"\b(?:{})\b", alts.join("|"))).ok())
            .flatten();
        People {
            regex,
            singles,
            fulls,
        }
    }
}

/// Runs every check: blameless language, secrets and personal data.
///
/// `people` are the known user names, compiled once (see [`People`]); they let the blame
/// check recognise a person named as the subject of a failure. Findings are sorted by
/// position and never overlap.
pub fn check(text: &str, people: &People) -> Vec<Finding> {
    let mut candidates = blame::candidates(text, people);
    candidates.extend(secrets::candidates(text));
    candidates.extend(personal::candidates(text));
    finish(text, candidates)
}

/// Runs only the blameless-language check (skips code blocks and inline code).
pub fn check_language(text: &str, people: &People) -> Vec<Finding> {
    finish(text, blame::candidates(text, people))
}

/// Runs only the secret and personal-data checks (code blocks included).
pub fn check_sensitive(text: &str) -> Vec<Finding> {
    let mut candidates = secrets::candidates(text);
    candidates.extend(personal::candidates(text));
    finish(text, candidates)
}

// ------------------------------------------------------------------ assembly

/// A finding before de-duplication and line/column computation.
struct Candidate {
    kind: FindingKind,
    rule: String,
    start: usize,
    end: usize,
    message: String,
    mask: bool,
    /// Rule order, so that a specific rule beats a generic one on the same span.
    order: usize,
}

fn finish(text: &str, mut candidates: Vec<Candidate>) -> Vec<Finding> {
    // Greedy interval selection in priority order; accepted spans never overlap,
    // so checking the nearest accepted span that starts before `end` suffices.
    candidates.sort_by(|a, b| {
        (
            a.kind.priority(),
            a.start,
            std::cmp::Reverse(a.end),
            a.order,
        )
            .cmp(&(
                b.kind.priority(),
                b.start,
                std::cmp::Reverse(b.end),
                b.order,
            ))
    });
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let mut kept = Vec::new();
    for c in candidates {
        if c.start >= c.end {
            continue;
        }
        let overlaps = taken
            .range(..c.end)
            .next_back()
            .is_some_and(|(_, &end)| end > c.start);
        if !overlaps {
            taken.insert(c.start, c.end);
            kept.push(c);
        }
    }
    kept.sort_by_key(|c| (c.start, c.end));

    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    // Columns are counted incrementally from the previous finding on the same
    // line, so many findings on one very long line stay linear.
    let mut cursor = (usize::MAX, 0, 0); // (line index, byte offset, column there)
    kept.into_iter()
        .map(|c| {
            let line_idx = line_starts.partition_point(|&s| s <= c.start) - 1;
            let (from, base) = if cursor.0 == line_idx && cursor.1 <= c.start {
                (cursor.1, cursor.2)
            } else {
                (line_starts[line_idx], 1)
            };
            let column = base + text[from..c.start].chars().count();
            cursor = (line_idx, c.start, column);
            let raw = &text[c.start..c.end];
            let excerpt = if c.mask {
                secrets::mask(raw)
            } else {
                raw.split_whitespace().collect::<Vec<_>>().join(" ")
            };
            Finding {
                kind: c.kind,
                rule: c.rule,
                line: line_idx + 1,
                column,
                start: c.start,
                end: c.end,
                excerpt,
                message: c.message,
            }
        })
        .collect()
}

// ------------------------------------------------------------------ shared helpers

/// Extra validation of a candidate span: `(text, start, end) -> keep?`.
type Accept = fn(&str, usize, usize) -> bool;

/// Compiles one of the built-in detector patterns.
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid pattern")
}

fn char_before(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

fn char_after(text: &str, i: usize) -> Option<char> {
    text[i..].chars().next()
}

// ------------------------------------------------------------------ tests

/// What the rule families' tests share: the names they know and the one-case assertion.
#[cfg(test)]
mod test_support {
    use super::{Finding, FindingKind, People, check};

    /// The known user names the case tests check against.
    pub(super) const PEOPLE: [&str; 2] = ["Ada Lovelace", "Bob"];

    /// `Some(rule)`: a finding of `kind` with that rule label exists.
    /// `None`: no finding of `kind` at all.
    pub(super) fn expect(kind: FindingKind, text: &str, rule: Option<&str>) {
        let found: Vec<Finding> = check(text, &People::new(PEOPLE))
            .into_iter()
            .filter(|f| f.kind == kind)
            .collect();
        match rule {
            Some(rule) => assert!(
                found.iter().any(|f| f.rule == rule),
                "{text:?} should flag {rule:?}, got {found:#?}"
            ),
            None => assert!(
                found.is_empty(),
                "{text:?} should not be flagged, got {found:#?}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blame_inside_code_is_skipped_but_secrets_are_not() {
        let text = "Log:\n```\nERROR human error: he failed to connect\ntoken ghp_abcdefghijklmnopqrstuvwxyz0123456789\n```\nAnd `careless` in inline code.";
        let f = check(text, &People::default());
        assert!(f.iter().all(|f| f.kind != FindingKind::Blame), "{f:?}");
        assert!(f.iter().any(|f| f.rule == "GitHub token"));
    }

    #[test]
    fn line_and_column_are_one_based_chars() {
        let text = "# Summary\nAll good — really.\nThe ops — sigh — human error.\n";
        let f = check(text, &People::default());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].line, f[0].column), (3, 18));
        assert_eq!(&text[f[0].start..f[0].end], "human error");
        assert_eq!(f[0].excerpt, "human error");
    }

    #[test]
    fn findings_are_sorted_and_never_overlap() {
        let text = "Bob failed to rotate ghp_abcdefghijklmnopqrstuvwxyz0123456789; mail bob@acme.io. It was human error and careless.";
        let f = check(text, &People::new(["Bob"]));
        assert!(f.windows(2).all(|w| w[0].end <= w[1].start), "{f:?}");
        let kinds: Vec<&str> = f.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["blame", "secret", "personal_data", "blame", "blame"]
        );
        assert_eq!(f[0].rule, "person as subject");
    }

    #[test]
    fn kind_names_and_labels() {
        assert_eq!(FindingKind::Blame.as_str(), "blame");
        assert_eq!(FindingKind::Secret.as_str(), "secret");
        assert_eq!(FindingKind::PersonalData.as_str(), "personal_data");
        assert_eq!(FindingKind::Blame.label(), "Blameless language");
        assert_eq!(FindingKind::Secret.label(), "Possible secret");
        assert_eq!(FindingKind::PersonalData.label(), "Personal data");
    }

    #[test]
    fn empty_and_unicode_text() {
        assert!(check("", &People::default()).is_empty());
        let f = check(
            "Ünïcödé — 日本語 — он\u{a0}failed to ÄÖÜ\u{a0}7fK2pQ9xLm3Zr8Tv1Wb6Nc4Hs5Jd0Ya2Ue",
            &People::new(["Zoë"]),
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn columns_on_one_long_line() {
        let text = "é 10.0.0.1 é 10.0.0.2 é 10.0.0.3";
        let cols: Vec<usize> = check(text, &People::default())
            .iter()
            .map(|f| f.column)
            .collect();
        assert_eq!(cols, [3, 14, 25]);
    }

    #[test]
    fn single_long_line_stays_fast() {
        let text = "key 7fK2pQ9xLm3Zr8Tv1Wb6Nc4Hs5Jd0Ya2Ue 10.1.2.3 ".repeat(4_000);
        let started = std::time::Instant::now();
        assert_eq!(check(&text, &People::default()).len(), 8_000);
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }

    #[test]
    fn large_input_is_fast_enough() {
        let para = "The deploy failed to start at 14:03 on 10.0.0.1 because the cache should have been invalidated. \
                    He should have tested it; ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked. Bob broke the build.\n\n";
        let text = para.repeat(200_000 / para.len());
        let started = std::time::Instant::now();
        let f = check(&text, &People::new(["Bob", "Ada Lovelace"]));
        assert_eq!(f.len(), 4 * (200_000 / para.len()));
        // Generous bound: debug builds on a slow CI box.
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }
}
