//! What every page's layout needs: the signed-in user, a one-time flash message, and times
//! shown in the configured time zone.

use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::auth::User;

pub const FLASH_COOKIE: &str = "hindsight_flash";

/// A one-time message shown on the next page after a redirect (post/redirect/get).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `ok`, `warn` or `error`; becomes a CSS class.
    pub kind: String,
    pub message: String,
}

impl Flash {
    /// Reads the flash cookie, if any.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let raw = cookie(headers, FLASH_COOKIE)?;
        let decoded = percent_decode(raw);
        let (kind, message) = decoded.split_once(':')?;
        let kind = match kind {
            "ok" | "warn" | "error" => kind.to_owned(),
            _ => return None,
        };
        Some(Self {
            kind,
            message: message.chars().take(500).collect(),
        })
    }
}

/// 303 See Other to `location`, carrying a flash message for the page it lands on.
pub fn redirect_with_flash(location: &str, kind: &str, message: &str) -> Response {
    let value = percent_encode(&format!("{kind}:{message}"));
    let cookie = format!("{FLASH_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60");
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, location.to_owned()), (SET_COOKIE, cookie)],
    )
        .into_response()
}

/// 303 See Other without a message.
pub fn redirect(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, location.to_owned())]).into_response()
}

/// The value of cookie `name` from the request's Cookie headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~ ".contains(&b) {
            out.push(if b == b' ' { '+' } else { b as char });
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Layout context handed to every page template.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub user: Option<User>,
    pub flash: Option<Flash>,
    pub tz: Tz,
    /// Path of the current page, to mark the active navigation entry.
    pub path: String,
    /// Open action items owned by the signed-in user (the header's count).
    pub my_items: i64,
    /// Unread messages in the signed-in user's inbox (the header's badge).
    pub inbox_unread: i64,
    /// Free space on the database's disk is below `HINDSIGHT_DISK_WARN_MB` (shown to admins).
    pub disk_warning: Option<String>,
}

impl Chrome {
    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(User::is_admin)
    }

    /// The signed-in user's id ("" on public pages).
    pub fn user_id(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.id.as_str())
    }

    pub fn can_write(&self) -> bool {
        self.user.as_ref().is_some_and(User::can_write)
    }

    /// True when the current page is under `prefix` (navigation highlight).
    pub fn active(&self, prefix: &str) -> bool {
        self.path == prefix || self.path.starts_with(&format!("{prefix}/"))
    }

    /// `2026-11-25 14:30 CET (+01:00)`: local time with its zone and offset.
    pub fn time(&self, at: &DateTime<Utc>) -> String {
        crate::time::format_time(self.tz, *at)
    }

    pub fn time_opt(&self, at: &Option<DateTime<Utc>>) -> String {
        at.map_or_else(|| "—".to_owned(), |t| crate::time::format_time(self.tz, t))
    }

    /// Value for an `<input type="datetime-local" step="1">` in the configured zone, to the
    /// second: saving a form unchanged keeps every time as it was (a value cut to the minute
    /// would move an entry before others of the same minute).
    pub fn input_time(&self, at: &Option<DateTime<Utc>>) -> String {
        at.map(|t| {
            t.with_timezone(&self.tz)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
    }

    /// Short name of the configured zone, for form hints.
    pub fn tz_name(&self) -> String {
        self.tz.name().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_survives_the_cookie_round_trip() {
        let response = redirect_with_flash("/x", "ok", "Incident INC-4 «déclaré» & saved; 100%");
        let set = response
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("cookie set");
        let value = set
            .split(';')
            .next()
            .expect("pair")
            .trim_start_matches("hindsight_flash=");
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("a=b; {FLASH_COOKIE}={value}")
                .parse()
                .expect("header"),
        );
        let flash = Flash::from_headers(&headers).expect("flash read back");
        assert_eq!(flash.kind, "ok");
        assert_eq!(flash.message, "Incident INC-4 «déclaré» & saved; 100%");
    }

    #[test]
    fn forged_flash_kinds_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("{FLASH_COOKIE}=evil%22class:hi")
                .parse()
                .expect("header"),
        );
        assert_eq!(Flash::from_headers(&headers), None);
    }
}
