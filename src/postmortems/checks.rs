//! Writing checks for post-mortem Markdown: blameless language, secrets, and personal data.
//!
//! Everything here is pure: text in, [`Finding`]s out. The blameless-language
//! rules are data (`blameless_rules.txt`, compiled in and parsed once); the
//! secret and personal-data detectors are code because each needs a small
//! validator (Luhn, IP parsing, entropy) that a pattern alone cannot express.
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

use regex::{Captures, Regex};
use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, LazyLock, Mutex};

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

/// Runs every check: blameless language, secrets and personal data.
///
/// `people` are the known user names (e.g. `["Ada Lovelace", "Bob"]`); they
/// let the blame check recognise a person named as the subject of a failure.
/// Findings are sorted by position and never overlap.
pub fn check(text: &str, people: &[&str]) -> Vec<Finding> {
    let mut candidates = language_candidates(text, people);
    candidates.extend(sensitive_candidates(text));
    finish(text, candidates)
}

/// Runs only the blameless-language check (skips code blocks and inline code).
pub fn check_language(text: &str, people: &[&str]) -> Vec<Finding> {
    finish(text, language_candidates(text, people))
}

/// Runs only the secret and personal-data checks (code blocks included).
pub fn check_sensitive(text: &str) -> Vec<Finding> {
    finish(text, sensitive_candidates(text))
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
                mask(raw)
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

/// Shows at most the first 4 chars, and for short values only a quarter of
/// them, so the excerpt can never reconstruct the secret.
fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    let keep = if n >= 16 { 4 } else { n / 4 };
    let mut out: String = secret.chars().take(keep).collect();
    out.push_str("••••");
    out
}

// ------------------------------------------------------------------ rule data

const RULES_SRC: &str = include_str!("blameless_rules.txt");

static RULES: LazyLock<RuleSet> =
    LazyLock::new(|| parse_rules(RULES_SRC).expect("blameless_rules.txt is valid"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Always,
    Subject,
    Object,
}

struct BlameRule {
    label: String,
    mode: Mode,
    regex: Regex,
    suggestion: String,
}

/// Lower-case phrases, each split into words; longest first so that
/// "on call" wins over "on".
#[derive(Default)]
struct WordList(Vec<Vec<String>>);

impl WordList {
    fn add(&mut self, entry: &str) {
        let words: Vec<String> = entry.split_whitespace().map(normalize).collect();
        if !words.is_empty() && !self.0.contains(&words) {
            self.0.push(words);
            self.0.sort_by_key(|w| std::cmp::Reverse(w.len()));
        }
    }

    /// Number of tokens matched at `toks[i..]`, allowing a plural on the last word.
    fn match_at(&self, toks: &[Tok], i: usize) -> Option<usize> {
        self.0.iter().find_map(|entry| {
            let window = toks.get(i..i + entry.len())?;
            let last = entry.len() - 1;
            let ok = window.iter().zip(entry).enumerate().all(|(k, (t, w))| {
                t.lower == *w
                    || (k == last
                        && (t.lower.strip_suffix('s') == Some(w.as_str())
                            || t.lower.strip_suffix("es") == Some(w.as_str())))
            });
            ok.then_some(entry.len())
        })
    }

    fn contains_word(&self, word: &str) -> bool {
        self.0.iter().any(|e| e.len() == 1 && e[0] == word)
    }
}

struct RuleSet {
    rules: Vec<BlameRule>,
    system: WordList,
    person: WordList,
    possessive: WordList,
    determiner: WordList,
    skip: WordList,
    conjunction: WordList,
    breaker: WordList,
    preposition: WordList,
    negation: WordList,
    /// Anchored at the start of the haystack: tested right after a name.
    failure_verb: Option<Regex>,
    allow: Option<Regex>,
    name_message: String,
}

/// Turns a data-file phrase into regex syntax: outside `[...]` a space means
/// any whitespace run (Markdown wraps lines) and an apostrophe means ' or ’.
fn phrase_to_regex(phrase: &str) -> String {
    let mut out = String::with_capacity(phrase.len() * 2);
    let mut in_class = false;
    let mut escaped = false;
    for ch in phrase.chars() {
        if escaped {
            out.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' => {
                out.push(ch);
                escaped = true;
            }
            '[' if !in_class => {
                in_class = true;
                out.push(ch);
            }
            ']' if in_class => {
                in_class = false;
                out.push(ch);
            }
            ' ' if !in_class => out.push_str(r"\s+"),
            '\'' | '’' if !in_class => out.push_str("['’]"),
            _ => out.push(ch),
        }
    }
    out
}

/// Compiles a case-insensitive alternation of phrases, longest first so the
/// leftmost-first regex semantics prefer "pushed a bad" over "pushed".
fn alternation(entries: &[String], prefix: &str, suffix: &str) -> Result<Option<Regex>, String> {
    if entries.is_empty() {
        return Ok(None);
    }
    let mut sorted: Vec<&String> = entries.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.len()));
    let body = sorted
        .iter()
        .map(|e| phrase_to_regex(e))
        .collect::<Vec<_>>()
        .join("|");
    Regex::new(&format!("(?i){prefix}(?:{body}){suffix}"))
        .map(Some)
        .map_err(|e| format!("bad list pattern: {e}"))
}

/// Parses the rule file format documented at the top of `blameless_rules.txt`.
fn parse_rules(src: &str) -> Result<RuleSet, String> {
    let mut set = RuleSet {
        rules: Vec::new(),
        system: WordList::default(),
        person: WordList::default(),
        possessive: WordList::default(),
        determiner: WordList::default(),
        skip: WordList::default(),
        conjunction: WordList::default(),
        breaker: WordList::default(),
        preposition: WordList::default(),
        negation: WordList::default(),
        failure_verb: None,
        allow: None,
        name_message: String::from(
            "This makes {name} the subject of a failure. What in the system made this possible?",
        ),
    };
    let mut verbs = Vec::new();
    let mut allow = Vec::new();
    let mut participles = Vec::new();
    let mut rule_lines = Vec::new();

    // Lists first, so rules can refer to {participle} wherever they appear.
    for (idx, raw) in src.lines().enumerate() {
        let lineno = idx + 1;
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if let Some(list) = fields[0].strip_prefix('@') {
            let [_, value] = fields[..] else {
                return Err(format!(
                    "line {lineno}: @{list} needs exactly one TAB-separated value"
                ));
            };
            if list == "name_message" {
                set.name_message = value.to_string();
                continue;
            }
            let entries = value.split(',').map(str::trim).filter(|e| !e.is_empty());
            for entry in entries {
                match list {
                    "system" => set.system.add(entry),
                    "person" => set.person.add(entry),
                    "possessive" => set.possessive.add(entry),
                    "determiner" => set.determiner.add(entry),
                    "skip" => set.skip.add(entry),
                    "conjunction" => set.conjunction.add(entry),
                    "breaker" => set.breaker.add(entry),
                    "preposition" => set.preposition.add(entry),
                    "negation" => set.negation.add(entry),
                    "failure_verb" => verbs.push(entry.to_string()),
                    "allow" => allow.push(entry.to_string()),
                    "participle" => participles.push(entry.to_string()),
                    other => return Err(format!("line {lineno}: unknown list @{other}")),
                }
            }
        } else {
            rule_lines.push((lineno, fields));
        }
    }

    let participle = format!("(?:{})", participles.join("|"));
    for (lineno, fields) in rule_lines {
        let [label, mode, pattern, suggestion] = fields[..] else {
            return Err(format!(
                "line {lineno}: expected LABEL<TAB>MODE<TAB>PATTERN<TAB>SUGGESTION"
            ));
        };
        let mode = match mode {
            "always" => Mode::Always,
            "subject" => Mode::Subject,
            "object" => Mode::Object,
            other => return Err(format!("line {lineno}: unknown mode {other:?}")),
        };
        if label.is_empty() || pattern.is_empty() || suggestion.is_empty() {
            return Err(format!("line {lineno}: empty field"));
        }
        let body = phrase_to_regex(&pattern.replace("{participle}", &participle));
        let regex = Regex::new(&format!(r"(?i)\b(?:{body})\b"))
            .map_err(|e| format!("line {lineno}: bad pattern: {e}"))?;
        set.rules.push(BlameRule {
            label: label.to_string(),
            mode,
            regex,
            suggestion: suggestion.to_string(),
        });
    }
    set.failure_verb = alternation(&verbs, "^", r"\b")?;
    set.allow = alternation(&allow, r"\b", r"\b")?;
    Ok(set)
}

