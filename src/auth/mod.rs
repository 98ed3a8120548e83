//! Accounts and access: roles, passwords, sessions and API tokens (types and rules; no axum).

pub mod db;
pub mod sessions;
pub mod web;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{AppError, FieldErrors};

choice! {
    /// What a user may do. Ordered: each role can do everything the previous one can.
    pub enum Role, "role" {
        Viewer = "viewer",
        Responder = "responder",
        Admin = "admin",
    }
}

impl Role {
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Viewer => "reads everything, changes nothing",
            Self::Responder => {
                "declares and edits incidents, timelines, post-mortems, action items"
            }
            Self::Admin => "also manages users, tokens, services, categories and templates",
        }
    }
}

choice! {
    /// What an API token may be used for.
    pub enum Scope, "scope" {
        /// GET endpoints.
        Read = "read",
        /// GET and changes (bounded by the owner's role).
        Write = "write",
        /// Pushing metric events and alert webhooks only.
        Ingest = "ingest",
    }
}

/// A signed-in person (from a session) or the owner of an API token.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl User {
    /// Fails with 403 unless the user has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "This needs the {role} role; you are a {}.",
                self.role
            )))
        }
    }

    pub fn can_write(&self) -> bool {
        self.role >= Role::Responder
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A new random secret with `bytes` bytes of entropy, hex-encoded, behind a readable prefix.
pub fn random_secret(prefix: &str, bytes: usize) -> Result<String, AppError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| AppError::Internal(format!("no randomness available: {e}")))?;
    Ok(format!("{prefix}{}", hex(&buf)))
}

/// SHA-256 of a secret, hex-encoded: what we store instead of session ids and tokens. A fast
/// hash is right here because the secrets are long random strings, not passwords.
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Argon2id hash (OWASP minimum parameters); slow on purpose, so call it off the async runtime.
pub fn hash_password(password: &str) -> String {
    password_auth::generate_hash(password)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    password_auth::verify_password(password, hash).is_ok()
}

/// Validated input for a new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
}

pub const MIN_PASSWORD_LEN: usize = 10;

impl NewUser {
    pub fn parse(email: &str, name: &str, role: &str, password: &str) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let email = email.trim().to_owned();
        if let Err(msg) = validate_email(&email) {
            errors.insert("email".into(), msg.into());
        }
        let name = name.trim().to_owned();
        if name.is_empty() {
            errors.insert("name".into(), "must not be empty".into());
        } else if name.chars().count() > 100 {
            errors.insert("name".into(), "must be at most 100 characters".into());
        }
        let role_parsed = Role::parse(role.trim());
        if role_parsed.is_none() {
            errors.insert("role".into(), Role::field_error());
        }
        if let Err(msg) = validate_password(password) {
            errors.insert("password".into(), msg);
        }
        match role_parsed {
            Some(role) if errors.is_empty() => Ok(Self {
                email,
                name,
                role,
                password: password.to_owned(),
            }),
            _ => Err(AppError::fields(errors)),
        }
    }
}

pub fn validate_email(email: &str) -> Result<(), &'static str> {
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(())
    } else {
        Err("must be an email address like name@example.com")
    }
}

pub fn validate_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Err(format!("must be at least {MIN_PASSWORD_LEN} characters"))
    } else if len > 256 {
        Err("must be at most 256 characters".to_owned())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Viewer < Role::Responder && Role::Responder < Role::Admin);
        let viewer = User {
            id: "u".into(),
            email: "v@example.com".into(),
            name: "V".into(),
            role: Role::Viewer,
        };
        assert!(viewer.require(Role::Viewer).is_ok());
        assert!(viewer.require(Role::Responder).is_err());
    }

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = random_secret("hs_", 32).expect("randomness");
        let b = random_secret("hs_", 32).expect("randomness");
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64, "256 bits of entropy, hex-encoded");
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), a);
    }

    #[test]
    fn new_user_input_names_every_bad_field() {
        let err = NewUser::parse("not-an-email", " ", "root", "short").expect_err("invalid");
        let AppError::Validation { fields, .. } = err else {
            panic!("expected a validation error");
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["email", "name", "password", "role"]);
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse battery");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(!verify_password("anything", "!disabled"));
    }
}
