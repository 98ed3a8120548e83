//! The rules every new password meets, wherever it is set (setup link, new user on the page
//! or the command line, change, reset link, `hindsight user set-password`).

use std::collections::HashSet;
use std::sync::LazyLock;

/// Shorter passwords are refused. Twelve characters of anything is beyond online guessing and
/// most offline guessing of an Argon2id hash.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Longer passwords are refused before they reach Argon2, so a megabyte of "password" costs
/// nothing but the length check. Counted in bytes: what Argon2 actually hashes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Common passwords, refused whatever their case.
///
/// Source: `django/contrib/auth/common-passwords.txt.gz` from the Django 5.2.19 wheel on PyPI
/// (20,000 passwords most often seen in breaches, lowercased and deduplicated, compiled by
/// Royce Williams), decompressed and unchanged. License: Django's BSD 3-clause license, kept
/// next to the list in `common_passwords.LICENSE`.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// Whether the password is on the shipped list of common passwords (case-insensitively).
pub fn is_common(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_lowercase().as_str())
}

/// Checks a new password against the rules; the message names the rule it breaks and never
/// repeats the password.
pub fn check(password: &str) -> Result<(), String> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "must be at most {MAX_PASSWORD_BYTES} bytes (about as many characters)"
        ));
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!("must be at least {MIN_PASSWORD_LEN} characters"));
    }
    if password.trim().is_empty() {
        return Err("must not be only spaces".to_owned());
    }
    if is_common(password) {
        return Err(
            "is on the list of commonly used passwords that attackers try first; choose another"
                .to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_shipped_and_lowercase() {
        let n = COMMON_PASSWORDS.len();
        assert!((10_000..=100_000).contains(&n), "{n} entries");
        assert!(
            COMMON_PASSWORDS
                .iter()
                .all(|p| p.to_lowercase().as_str() == *p),
            "entries are compared lowercased, so they must be stored lowercased"
        );
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for common in ["1qaz2wsx3edc", "1QAZ2WSX3EDC", "Q1W2E3R4T5Y6"] {
            let err = check(common).expect_err(common);
            assert!(err.contains("commonly used"), "{err}");
            assert!(!err.to_lowercase().contains(&common.to_lowercase()));
        }
        assert!(is_common("PassWord"));
        assert!(check("correct horse battery").is_ok());
    }

    #[test]
    fn length_is_bounded_both_ways_before_hashing() {
        assert!(check("elevenchars").is_err_and(|e| e.contains("at least 12")));
        assert!(check("twelve chars").is_ok());
        assert!(check(&"x".repeat(MAX_PASSWORD_BYTES)).is_ok());
        assert!(check(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err_and(|e| e.contains("1024")));
        // 300 four-byte characters are 1200 bytes: over the limit although fewer characters.
        assert!(check(&"🔑".repeat(300)).is_err());
        assert!(check("            ").is_err_and(|e| e.contains("spaces")));
    }
}