// ------------------------------------------------------------------ blame check

/// Known user names, matched case-sensitively.
struct People {
    /// Full names and first names, for finding names in running text.
    regex: Option<Regex>,
    /// Single-word names (first names of 3+ letters, one-word full names).
    singles: HashSet<String>,
    /// Multi-word full names, split into words.
    fulls: Vec<Vec<String>>,
}

impl People {
    fn new(people: &[&str]) -> People {
        let mut singles = HashSet::new();
        let mut fulls = Vec::new();
        let mut alts: Vec<String> = Vec::new();
        for name in people {
            let words: Vec<&str> = name.split_whitespace().collect();
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

    fn match_at(&self, toks: &[Tok], i: usize) -> Option<usize> {
        for full in &self.fulls {
            if let Some(window) = toks.get(i..i + full.len())
                && window.iter().zip(full).all(|(t, w)| t.text == *w)
            {
                return Some(full.len());
            }
        }
        toks.get(i)
            .filter(|t| self.singles.contains(&t.text))
            .map(|_| 1)
    }
}

/// A word of running text.
#[derive(Debug, Clone)]
struct Tok {
    /// Original spelling, possessive `'s` removed (names are case-sensitive).
    text: String,
    lower: String,
    possessive: bool,
}

#[derive(Debug, Clone)]
enum Item {
    Word(Tok),
    /// Clause boundary: punctuation or a conjunction.
    Break,
    /// Sentence boundary.
    Sentence,
}

/// Lower-case with a straight apostrophe, so "Wasn’t" matches "wasn't".
fn normalize(word: &str) -> String {
    word.to_lowercase().replace('’', "'")
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '\'' | '’' | '-')
}

/// True when a newline at `i` starts a new block (blank line, list item,
/// heading, quote, table row) rather than wrapping a paragraph.
fn newline_breaks_block(s: &str, i: usize) -> bool {
    // Headings and table rows never wrap onto the next line.
    let line = &s[s[..i].rfind('\n').map_or(0, |p| p + 1)..i];
    if line.trim_start().starts_with(['#', '|']) {
        return true;
    }
    let rest = s[i + 1..].trim_start_matches([' ', '\t']);
    let mut chars = rest.chars();
    match chars.next() {
        None | Some('\n' | '\r' | '-' | '*' | '+' | '#' | '>' | '|') => true,
        Some(c) if c.is_ascii_digit() => {
            let after = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            after.starts_with(". ") || after.starts_with(") ")
        }
        _ => false,
    }
}

fn tokenize(s: &str, rules: &RuleSet) -> Vec<Item> {
    let mut items = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_word_char(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !is_word_char(d) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            let word = s[i..end].trim_matches(['\'', '’', '-', '_']);
            if word.is_empty() {
                continue;
            }
            let (base, possessive) =
                match word.strip_suffix("'s").or_else(|| word.strip_suffix("’s")) {
                    Some(b) if !b.is_empty() => (b, true),
                    _ => (word, false),
                };
            let lower = normalize(base);
            if !possessive && rules.conjunction.contains_word(&lower) {
                items.push(Item::Break);
            } else {
                items.push(Item::Word(Tok {
                    text: base.to_string(),
                    lower,
                    possessive,
                }));
            }
            continue;
        }
        match c {
            '.' | '!' | '?' => {
                let next = s[i + 1..].chars().next();
                if next.is_none_or(char::is_whitespace) {
                    items.push(Item::Sentence);
                }
            }
            '\n' if newline_breaks_block(s, i) => items.push(Item::Sentence),
            ',' | ';' | ':' | '(' | ')' | '[' | ']' | '—' | '–' | '"' | '“' | '”' | '|' | '`' => {
                items.push(Item::Break)
            }
            _ => {}
        }
    }
    items
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Person,
    System,
    Unknown,
    /// The clause has no subject of its own ("... and failed to").
    Empty,
}

/// Decides who a clause is about by reading it from the front: people words
/// and names make it a person; system words, or a determiner opening a noun
/// phrase that is not a person ("the rollback we planned"), make it a system.
fn resolve_clause(toks: &[Tok], rules: &RuleSet, people: &People) -> Subject {
    let mut saw_det = false;
    let mut content = 0;
    let mut i = 0;
    while i < toks.len() {
        let is_last = i + 1 == toks.len();
        if let Some(n) = rules
            .person
            .match_at(toks, i)
            .or_else(|| people.match_at(toks, i))
        {
            if toks[i + n - 1].possessive {
                // "the engineer's change failed": the change is the subject.
                saw_det = true;
                i += n;
                continue;
            }
            return Subject::Person;
        }
        if let Some(n) = rules.possessive.match_at(toks, i) {
            // "his failure to" vs "our alerting should have".
            if is_last {
                return Subject::Person;
            }
            saw_det = true;
            i += n;
            continue;
        }
        if let Some(n) = rules.determiner.match_at(toks, i) {
            saw_det = true;
            i += n;
            continue;
        }
        if rules.system.match_at(toks, i).is_some() {
            return Subject::System;
        }
        // "The page to the on-call failed": the subject ends at the preposition.
        if (saw_det || content > 0) && rules.preposition.match_at(toks, i).is_some() {
            break;
        }
        if rules.skip.match_at(toks, i).is_none() {
            content += 1;
            if content > 3 {
                break;
            }
        }
        i += 1;
    }
    if saw_det {
        Subject::System
    } else if content > 0 {
        Subject::Unknown
    } else {
        Subject::Empty
    }
}

/// Whether the clause ends with a person phrase ("When the alert fired the
/// on-call failed to"), ignoring adverbs, unless a preposition makes that
/// person an object ("the page to the on-call failed to send").
fn person_right_before(toks: &[Tok], rules: &RuleSet, people: &People) -> bool {
    let mut end = toks.len();
    while end > 0 && rules.skip.match_at(toks, end - 1).is_some() {
        end -= 1;
    }
    let Some(last) = end.checked_sub(1) else {
        return false;
    };
    if toks[last].possessive {
        return false;
    }
    // Person phrases are at most three words ("incident commander", full names).
    (last.saturating_sub(2)..=last).any(|j| {
        let n = rules
            .person
            .match_at(toks, j)
            .or_else(|| people.match_at(toks, j));
        if n != Some(last - j + 1) {
            return false;
        }
        let mut k = j;
        while k > 0 && rules.determiner.match_at(toks, k - 1).is_some() {
            k -= 1;
        }
        k == 0 || rules.preposition.match_at(toks, k - 1).is_none()
    })
}

