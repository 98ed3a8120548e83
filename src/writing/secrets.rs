//! Secrets: credentials by shape (cloud, chat and payment provider keys, tokens, JWTs,
//! private key blocks), by context (`password=…`, `Authorization:` headers, passwords in
//! URLs), and long random-looking strings next to a credential word (entropy). Also the
//! masking of every secret excerpt, so a finding never re-displays the credential.

use regex::{Captures, Regex};
use std::sync::LazyLock;

use super::{Accept, Candidate, FindingKind, char_after, char_before, re};

/// One credential detector: a pattern (its `s` group, if any, is the secret itself; a `k`
/// group names the key of an assignment) and a validator of each match.
struct SecretRule {
    label: &'static str,
    regex: Regex,
    accept: Accept,
}

/// Shows at most the first 4 chars, and for short values only a quarter of
/// them, so the excerpt can never reconstruct the secret.
pub(super) fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    let keep = if n >= 16 { 4 } else { n / 4 };
    let mut out: String = secret.chars().take(keep).collect();
    out.push_str("••••");
    out
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

static SECRET_RULES: LazyLock<Vec<SecretRule>> = LazyLock::new(|| {
    let secret = |label: &'static str, pattern: &str, accept: Accept| SecretRule {
        label,
        regex: re(pattern),
        accept,
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

/// Secret candidates in `text`: the credential rules, then private key blocks.
pub(super) fn candidates(text: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (order, rule) in SECRET_RULES.iter().enumerate() {
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
            out.push(Candidate {
                kind: FindingKind::Secret,
                rule: label.to_string(),
                start: m.start(),
                end: m.end(),
                message: message_for(label),
                mask: true,
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
    use crate::writing::check_sensitive;

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
}
