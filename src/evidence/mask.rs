//! Credentials and personal data found in chat text, masked before anything is stored:
//! Slack and AWS keys, bearer tokens, private keys, passwords in URLs, e-mail addresses and
//! phone numbers. The counts tell the importer what was hidden.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

/// What was masked, by kind (`e-mail address` → 3).
pub type Counts = BTreeMap<&'static str, usize>;

struct Rule {
    kind: &'static str,
    re: Regex,
    /// What replaces a match (`$1` keeps a captured part, e.g. the URL's user name).
    with: &'static str,
}

#[allow(clippy::expect_used)]
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rule = |kind, pattern: &str, with| Rule {
        kind,
        re: Regex::new(pattern).expect("the masking patterns are valid"),
        with,
    };
    vec![
        rule(
            "private key",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z ]*PRIVATE KEY-----|\z)",
            "[private key masked]",
        ),
        rule(
            "password in a URL",
            r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@",
            "${1}[masked]@",
        ),
        rule(
            "Slack token",
            r"\bxox[abposre]-[A-Za-z0-9-]{8,}",
            "[Slack token masked]",
        ),
        rule(
            "AWS access key",
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
            "[AWS key masked]",
        ),
        rule(
            "bearer token",
            r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{12,}=*",
            "${1}[token masked]",
        ),
        rule(
            "password",
            r"(?i)\b((?:password|passwd|pwd|secret|api[_-]?key)\s*[:=]\s*)[^\s,;]+",
            "${1}[masked]",
        ),
        rule(
            "e-mail address",
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
            "[e-mail masked]",
        ),
        rule(
            "phone number",
            r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\b\d{2,4})[\s.-]\d{3,4}[\s.-]\d{3,4}\b",
            "[phone masked]",
        ),
    ]
});

/// `text` with every credential and piece of personal data replaced, counting each kind.
pub fn mask(text: &str, counts: &mut Counts) -> String {
    let mut out = text.to_owned();
    for rule in RULES.iter() {
        let n = rule.re.find_iter(&out).count();
        if n > 0 {
            *counts.entry(rule.kind).or_default() += n;
            out = rule.re.replace_all(&out, rule.with).into_owned();
        }
    }
    out
}

/// "2 e-mail addresses, 1 Slack token" for the warning after an import.
pub fn describe(counts: &Counts) -> String {
    counts
        .iter()
        .map(|(kind, n)| format!("{n} × {kind}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_personal_data_are_masked_and_counted() {
        let mut counts = Counts::new();
        let text = "token xoxb-1234567890-abcdefghij and AKIAIOSFODNN7EXAMPLE, \
            curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc' \
            postgres://app:s3cr3t@db.internal:5432/x mail ana@example.com \
            or call +1 415 555 0100; password=hunter2\n\
            -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- done";
        let out = mask(text, &mut counts);
        for secret in [
            "xoxb-1234567890",
            "AKIAIOSFODNN7EXAMPLE",
            "eyJhbGci",
            "s3cr3t",
            "ana@example.com",
            "555 0100",
            "hunter2",
            "MIIE",
        ] {
            assert!(!out.contains(secret), "{secret} left in {out}");
        }
        assert!(out.contains("postgres://app:[masked]@db.internal"));
        assert_eq!(counts.get("e-mail address"), Some(&1));
        assert_eq!(counts.get("Slack token"), Some(&1));
        assert_eq!(counts.values().sum::<usize>(), 8, "{counts:?}");
        // Ordinary incident chatter is left alone: times, versions, error rates, ids.
        let mut none = Counts::new();
        let calm = "p99 at 14:02 is 2300 ms, v1.24.3 rolled back, 5xx 12.5%, PR #4821";
        assert_eq!(mask(calm, &mut none), calm);
        assert!(none.is_empty(), "{none:?}");
    }
}