/// Subject of the clause that ends at byte `start`.
fn subject_before(text: &str, start: usize, rules: &RuleSet, people: &People) -> Subject {
    let mut from = start.saturating_sub(400);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let items = tokenize(&text[from..start], rules);
    let sentence_start = items
        .iter()
        .rposition(|it| matches!(it, Item::Sentence))
        .map_or(0, |p| p + 1);
    let sentence = &items[sentence_start..];
    let clauses: Vec<Vec<Tok>> = sentence
        .split(|it| matches!(it, Item::Break))
        .map(|c| {
            c.iter()
                .filter_map(|it| match it {
                    Item::Word(t) => Some(t.clone()),
                    _ => None,
                })
                .collect()
        })
        .collect();
    if let Some(last) = clauses.last()
        && person_right_before(last, rules, people)
    {
        return Subject::Person;
    }
    // An elided subject ("He restarted it and failed to ...") belongs to an
    // earlier clause of the same sentence.
    for clause in clauses.iter().rev().take(4) {
        match resolve_clause(clause, rules, people) {
            Subject::Empty => continue,
            found => return found,
        }
    }
    Subject::Unknown
}

/// Whether the words right after byte `end` name a person
/// ("root cause was the new engineer", "caused by Bob's change").
fn object_after(text: &str, end: usize, rules: &RuleSet, people: &People) -> Subject {
    let mut to = (end + 200).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    let toks: Vec<Tok> = tokenize(&text[end..to], rules)
        .into_iter()
        .map_while(|it| match it {
            Item::Word(t) => Some(t),
            _ => None,
        })
        .take(6)
        .collect();
    let mut content = 0;
    let mut i = 0;
    while i < toks.len() {
        if rules.person.match_at(&toks, i).is_some() || people.match_at(&toks, i).is_some() {
            return Subject::Person;
        }
        if let Some(n) = rules
            .determiner
            .match_at(&toks, i)
            .or_else(|| rules.skip.match_at(&toks, i))
        {
            if content > 0 {
                break;
            }
            i += n;
            continue;
        }
        if rules.system.match_at(&toks, i).is_some() {
            return Subject::System;
        }
        content += 1;
        if content >= 2 {
            break;
        }
        i += 1;
    }
    Subject::Unknown
}

/// Byte ranges of fenced code blocks and inline code spans, sorted.
fn code_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut fence: Option<(u8, usize, usize)> = None; // (char, length, block start)
    let mut prose_start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = &line[indent..];
        let run = |c: u8| body.bytes().take_while(|&b| b == c).count();
        match fence {
            None if indent <= 3 => {
                for c in [b'`', b'~'] {
                    let n = run(c);
                    if n >= 3 {
                        inline_code(text, prose_start, offset, &mut spans);
                        fence = Some((c, n, offset));
                        break;
                    }
                }
            }
            Some((c, n, block_start))
                if indent <= 3 && run(c) >= n && body[run(c)..].trim().is_empty() =>
            {
                spans.push((block_start, offset + line.len()));
                fence = None;
                prose_start = offset + line.len();
            }
            _ => {}
        }
        offset += line.len();
    }
    match fence {
        // An unclosed fence runs to the end of the document, as in CommonMark.
        Some((_, _, block_start)) => spans.push((block_start, text.len())),
        None => inline_code(text, prose_start, text.len(), &mut spans),
    }
    spans.sort_unstable();
    spans
}

/// Inline code: a run of N backticks up to the next run of exactly N.
fn inline_code(text: &str, from: usize, to: usize, spans: &mut Vec<(usize, usize)>) {
    let bytes = &text.as_bytes()[from..to];
    let run_at = |i: usize| bytes[i..].iter().take_while(|&&b| b == b'`').count();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut closed = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let m = run_at(j);
                if m == n {
                    closed = Some(j + m);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match closed {
            Some(close) => {
                spans.push((from + i, from + close));
                i = close;
            }
            None => i += n,
        }
    }
}

/// Whether `[start, end)` lies within one of the sorted, disjoint `spans`.
fn within(spans: &[(usize, usize)], start: usize, end: usize) -> bool {
    let idx = spans.partition_point(|&(s, _)| s <= start);
    idx > 0 && spans[idx - 1].1 >= end
}

/// The last list of names and its compiled form. Every section of a page is checked against
/// the same list, and building the name pattern costs more than checking a short section.
static PEOPLE_CACHE: LazyLock<Mutex<Option<CachedPeople>>> = LazyLock::new(|| Mutex::new(None));

/// The names as given, and what was built from them.
type CachedPeople = (Vec<String>, Arc<People>);

fn people_for(names: &[&str]) -> Arc<People> {
    let mut cache = PEOPLE_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((cached, people)) = &*cache
        && cached.iter().map(String::as_str).eq(names.iter().copied())
    {
        return Arc::clone(people);
    }
    let people = Arc::new(People::new(names));
    *cache = Some((
        names.iter().map(|n| (*n).to_owned()).collect(),
        Arc::clone(&people),
    ));
    people
}

fn language_candidates(text: &str, people: &[&str]) -> Vec<Candidate> {
    let rules = &*RULES;
    let people = people_for(people);
    let code = code_spans(text);
    let allowed: Vec<(usize, usize)> = rules
        .allow
        .as_ref()
        .map(|re| re.find_iter(text).map(|m| (m.start(), m.end())).collect())
        .unwrap_or_default();
    let mut out = Vec::new();

    for (order, rule) in rules.rules.iter().enumerate() {
        for m in rule.regex.find_iter(text) {
            if within(&code, m.start(), m.start() + 1) || within(&allowed, m.start(), m.end()) {
                continue;
            }
            let flagged = match rule.mode {
                Mode::Always => true,
                Mode::Subject => subject_before(text, m.start(), rules, &people) == Subject::Person,
                Mode::Object => object_after(text, m.end(), rules, &people) == Subject::Person,
            };
            if flagged {
                out.push(Candidate {
                    kind: FindingKind::Blame,
                    rule: rule.label.clone(),
                    start: m.start(),
                    end: m.end(),
                    message: rule.suggestion.clone(),
                    mask: false,
                    order,
                });
            }
        }
    }

    if let (Some(names), Some(verbs)) = (&people.regex, &rules.failure_verb) {
        for m in names.find_iter(text) {
            if within(&code, m.start(), m.start() + 1) || negated(text, m.start(), rules) {
                continue;
            }
            if let Some(end) = failure_after_name(text, m.end(), verbs, rules) {
                out.push(Candidate {
                    kind: FindingKind::Blame,
                    rule: "person as subject".to_string(),
                    start: m.start(),
                    end,
                    message: rules.name_message.replace("{name}", m.as_str()),
                    mask: false,
                    order: usize::MAX,
                });
            }
        }
    }
    out
}

/// "It was not Bob's fault": a negation right before the name.
fn negated(text: &str, name_start: usize, rules: &RuleSet) -> bool {
    let before = text[..name_start].trim_end();
    let word_start = before.rfind(|c: char| !is_word_char(c)).map_or(0, |i| {
        i + before[i..].chars().next().map_or(1, char::len_utf8)
    });
    rules
        .negation
        .contains_word(&normalize(&before[word_start..]))
}

