//! Blameless language: the rule data (`blameless_rules.txt`, compiled in and parsed once)
//! and its parser, the tokenizer, how a clause's subject (or a phrase's object) is resolved
//! to a person or a system, and the candidates for rules and for known names as the subject
//! of a failure. Skips Markdown code.

use regex::Regex;
use std::sync::LazyLock;

use super::code_spans::{code_spans, within};
use super::{Candidate, FindingKind, People};

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

    /// Characters in the longest one-word entry.
    fn longest_word(&self) -> usize {
        self.0
            .iter()
            .filter(|e| e.len() == 1)
            .map(|e| e[0].chars().count())
            .max()
            .unwrap_or(0)
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

// ------------------------------------------------------------------ names and tokens

impl People {
    /// Number of tokens at `toks[i..]` that spell a known name (longest full name first).
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

// ------------------------------------------------------------------ candidates

/// Blame candidates in `text`: the rules, then known names as the subject of a failure.
pub(super) fn candidates(text: &str, people: &People) -> Vec<Candidate> {
    let rules = &*RULES;
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
                Mode::Subject => subject_before(text, m.start(), rules, people) == Subject::Person,
                Mode::Object => object_after(text, m.end(), rules, people) == Subject::Person,
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
///
/// Reads the word before the name backwards for at most as many characters as the longest
/// negation word: a longer word is no negation, and stopping there keeps the check constant
/// per name. (It once
/// scanned to the word's start, so "Maya-Maya-…", one hyphenated word holding thousands of
/// names, cost the whole prefix for every name: quadratic in the text.)
fn negated(text: &str, name_start: usize, rules: &RuleSet) -> bool {
    // Only the blanks between this name and the previous word: linear over all names.
    let before = text[..name_start].trim_end();
    let longest = rules.negation.longest_word();
    let mut word_start = before.len();
    for (read, (i, c)) in before.char_indices().rev().enumerate() {
        if !is_word_char(c) {
            break;
        }
        if read >= longest {
            return false;
        }
        word_start = i;
    }
    word_start < before.len()
        && rules
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

// ------------------------------------------------------------------ tests

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writing::check_language;
    use crate::writing::test_support::expect;

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
        assert!(check_language("Ada failed to page anyone.", &People::default()).is_empty());
        let f = check_language("Ada failed to page anyone.", &People::new(["Ada"]));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, "person as subject");
        assert_eq!(f[0].excerpt, "Ada failed");
        assert!(f[0].message.contains("Ada"));
    }
}
