//! Personal data: email addresses, IPv4 and IPv6 addresses, phone numbers and payment card
//! numbers (Luhn), each with a validator that lets through what careful writers substitute
//! (reserved domains, documentation address ranges) and what only looks similar (versions,
//! dates, timestamps, counts). Card numbers are masked in the excerpt.

use regex::Regex;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use super::{Accept, Candidate, FindingKind, char_after, char_before, re};

/// One personal-data detector: a pattern, a validator of each match, whether the excerpt
/// is masked (card numbers) and the message for the writer.
struct PersonalRule {
    label: &'static str,
    regex: Regex,
    mask: bool,
    accept: Accept,
    message: &'static str,
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

static PERSONAL_RULES: LazyLock<Vec<PersonalRule>> = LazyLock::new(|| {
    let rule =
        |label: &'static str, pattern: &str, mask: bool, accept: Accept, message: &'static str| {
            PersonalRule {
                label,
                regex: re(pattern),
                mask,
                accept,
                message,
            }
        };
    // Order matters only for ties on the same span: specific before generic.
    vec![
        rule(
            "email address",
            r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}\b",
            false,
            email_ok,
            "Looks like an email address: replace it with a role (e.g. \"the on-call engineer\") before publishing.",
        ),
        rule(
            "IP address",
            r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
            false,
            ipv4_ok,
            "Looks like an IP address: replace it with a host role or a documentation address (192.0.2.x) before publishing.",
        ),
        rule(
            "IP address",
            r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}",
            false,
            ipv6_ok,
            "Looks like an IPv6 address: replace it with a host role or a documentation address (2001:db8::) before publishing.",
        ),
        rule(
            "payment card number",
            r"\b\d(?:[ -]?\d){12,18}\b",
            true,
            card_ok,
            "Looks like a payment card number: remove it before publishing.",
        ),
        rule(
            "phone number",
            r"\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}",
            false,
            phone_intl_ok,
            "Looks like a phone number: remove it or replace it with a role before publishing.",
        ),
        rule(
            "phone number",
            r"(?:\(\d{2,4}\)|\b\d{2,4})[ .-]\d{3,4}[ .-]\d{3,5}\b",
            false,
            phone_national_ok,
            "Looks like a phone number: remove it or replace it with a role before publishing.",
        ),
        rule(
            "phone number",
            r"\b0[1-9](?:[ .-]\d{2}){4}\b",
            false,
            phone_national_ok,
            "Looks like a phone number: remove it or replace it with a role before publishing.",
        ),
    ]
});

/// Personal-data candidates in `text`.
pub(super) fn candidates(text: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (order, rule) in PERSONAL_RULES.iter().enumerate() {
        for m in rule.regex.find_iter(text) {
            if !(rule.accept)(text, m.start(), m.end()) {
                continue;
            }
            out.push(Candidate {
                kind: FindingKind::PersonalData,
                rule: rule.label.to_string(),
                start: m.start(),
                end: m.end(),
                message: rule.message.to_string(),
                mask: rule.mask,
                order,
            });
        }
    }
    out
}

// ------------------------------------------------------------------ tests

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writing::check_sensitive;

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
}