/// Looks for a failure verb within three words after a name ("Bob broke",
/// "Bob's change caused", "Ada accidentally deleted"). Punctuation, a blank
/// line, or a clause word ("Bob noticed the deploy broke") stops the search.
fn failure_after_name(
    text: &str,
    name_end: usize,
    verbs: &Regex,
    rules: &RuleSet,
) -> Option<usize> {
    let mut pos = name_end;
    let rest = &text[pos..];
    if let Some(r) = rest.strip_prefix("'s").or_else(|| rest.strip_prefix("’s")) {
        pos = text.len() - r.len();
    }
    for _ in 0..4 {
        let rest = &text[pos..];
        let trimmed = rest.trim_start();
        let gap = &rest[..rest.len() - trimmed.len()];
        if gap.is_empty() || gap.matches('\n').count() > 1 {
            return None;
        }
        pos += gap.len();
        let mut to = (pos + 120).min(text.len());
        while !text.is_char_boundary(to) {
            to -= 1;
        }
        if let Some(v) = verbs.find(&text[pos..to]) {
            return Some(pos + v.end());
        }
        let word_len: usize = trimmed
            .chars()
            .take_while(|&c| is_word_char(c))
            .map(char::len_utf8)
            .sum();
        if word_len == 0
            || rules
                .breaker
                .contains_word(&normalize(&trimmed[..word_len]))
        {
            return None;
        }
        pos += word_len;
    }
    None
}

// ------------------------------------------------------------------ sensitive check

/// Extra validation of a candidate span: `(text, start, end) -> keep?`.
type Accept = fn(&str, usize, usize) -> bool;

struct SensitiveRule {
    label: &'static str,
    kind: FindingKind,
    regex: Regex,
    /// Mask the excerpt (all secrets, plus card numbers).
    mask: bool,
    accept: Accept,
    message: &'static str,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid pattern")
}

fn secret_message(what: &str) -> String {
    format!(
        "Looks like {what}: remove it or replace it with <redacted> before publishing (and rotate it if it was real)."
    )
}

static SECRET_MESSAGES: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    [
        ("AWS access key ID", "an AWS access key ID"),
        ("AWS secret key", "an AWS secret access key"),
        ("GitHub token", "a GitHub token"),
        ("Slack token", "a Slack token"),
        ("Slack webhook URL", "a Slack webhook URL"),
        ("Stripe key", "a Stripe API key"),
        ("Google API key", "a Google API key"),
        ("JWT", "a JSON Web Token"),
        ("private key", "a private key"),
        ("Authorization header", "an Authorization header credential"),
        ("bearer token", "a bearer token"),
        ("password in URL", "a password inside a URL"),
        ("password", "a password"),
        ("secret", "a secret"),
        ("API key", "an API key"),
        ("token", "an access token"),
        (
            "high-entropy string",
            "a key or token (long random-looking string)",
        ),
    ]
    .into_iter()
    .map(|(label, what)| (label, secret_message(what)))
    .collect()
});

fn message_for(label: &str) -> String {
    SECRET_MESSAGES
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, m)| m.clone())
        .unwrap_or_else(|| secret_message("a secret"))
}

/// Byte index just past the char that starts at `i`.
fn next_char_start(text: &str, i: usize) -> usize {
    i + text[i..].chars().next().map_or(0, char::len_utf8)
}

fn char_before(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

fn char_after(text: &str, i: usize) -> Option<char> {
    text[i..].chars().next()
}

/// The span is not glued to more token characters on either side.
fn token_edges(text: &str, s: usize, e: usize) -> bool {
    let tokenish = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    !char_before(text, s).is_some_and(tokenish) && !char_after(text, e).is_some_and(tokenish)
}

fn any(_: &str, _: usize, _: usize) -> bool {
    true
}

/// Values people write instead of a real secret.
fn is_placeholder(value: &str) -> bool {
    let v = value.to_lowercase();
    let first = v.chars().next();
    if first.is_some_and(|c| matches!(c, '$' | '%' | '{' | '<' | '*' | '•' | '[' | '(')) {
        return true;
    }
    const WORDS: [&str; 14] = [
        "redacted",
        "example",
        "placeholder",
        "changeme",
        "change_me",
        "your",
        "dummy",
        "xxxx",
        "****",
        "••",
        "secret",
        "password",
        "sample",
        "hidden",
    ];
    if WORDS.iter().any(|w| v.contains(w)) {
        return true;
    }
    // "aaaaaaaa", "00000000"
    v.chars().all(|c| Some(c) == first)
}

fn not_placeholder(text: &str, s: usize, e: usize) -> bool {
    !is_placeholder(&text[s..e])
}

fn bearer_value(text: &str, s: usize, e: usize) -> bool {
    let v = &text[s..e];
    v.chars().any(|c| c.is_ascii_digit())
        && v.chars().any(|c| c.is_ascii_alphabetic())
        && !is_placeholder(v)
}

/// `password=`-style values: non-trivial, not a reference to somewhere else.
fn assignment_value(text: &str, s: usize, e: usize) -> bool {
    let v = &text[s..e];
    if is_placeholder(v) || v.contains("://") {
        return false;
    }
    const TRIVIAL: [&str; 12] = [
        "true",
        "false",
        "null",
        "none",
        "nil",
        "undefined",
        "empty",
        "required",
        "optional",
        "string",
        "masked",
        "unset",
    ];
    if TRIVIAL.contains(&v.to_lowercase().as_str()) {
        return false;
    }
    // Code references: `os.environ[...]`, `getenv(...)`, `settings.DB_PASS`, `DB_PASSWORD`.
    if char_after(text, e).is_some_and(|c| matches!(c, '(' | '[' | '{')) {
        return false;
    }
    let ident = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if v.contains('.') && v.split('.').all(ident) {
        return false;
    }
    if v.contains('_')
        && v.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    // After a colon this is often prose ("Password: rotated at once"), so ask
    // for something password-shaped: a digit, a symbol, or mixed case.
    let before = text[..s].trim_end_matches(['"', '\'', ' ', '\t']);
    if before.ends_with(':') {
        let digit = v.chars().any(|c| c.is_ascii_digit());
        let symbol = v.chars().any(|c| !c.is_alphanumeric());
        let mixed = v.chars().any(char::is_uppercase) && v.chars().any(char::is_lowercase);
        return digit || symbol || mixed;
    }
    true
}

fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Generic long random-looking tokens. Deliberately strict: mixed case and
/// digits (so hex SHAs and UUIDs never qualify), high entropy, and not part
/// of a URL, path, hash digest or data URI.
fn key_like(text: &str, s: usize, e: usize) -> bool {
    let v = &text[s..e];
    if !token_edges(text, s, e)
        || char_before(text, s).is_some_and(|c| matches!(c, '/' | '.' | '=' | '+' | ':' | '@'))
    {
        return false;
    }
    // Look back a bounded distance only: a 200 KB single-line document with
    // many candidates must not turn this into a quadratic scan.
    let mut from = s.saturating_sub(300);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let window = &text[from..s];
    let prefix = window
        .rfind(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | '<'))
        .map_or(window, |i| &window[next_char_start(window, i)..]);
    if prefix.contains("://") || prefix.starts_with('/') || prefix.contains("base64,") {
        return false;
    }
    if v.matches('/').count() >= 2
        || v.starts_with("sha") && v[3..].starts_with(|c: char| c.is_ascii_digit())
    {
        return false;
    }
    // Random IDs (dashboard UIDs, trace IDs) look just like keys, so only a
    // credential word earlier on the same line makes a random string key-like.
    let mut from = s.saturating_sub(80);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let near = &text[from..s];
    let context = near[near.rfind('\n').map_or(0, |i| i + 1)..].to_lowercase();
    const CONTEXT: [&str; 11] = [
        "key",
        "token",
        "secret",
        "passw",
        "credential",
        "auth",
        "bearer",
        "signature",
        "cookie",
        "session",
        "api",
    ];
    if !CONTEXT.iter().any(|w| context.contains(w)) {
        return false;
    }
    let upper = v.chars().filter(char::is_ascii_uppercase).count();
    let lower = v.chars().filter(char::is_ascii_lowercase).count();
    let digits = v.chars().filter(char::is_ascii_digit).count();
    upper >= 2 && lower >= 2 && digits >= 2 && shannon_entropy(v) >= 4.3
}

fn email_ok(text: &str, s: usize, e: usize) -> bool {
    let v = text[s..e].to_lowercase();
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    // RFC 2606/6761 names are already anonymised; git@host is an SSH remote.
    let reserved = ["example.com", "example.org", "example.net"]
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
        || [".example", ".invalid", ".test", ".localhost"]
            .iter()
            .any(|t| domain.ends_with(t));
    local != "git" && !reserved
}

/// Not part of a longer dotted number (a version like 1.2.3.4.5) or a
/// version string ("v10.0.0.1", "version 1.2.3.4").
fn dotted_number_edges(text: &str, s: usize, e: usize) -> bool {
    let after = &text[e..];
    let before = &text[..s];
    let glued_after = (after.starts_with('.') || after.starts_with('-'))
        && after[1..].starts_with(|c: char| c.is_ascii_digit());
    let glued_before =
        before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let versionish = before
        .trim_end()
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .is_some_and(|w| {
            matches!(
                w.to_lowercase().as_str(),
                "version" | "release" | "v" | "build" | "ver"
            )
        });
    !glued_after && !glued_before && !versionish
}

/// Every IPv4 address is flagged (private ranges too: they map internal
/// topology) except loopback, 0.0.0.0, netmasks, broadcast and the RFC 5737
/// documentation ranges, which are what careful writers substitute.
fn ipv4_ok(text: &str, s: usize, e: usize) -> bool {
    if !dotted_number_edges(text, s, e) {
        return false;
    }
    let Ok(ip) = text[s..e].parse::<Ipv4Addr>() else {
        return false;
    };
    let o = ip.octets();
    let netmask = o[0] == 255
        && o.iter()
            .all(|b| matches!(b, 0 | 128 | 192 | 224 | 240 | 248 | 252 | 254 | 255));
    let documentation = matches!(o[..3], [192, 0, 2] | [198, 51, 100] | [203, 0, 113]);
    !(ip.is_loopback() || ip.is_unspecified() || netmask || documentation)
}

/// Conservative: must parse, have at least three written groups and six hex
/// digits, and not be loopback, unspecified or 2001:db8::/32 documentation.
fn ipv6_ok(text: &str, s: usize, e: usize) -> bool {
    let v = &text[s..e];
    let edge = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.');
    if char_before(text, s).is_some_and(edge) || char_after(text, e).is_some_and(edge) {
        return false;
    }
    let Ok(ip) = v.parse::<Ipv6Addr>() else {
        return false;
    };
    let groups = v.split(':').filter(|g| !g.is_empty()).count();
    let hex_digits = v.chars().filter(char::is_ascii_hexdigit).count();
    let seg = ip.segments();
    let documentation = seg[0] == 0x2001 && seg[1] == 0x0db8;
    groups >= 3 && hex_digits >= 6 && !ip.is_loopback() && !ip.is_unspecified() && !documentation
}

fn digit_count(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}

fn phone_intl_ok(text: &str, s: usize, e: usize) -> bool {
    let v = &text[s..e];
    let n = digit_count(v);
    let balanced = v.matches('(').count() == v.matches(')').count();
    let doubled = ["  ", "--", "..", " -", "- "].iter().any(|d| v.contains(d));
    (8..=15).contains(&n)
        && balanced
        && !doubled
        && !char_before(text, s).is_some_and(|c| c.is_alphanumeric())
        && dotted_number_edges(text, s, e)
}

fn phone_national_ok(text: &str, s: usize, e: usize) -> bool {
    let v = &text[s..e];
    let n = digit_count(v);
    // "100 000 000" is a number with thousands separators, not a phone.
    let groups: Vec<&str> = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let thousands =
        groups.first().is_some_and(|g| g.len() <= 3) && groups[1..].iter().all(|g| g.len() == 3);
    // Part of a longer run of digit groups (a card number, an ID): not a phone.
    let more_after = text[e..]
        .strip_prefix(' ')
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
    let more_before = text[..s]
        .strip_suffix(' ')
        .is_some_and(|r| r.ends_with(|c: char| c.is_ascii_digit()));
    (9..=12).contains(&n)
        && !thousands
        && !more_after
        && !more_before
        && dotted_number_edges(text, s, e)
        && !char_before(text, s).is_some_and(|c| matches!(c, ':' | '/' | '+'))
        && !char_after(text, e).is_some_and(|c| matches!(c, ':' | '/'))
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn card_ok(text: &str, s: usize, e: usize) -> bool {
    let v = &text[s..e];
    let digits: Vec<u32> = v.chars().filter_map(|c| c.to_digit(10)).collect();
    let one_separator = !(v.contains(' ') && v.contains('-'));
    // Issuer ranges start with 2-6; this drops most IDs and timestamps that
    // happen to pass Luhn (one in ten random numbers does).
    (13..=19).contains(&digits.len())
        && one_separator
        && digits.first().is_some_and(|d| (2..=6).contains(d))
        && !digits.iter().all(|&d| Some(&d) == digits.first())
        && luhn(&digits)
        && dotted_number_edges(text, s, e)
}

static SENSITIVE_RULES: LazyLock<Vec<SensitiveRule>> = LazyLock::new(|| {
    use FindingKind::{PersonalData, Secret};
    let secret = |label: &'static str, pattern: &str, accept: Accept| SensitiveRule {
        label,
        kind: Secret,
        regex: re(pattern),
        mask: true,
        accept,
        message: "",
    };
    let personal =
        |label: &'static str, pattern: &str, mask: bool, accept: Accept, message: &'static str| {
            SensitiveRule {
                label,
                kind: PersonalData,
                regex: re(pattern),
                mask,
                accept,
                message,
            }
        };
    // Order matters only for ties on the same span: specific before generic.
    vec![
        secret(
            "AWS access key ID",
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b",
            any,
        ),
        secret(
            "AWS secret key",
            r#"(?i)aws_?secret_?(?:access_?)?key["']?\s*(?:[:=]|=>)\s*["']?(?P<s>[A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            any,
        ),
        secret(
            "GitHub token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
            any,
        ),
        secret(
            "Slack token",
            r"\bxox[abprse]-[A-Za-z0-9-]{10,}",
            token_edges,
        ),
        secret(
            "Slack webhook URL",
            r"https://hooks\.slack\.com/(?:services|workflows)/(?P<s>[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+)",
            any,
        ),
        secret(
            "Stripe key",
            r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
            any,
        ),
        secret("Google API key", r"\bAIza[0-9A-Za-z_-]{35}", token_edges),
        secret(
            "JWT",
            r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
            token_edges,
        ),
        secret(
            "Authorization header",
            r"(?i)\bauthorization\s*:\s*(?:bearer|basic|token|apikey|digest)\s+(?P<s>[A-Za-z0-9._~+/-]{8,}=*)",
            not_placeholder,
        ),
        secret(
            "bearer token",
            r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/-]{16,}=*)",
            bearer_value,
        ),
        secret(
            "password in URL",
            r#"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'"<>]*:(?P<s>[^\s:/@'"<>]+)@[A-Za-z0-9.-]+"#,
            not_placeholder,
        ),
        secret(
            // The label is refined from the key name; see `assignment_label`.
            "password",
            r#"(?i)(?P<k>[A-Za-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|api[_-]?key|apikey|token|(?:access|private|signing|encryption|client)[_-]?key))["']?\s*(?:[:=]|=>)\s*["']?(?P<s>[^\s"'`,;<>(){}\[\]]{6,})"#,
            assignment_value,
        ),
        secret(
            "high-entropy string",
            r"[A-Za-z0-9+/_-]{32,}={0,2}",
            key_like,
        ),
        personal(
            "email address",
            r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}\b",
            false,
            email_ok,
            "Looks like an email address: replace it with a role (e.g. \"the on-call engineer\") before publishing.",
        ),
        personal(
            "IP address",
            r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
            false,
            ipv4_ok,
            "Looks like an IP address: replace it with a host role or a documentation address (192.0.2.x) before publishing.",
        ),
        personal(
            "IP address",
            r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}",
            false,
            ipv6_ok,
            "Looks like an IPv6 address: replace it with a host role or a documentation address (2001:db8::) before publishing.",
        ),
        personal(
            "payment card number",
            r"\b\d(?:[ -]?\d){12,18}\b",
            true,
            card_ok,
            "Looks like a payment card number: remove it before publishing.",
        ),
        personal(
            "phone number",
            r"\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}",
            false,
            phone_intl_ok,
            "Looks like a phone number: remove it or replace it with a role before publishing.",
        ),
        personal(
            "phone number",
            r"(?:\(\d{2,4}\)|\b\d{2,4})[ .-]\d{3,4}[ .-]\d{3,5}\b",
            false,
            phone_national_ok,
            "Looks like a phone number: remove it or replace it with a role before publishing.",
        ),
        personal(
            "phone number",
            r"\b0[1-9](?:[ .-]\d{2}){4}\b",
            false,
            phone_national_ok,
            "Looks like a phone number: remove it or replace it with a role before publishing.",
        ),
    ]
});

static PRIVATE_KEY: LazyLock<Regex> =
    LazyLock::new(|| re(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"));

/// Refines the generic assignment label from the key name.
fn assignment_label(caps: &Captures<'_>) -> &'static str {
    let key = caps
        .name("k")
        .map(|k| k.as_str().to_lowercase())
        .unwrap_or_default();
    if key.contains("pass") || key.contains("pwd") {
        "password"
    } else if key.contains("token") {
        "token"
    } else if key.contains("secret") && !key.ends_with("key") {
        "secret"
    } else {
        "API key"
    }
}

fn sensitive_candidates(text: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (order, rule) in SENSITIVE_RULES.iter().enumerate() {
        for caps in rule.regex.captures_iter(text) {
            let Some(m) = caps.name("s").or_else(|| caps.get(0)) else {
                continue;
            };
            if !(rule.accept)(text, m.start(), m.end()) {
                continue;
            }
            let label = if caps.name("k").is_some() {
                assignment_label(&caps)
            } else {
                rule.label
            };
            let message = match rule.kind {
                FindingKind::Secret => message_for(label),
                _ => rule.message.to_string(),
            };
            out.push(Candidate {
                kind: rule.kind,
                rule: label.to_string(),
                start: m.start(),
                end: m.end(),
                message,
                mask: rule.mask,
                order,
            });
        }
    }
    // Private key blocks: span the whole block when its END line is near, so
    // the highlight covers the key material and not just the header.
    for m in PRIVATE_KEY.find_iter(text) {
        let mut limit = (m.end() + 20_000).min(text.len());
        while !text.is_char_boundary(limit) {
            limit -= 1;
        }
        let end = text[m.end()..limit]
            .find("-----END")
            .and_then(|i| {
                let after_end = m.end() + i + "-----END".len();
                text[after_end..limit]
                    .find("-----")
                    .map(|j| after_end + j + 5)
            })
            .unwrap_or(m.end());
        out.push(Candidate {
            kind: FindingKind::Secret,
            rule: "private key".to_string(),
            start: m.start(),
            end,
            message: message_for("private key"),
            mask: true,
            order: 0,
        });
    }
    out
}

// ------------------------------------------------------------------ tests

#[cfg(test)]
mod tests {
    use super::*;

    const PEOPLE: [&str; 2] = ["Ada Lovelace", "Bob"];

    /// `Some(rule)`: a finding of `kind` with that rule label exists.
    /// `None`: no finding of `kind` at all.
    fn expect(kind: FindingKind, text: &str, rule: Option<&str>) {
        let found: Vec<Finding> = check(text, &PEOPLE)
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

    /// One `#[test]` per case, so a failure names the exact example.
    macro_rules! cases {
        ($kind:expr; $($name:ident: $text:expr => $rule:expr;)+) => {$(
            #[test]
            fn $name() {
                expect($kind, $text, $rule);
            }
        )+};
    }

    // --- rule data ---------------------------------------------------------

    #[test]
    fn bundled_rule_file_parses() {
        let set = parse_rules(RULES_SRC).expect("rule file parses");
        assert!(set.rules.len() >= 25);
        assert!(set.failure_verb.is_some());
        assert!(set.allow.is_some());
        assert!(set.system.contains_word("deploy"));
        assert!(set.person.contains_word("engineer"));
        assert!(set.negation.contains_word("wasn't"));
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let src = "# a comment\n\n   # indented comment\n\t\nsloppy\talways\tsloppy\tBe kind.\n# x\talways\tx\tcommented-out rule\n@system\tdeploy, job\n";
        let set = parse_rules(src).expect("parses");
        assert_eq!(set.rules.len(), 1);
        assert_eq!(set.rules[0].label, "sloppy");
        assert_eq!(set.rules[0].mode, Mode::Always);
        assert!(set.system.contains_word("job"));
    }

    #[test]
    fn malformed_rule_lines_are_reported() {
        assert!(parse_rules("only two\tfields\n").is_err());
        assert!(parse_rules("x\tsometimes\tx\tmsg\n").is_err());
        assert!(parse_rules("x\talways\t(unclosed\tmsg\n").is_err());
        assert!(parse_rules("@nonsense\ta, b\n").is_err());
    }

    #[test]
    fn phrase_translation_handles_spaces_and_apostrophes() {
        assert_eq!(
            phrase_to_regex("didn't bother [a ]"),
            r"didn['’]t\s+bother\s+[a ]"
        );
        expect(
            FindingKind::Blame,
            "He didn’t bother.",
            Some("didn't bother"),
        );
    }

    // --- blame: always-on phrases ------------------------------------------

    cases! { FindingKind::Blame;
        human_error: "It was human error." => Some("human error");
        human_error_wrapped: "It was human\nerror." => Some("human error");
        user_error: "Classic user error." => Some("user error");
        pebkac: "Total PEBKAC." => Some("PEBKAC");
        careless: "A careless change." => Some("careless");
        carelessly: "He carelessly ran it." => Some("careless");
        negligent: "This was negligent." => Some("negligent");
        negligence: "Gross negligence." => Some("negligent");
        forgot_to: "Ops forgot to renew it." => Some("forgot to");
        mistake_by: "A mistake by the DBA." => Some("mistake by");
        didnt_bother: "They didn't bother to look." => Some("didn't bother");
        sloppy: "Sloppy review." => Some("sloppy");
        incompetent: "An incompetent fix." => Some("incompetent");
        lazy: "A lazy rollback." => Some("lazy");
        oversight_by: "An oversight by QA." => Some("oversight by");
        dropped_the_ball: "Someone dropped\n  the ball." => Some("dropped the ball");
        blame_word: "Whom do we blame?" => Some("blame");
        their_fault: "It was their fault." => Some("their fault");
        his_fault: "It was his fault." => Some("fault");
        screwed_up_person: "I messed up the config." => Some("screwed up");
    }

    cases! { FindingKind::Blame;
        blameless_word: "This is a blameless post-mortem." => None;
        no_blame_review: "We run a no-blame review." => None;
        git_blame: "I ran git blame on the file." => None;
        lazy_loading: "The page uses lazy loading." => None;
        fault_tolerance: "The cluster is fault tolerant; we ran fault injection." => None;
        segfault: "A segmentation fault in the worker." => None;
        hardware_fault: "The disk reported a hardware fault." => None;
        blame_in_inline_code: "Run `git log --blame` and `careless()`." => None;
    }

    // --- blame: subject-sensitive rules -------------------------------------

    cases! { FindingKind::Blame;
        deploy_failed_to_start: "The deploy failed to start." => None;
        health_check_failed_to_detect: "the health check failed to detect the stale cache" => None;
        job_failed_to_run: "The job failed to run at 02:00." => None;
        cache_should_have_been: "The cache should have been invalidated by the TTL." => None;
        our_alerting_should_have: "Our alerting should have paged within 5 minutes." => None;
        planned_rollback_failed: "The rollback we had planned failed to complete." => None;
        plural_system_subject: "Checks failed to catch the regression." => None;
        unknown_subject: "Postgres failed to start." => None;
        it_subject: "After the restart, it failed to reconnect." => None;
        requests_failed: "Requests failed to complete within the 30s timeout." => None;
        migration_messed_up: "The migration messed up the indexes." => None;
        vendor_at_fault: "The vendor was at fault." => None;
        root_cause_system: "The root cause was a missing index." => None;
        caused_by_config: "The outage was caused by a bad config." => None;
        should_have_possession: "We should have a runbook for this." => None;
        log_line: "Failed to connect to database." => None;
        heading_ends_sentence: "## Engineer notes\nFailed to connect on retry." => None;
        monitor_didnt_check: "The monitor didn't check the replica." => None;
        page_to_the_oncall: "The page to the on-call failed to send." => None;
        script_should_have_retried: "The script should have retried but didn't." => None;
    }

    cases! { FindingKind::Blame;
        engineer_failed_to: "The engineer failed to check the dashboard." => Some("failed to");
        he_should_have: "He should have tested it." => Some("should have");
        she_should_ve: "She should've known." => Some("should've");
        they_shouldnt_have: "They shouldn't have run it in production." => Some("shouldn't have");
        oncall_engineer: "The on-call engineer failed to escalate." => Some("failed to");
        someone_should_have: "Someone should have noticed." => Some("should have");
        we_failed_to: "We failed to communicate the change." => Some("failed to");
        relative_clause: "The engineer who restarted the job failed to check the logs." => Some("failed to");
        elided_subject: "He restarted the job and then failed to verify it." => Some("failed to");
        after_comma: "After the deploy, he failed to check the logs." => Some("failed to");
        person_right_before: "When the alert fired the on-call failed to respond." => Some("failed to");
        his_failure_to: "His failure to escalate delayed recovery." => Some("failure to");
        operator_ignored: "The operator ignored the warning." => Some("missed");
        reviewer_didnt_check: "The reviewer didn't check the diff." => Some("didn't check");
        root_cause_person: "The root cause was the new intern." => Some("root cause was <person>");
        developer_at_fault: "The developer was at fault." => Some("at fault");
        curly_apostrophe: "He should’ve tested it." => Some("should've");
        after_heading: "## Timeline\nThe engineer failed to page." => Some("failed to");
        list_item: "- 14:03 — the on-call failed to ack the page" => Some("failed to");
    }

    // --- blame: known user names --------------------------------------------

    cases! { FindingKind::Blame;
        bob_broke: "Bob broke the build." => Some("person as subject");
        ada_forgot: "Ada forgot to renew the certificate." => Some("person as subject");
        bobs_change_caused: "Bob's change caused the outage." => Some("person as subject");
        bob_pushed_bad: "Bob pushed a bad config." => Some("person as subject");
        full_name_deleted: "Ada Lovelace accidentally deleted the bucket." => Some("person as subject");
        bobs_fault: "It was Bob's fault." => Some("person as subject");
        name_after_adverb: "Then Ada failed to page the team." => Some("person as subject");
        root_cause_was_bob: "The root cause was Bob." => Some("root cause was <person>");
        caused_by_bob: "The outage was caused by Bob's change." => Some("caused by <person>");
    }

    cases! { FindingKind::Blame;
        bob_noticed: "Bob noticed the deploy broke." => None;
        bob_fixed_what_broke: "Bob fixed what broke." => None;
        bob_rolled_back: "Bob rolled back the deploy that broke checkout." => None;
        thanks_to_ada: "Thanks to Ada, the failover worked." => None;
        lowercase_is_not_a_name: "bob broke nothing." => None;
        longer_name: "Bobby broke the build." => None;
        ada_led: "Ada led the response and restored service." => None;
        not_bobs_fault: "It was not Bob's fault." => None;
        name_in_code_block: "```\nBob broke it\n```" => None;
    }

    #[test]
    fn unknown_names_are_not_person_subjects() {
        assert!(check_language("Ada failed to page anyone.", &[]).is_empty());
        let f = check_language("Ada failed to page anyone.", &["Ada"]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, "person as subject");
        assert_eq!(f[0].excerpt, "Ada failed");
        assert!(f[0].message.contains("Ada"));
    }

    #[test]
    fn blame_inside_code_is_skipped_but_secrets_are_not() {
        let text = "Log:\n```\nERROR human error: he failed to connect\ntoken ghp_abcdefghijklmnopqrstuvwxyz0123456789\n```\nAnd `careless` in inline code.";
        let f = check(text, &[]);
        assert!(f.iter().all(|f| f.kind != FindingKind::Blame), "{f:?}");
        assert!(f.iter().any(|f| f.rule == "GitHub token"));
    }

    // --- secrets -----------------------------------------------------------

    cases! { FindingKind::Secret;
        aws_access_key_id: "key AKIAIOSFODNN7EXAMPLE here" => Some("AWS access key ID");
        aws_secret_key: "AWS_SECRET_ACCESS_KEY=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" => Some("AWS secret key");
        github_classic: "ghp_abcdefghijklmnopqrstuvwxyz0123456789" => Some("GitHub token");
        github_fine_grained: "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv" => Some("GitHub token");
        slack_token: "xoxb-1234567890-abcdefghij" => Some("Slack token");
        slack_webhook: "https://hooks.slack.com/services/T0000/B0000/XXXXabcd1234" => Some("Slack webhook URL");
        stripe_live: "sk_live_4eC39HqLyjWDarjtT1zdp7dc" => Some("Stripe key");
        google_api_key: "AIzaSyA1234567890abcdefghijklmnopqrstuv" => Some("Google API key");
        jwt: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U" => Some("JWT");
        authorization_header: "Authorization: Bearer abc123def456" => Some("Authorization header");
        basic_auth_header: "Authorization: Basic dXNlcjpwYXNzd29yZA==" => Some("Authorization header");
        bearer_token: "curl -H 'x: y' bearer 9f8e7d6c5b4a39281706aBcD" => Some("bearer token");
        private_key_header: "-----BEGIN OPENSSH PRIVATE KEY-----" => Some("private key");
        password_in_url: "postgres://admin:s3cr3tPa55@db.internal:5432/app" => Some("password in URL");
        password_assignment: "password=hunter2x" => Some("password");
        yaml_password: "db_passwd: Tr0ub4dor&3" => Some("password");
        api_key_assignment: "api_key = 'abcd1234efgh5678'" => Some("API key");
        json_token: "\"token\": \"q8Zr0vT1mNq2\"" => Some("token");
        keyed_random_string: "signing key 7fK2pQ9xLm3Zr8Tv1Wb6Nc4Hs5Jd0Ya2Ue in the log" => Some("high-entropy string");
    }

    cases! { FindingKind::Secret;
        git_sha: "Fixed in commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39." => None;
        git_sha_after_key_word: "The API key was added in 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39." => None;
        uuid: "Request id 123e4567-e89b-12d3-a456-426614174000 failed." => None;
        bearer_placeholder: "Authorization: Bearer <token>" => None;
        bearer_env_var: "Authorization: Bearer $TOKEN" => None;
        redacted_password: "password=<redacted>" => None;
        prose_after_colon: "password: rotated immediately" => None;
        code_reference: "password = os.environ[\"DB_PASSWORD\"]" => None;
        boolean_value: "secret: true" => None;
        max_tokens: "max_tokens: 4096" => None;
        bearer_in_prose: "The bearer token expired." => None;
        url_without_password: "postgres://app@db.internal/app has no password." => None;
        path_segment: "See /var/lib/docker/overlay2/Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z/merged" => None;
        camel_case_name: "Component MyServiceHealthCheckControllerV2Impl restarted." => None;
        sri_hash: "integrity sha512-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6hIj9kLm2nOp5q==" => None;
        random_id_without_context: "Dashboard UID Zq8Rk2LmPw7XvB3nTc6YhJ1sD4fG9aE0." => None;
    }

    #[test]
    fn private_key_block_is_one_finding() {
        let text = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234\n-----END RSA PRIVATE KEY-----\ny";
        let f = check_sensitive(text);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, "private key");
        assert!(text[f[0].start..f[0].end].ends_with("-----END RSA PRIVATE KEY-----"));
    }

    #[test]
    fn secret_excerpts_are_masked() {
        let token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        let f = check_sensitive(&format!("token {token}"));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].excerpt, "ghp_••••");
        assert_eq!(
            f[0].message,
            "Looks like a GitHub token: remove it or replace it with <redacted> before publishing (and rotate it if it was real)."
        );
        let text = "AKIAIOSFODNN7EXAMPLE password=hunter2x postgres://u:pa55word9@h/x \
                    eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9";
        let found = check_sensitive(text);
        assert_eq!(found.len(), 4, "{found:?}");
        for f in found {
            assert_eq!(f.kind, FindingKind::Secret);
            let raw = &text[f.start..f.end];
            assert!(!f.excerpt.contains(raw), "{f:?}");
            assert!(f.excerpt.ends_with("••••"));
            assert!(f.excerpt.chars().count() <= 8);
        }
        assert_eq!(mask("hunter2x"), "hu••••");
    }

    // --- personal data -----------------------------------------------------

    cases! { FindingKind::PersonalData;
        email: "Mail ada.lovelace@acme.io now" => Some("email address");
        private_ipv4: "host 10.12.0.7 was down" => Some("IP address");
        public_ipv4_with_port: "peer 8.8.8.8:53 timed out" => Some("IP address");
        ipv6: "addr 2a01:4f8:c17:1a2b::1 lost" => Some("IP address");
        ipv6_bracketed: "Connect to [2001:4860:4860::8888]:443 failed." => Some("IP address");
        phone_international: "Call +44 20 7946 0958 now" => Some("phone number");
        phone_us: "Call (555) 123-4567 now" => Some("phone number");
        phone_us_dashes: "or 415-555-0132." => Some("phone number");
        phone_fr: "Call 06 12 34 56 78 now" => Some("phone number");
        card_luhn: "card 4111 1111 1111 1111 used" => Some("payment card number");
    }

    cases! { FindingKind::PersonalData;
        version_numbers: "Upgraded to version 1.2.3 and then 10.0.0." => None;
        four_part_version: "Released v10.0.0.1 today." => None;
        date_and_time: "At 2026-11-25 14:03 the alarm fired." => None;
        counts_and_status: "We served 10,000 requests, many returned 503." => None;
        durations: "Latency rose to 1500 ms for 45 minutes." => None;
        loopback_and_any: "Bound to 127.0.0.1 and 0.0.0.0 only." => None;
        netmask_and_documentation: "Netmask 255.255.255.0 on 192.0.2.10." => None;
        reserved_email_and_git_remote: "Mail alice@example.com or git@github.com:org/repo.git." => None;
        card_failing_luhn: "Card-like 4111 1111 1111 1112 fails Luhn." => None;
        time_and_mac: "The timestamp 14:03:22 and MAC 00:1a:2b:3c:4d:5e." => None;
        rust_paths: "Rust path std::sync::LazyLock and a::b." => None;
        thousands_with_spaces: "We moved 100 000 000 rows." => None;
        ipv6_loopback_and_docs: "Loopback ::1 and docs 2001:db8::42." => None;
        european_date: "On 25.11.2026 at 14:03:05 we saw p99=1.2s." => None;
        nanosecond_timestamp: "Run ID 1732546980123456789 took 3.2s." => None;
    }

    #[test]
    fn personal_data_excerpts_are_exact_and_cards_masked() {
        let text = "Mail ada@acme.io, call +1 415 555 0132, host 10.0.0.7, card 4242424242424242.";
        let f = check_sensitive(text);
        let got: Vec<(&str, &str)> = f
            .iter()
            .map(|f| (f.rule.as_str(), f.excerpt.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("email address", "ada@acme.io"),
                ("phone number", "+1 415 555 0132"),
                ("IP address", "10.0.0.7"),
                ("payment card number", "4242••••"),
            ]
        );
    }

    // --- positions, ordering, de-duplication -------------------------------

    #[test]
    fn line_and_column_are_one_based_chars() {
        let text = "# Summary\nAll good — really.\nThe ops — sigh — human error.\n";
        let f = check(text, &[]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].line, f[0].column), (3, 18));
        assert_eq!(&text[f[0].start..f[0].end], "human error");
        assert_eq!(f[0].excerpt, "human error");
    }

    #[test]
    fn findings_are_sorted_and_never_overlap() {
        let text = "Bob failed to rotate ghp_abcdefghijklmnopqrstuvwxyz0123456789; mail bob@acme.io. It was human error and careless.";
        let f = check(text, &["Bob"]);
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
        assert!(check("", &[]).is_empty());
        let f = check(
            "Ünïcödé — 日本語 — он\u{a0}failed to ÄÖÜ\u{a0}7fK2pQ9xLm3Zr8Tv1Wb6Nc4Hs5Jd0Ya2Ue",
            &["Zoë"],
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn columns_on_one_long_line() {
        let text = "é 10.0.0.1 é 10.0.0.2 é 10.0.0.3";
        let cols: Vec<usize> = check(text, &[]).iter().map(|f| f.column).collect();
        assert_eq!(cols, [3, 14, 25]);
    }

    #[test]
    fn single_long_line_stays_fast() {
        let text = "key 7fK2pQ9xLm3Zr8Tv1Wb6Nc4Hs5Jd0Ya2Ue 10.1.2.3 ".repeat(4_000);
        let started = std::time::Instant::now();
        assert_eq!(check(&text, &[]).len(), 8_000);
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }

    #[test]
    fn large_input_is_fast_enough() {
        let para = "The deploy failed to start at 14:03 on 10.0.0.1 because the cache should have been invalidated. \
                    He should have tested it; ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked. Bob broke the build.\n\n";
        let text = para.repeat(200_000 / para.len());
        let started = std::time::Instant::now();
        let f = check(&text, &["Bob", "Ada Lovelace"]);
        assert_eq!(f.len(), 4 * (200_000 / para.len()));
        // Generous bound: debug builds on a slow CI box.
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }
}
