//! Reading a Slack channel export: the zip Slack's export gives, or the channel's per-day
//! files (`YYYY-MM-DD.json`, each an array of messages) with `users.json` for names. Threads,
//! edits, bot messages and uploads are kept; joins, leaves and topic changes are not.
//! Anything malformed stops the import with the file and line (or entry) named.

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::{ChatMessage, Upload};

/// Most bytes an export may unpack to (a zip of a few MB can claim gigabytes).
pub const MAX_UNPACKED: usize = 64 * 1024 * 1024;
/// Most files in one zip.
pub const MAX_ENTRIES: usize = 5_000;

/// The files of an upload, zips unpacked (their paths kept for error messages).
pub fn unpack(uploads: Vec<Upload>) -> Result<Vec<Upload>, String> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for up in uploads {
        if up.bytes.starts_with(b"PK\x03\x04") || up.bytes.starts_with(b"PK\x05\x06") {
            for entry in unzip(&up.name, &up.bytes, &mut total)? {
                out.push(entry);
            }
        } else {
            total += up.bytes.len();
            out.push(up);
        }
        if total > MAX_UNPACKED {
            return Err(format!(
                "the export unpacks to more than {} MB",
                MAX_UNPACKED / 1024 / 1024
            ));
        }
    }
    Ok(out)
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 2)
        .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 4)
        .and_then(|s| usize::try_from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok())
}

/// The files of a zip archive (stored or deflated), read from its central directory.
fn unzip(zip_name: &str, bytes: &[u8], total: &mut usize) -> Result<Vec<Upload>, String> {
    let bad = |what: &str| format!("{zip_name}: not a readable zip archive ({what})");
    // The end-of-central-directory record is within the last 64 KiB + 22 bytes.
    let search_from = bytes.len().saturating_sub(65_557);
    let eocd = (search_from..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| bad("no central directory"))?;
    let count = u16_at(bytes, eocd + 10).ok_or_else(|| bad("truncated"))?;
    let mut at = u32_at(bytes, eocd + 16).ok_or_else(|| bad("truncated"))?;
    if count > MAX_ENTRIES {
        return Err(format!("{zip_name}: more than {MAX_ENTRIES} files"));
    }
    let mut out = Vec::new();
    for _ in 0..count {
        if !bytes
            .get(at..)
            .is_some_and(|b| b.starts_with(b"PK\x01\x02"))
        {
            return Err(bad("broken central directory"));
        }
        let field = |off| u16_at(bytes, at + off).ok_or_else(|| bad("truncated"));
        let method = field(10)?;
        let compressed = u32_at(bytes, at + 20).ok_or_else(|| bad("truncated"))?;
        let size = u32_at(bytes, at + 24).ok_or_else(|| bad("truncated"))?;
        let (name_len, extra_len, comment_len) = (field(28)?, field(30)?, field(32)?);
        let local = u32_at(bytes, at + 42).ok_or_else(|| bad("truncated"))?;
        let name = bytes
            .get(at + 46..at + 46 + name_len)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .ok_or_else(|| bad("truncated"))?;
        at += 46 + name_len + extra_len + comment_len;
        if name.ends_with('/') || name.starts_with("__MACOSX/") {
            continue;
        }
        if !bytes
            .get(local..)
            .is_some_and(|b| b.starts_with(b"PK\x03\x04"))
        {
            return Err(bad("broken local header"));
        }
        let data_at = local
            + 30
            + u16_at(bytes, local + 26).ok_or_else(|| bad("truncated"))?
            + u16_at(bytes, local + 28).ok_or_else(|| bad("truncated"))?;
        let data = bytes
            .get(data_at..data_at.saturating_add(compressed))
            .ok_or_else(|| bad("truncated file data"))?;
        if size > MAX_UNPACKED.saturating_sub(*total) {
            return Err(format!(
                "the export unpacks to more than {} MB",
                MAX_UNPACKED / 1024 / 1024
            ));
        }
        let content = match method {
            0 => data.to_vec(),
            8 => {
                let mut content = Vec::with_capacity(size.min(1 << 20));
                // Read one byte past the declared size: a file that lies about it is refused.
                flate2::read::DeflateDecoder::new(data)
                    .take(size as u64 + 1)
                    .read_to_end(&mut content)
                    .map_err(|e| format!("{zip_name}: {name}: cannot be unpacked ({e})"))?;
                if content.len() != size {
                    return Err(format!(
                        "{zip_name}: {name}: size does not match the archive"
                    ));
                }
                content
            }
            other => {
                return Err(format!(
                    "{zip_name}: {name}: compression method {other} is not supported (zip with deflate)"
                ));
            }
        };
        *total += content.len();
        out.push(Upload {
            name: format!("{zip_name}/{name}"),
            bytes: content,
        });
    }
    Ok(out)
}

/// The date of a per-day file (`general/2024-05-01.json` → 2024-05-01).
fn day_of(name: &str) -> Option<NaiveDate> {
    let base = name.rsplit('/').next()?;
    let stem = base.strip_suffix(".json")?;
    NaiveDate::parse_from_str(stem, "%Y-%m-%d").ok()
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn parse_json(name: &str, bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "{}: line {}, column {}: not valid JSON ({})",
            name,
            e.line(),
            e.column(),
            e.to_string()
                .split(" at line")
                .next()
                .unwrap_or("syntax error")
        )
    })
}

/// Names by user id from `users.json` (display name, real name, then handle).
fn users(name: &str, v: &Value) -> Result<HashMap<String, String>, String> {
    let list = v
        .as_array()
        .ok_or_else(|| format!("{name}: must be an array of users"))?;
    let mut out = HashMap::new();
    for u in list {
        let Some(id) = u.get("id").and_then(Value::as_str) else {
            continue;
        };
        let profile = u.get("profile");
        let pick = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if let Some(n) = pick(profile.and_then(|p| p.get("display_name")))
            .or_else(|| pick(u.get("real_name")))
            .or_else(|| pick(profile.and_then(|p| p.get("real_name"))))
            .or_else(|| pick(u.get("name")))
        {
            out.insert(id.to_owned(), n);
        }
    }
    Ok(out)
}

/// Slack's `ts` (`"1714557600.000200"`) as a time.
fn ts_time(ts: &str) -> Option<DateTime<Utc>> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: i64 = secs.parse().ok()?;
    let micros: u32 = format!("{frac:0<6}").get(..6)?.parse().ok()?;
    DateTime::from_timestamp(secs, micros * 1000)
}

/// Slack's markup made readable: mentions named, links shown with their label, entities
/// unescaped (the text is rendered as sanitized Markdown later, never as HTML).
pub fn readable(text: &str, names: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &after[..close];
        let (target, label) = inner.split_once('|').unwrap_or((inner, ""));
        let shown = if let Some(id) = target.strip_prefix('@') {
            let name = names.get(id).cloned().unwrap_or_else(|| {
                if label.is_empty() {
                    id.to_owned()
                } else {
                    label.to_owned()
                }
            });
            format!("@{name}")
        } else if let Some(ch) = target.strip_prefix('#') {
            format!("#{}", if label.is_empty() { ch } else { label })
        } else if let Some(special) = target.strip_prefix('!') {
            format!("@{}", special.split('^').next().unwrap_or(special))
        } else if label.is_empty() {
            target.to_owned()
        } else {
            format!("{label} ({target})")
        };
        out.push_str(&shown);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Subtypes that are not something someone said.
const SKIPPED: &[&str] = &[
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "channel_archive",
    "group_join",
    "group_leave",
    "message_deleted",
    "pinned_item",
    "reminder_add",
];

/// The messages of the per-day files between `from` and `to` (inclusive, by the file's
/// day), oldest first. An edit (`message_changed`) replaces the message it edits.
pub fn messages(
    files: &[Upload],
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    max_text: usize,
) -> Result<Vec<ChatMessage>, String> {
    let mut names = HashMap::new();
    for f in files.iter().filter(|f| base_name(&f.name) == "users.json") {
        names.extend(users(&f.name, &parse_json(&f.name, &f.bytes)?)?);
    }
    let mut days: Vec<&Upload> = files.iter().filter(|f| day_of(&f.name).is_some()).collect();
    if days.is_empty() {
        return Err(
            "no per-day message files (YYYY-MM-DD.json) in the upload: choose a channel's files or the export zip"
                .into(),
        );
    }
    days.sort_by(|a, b| a.name.cmp(&b.name));
    let mut by_ts: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<ChatMessage> = Vec::new();
    for f in days {
        let day = day_of(&f.name);
        if from.is_some_and(|d| day < Some(d)) || to.is_some_and(|d| day > Some(d)) {
            continue;
        }
        let v = parse_json(&f.name, &f.bytes)?;
        let list = v
            .as_array()
            .ok_or_else(|| format!("{}: must be an array of messages", f.name))?;
        for (i, m) in list.iter().enumerate() {
            let at = |msg: &str| format!("{}: entry {}: {msg}", f.name, i + 1);
            let obj = m.as_object().ok_or_else(|| at("must be an object"))?;
            let subtype = match obj.get("subtype") {
                None | Some(Value::Null) => "",
                Some(Value::String(s)) => s.as_str(),
                Some(_) => return Err(at("`subtype` must be a string")),
            };
            if SKIPPED.contains(&subtype) {
                continue;
            }
            let (msg, edited_event) = if subtype == "message_changed" {
                let inner = obj
                    .get("message")
                    .and_then(Value::as_object)
                    .ok_or_else(|| at("a `message_changed` entry needs a `message` object"))?;
                (inner, true)
            } else {
                (obj, false)
            };
            let ts = match msg.get("ts") {
                Some(Value::String(s)) if ts_time(s).is_some() => s.clone(),
                Some(_) => return Err(at("`ts` must be a string like \"1714557600.000200\"")),
                None => return Err(at("`ts` is missing")),
            };
            let posted_at = ts_time(&ts).ok_or_else(|| at("`ts` is out of range"))?;
            let raw = match msg.get("text") {
                None | Some(Value::Null) => "",
                Some(Value::String(s)) => s.as_str(),
                Some(_) => return Err(at("`text` must be a string")),
            };
            if raw.chars().count() > max_text {
                return Err(at(&format!("`text` is longer than {max_text} characters")));
            }
            let str_field = |obj: &serde_json::Map<String, Value>, key: &str| {
                obj.get(key)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            let user = str_field(msg, "user");
            let profile = msg.get("user_profile").and_then(Value::as_object);
            let author = profile
                .and_then(|p| str_field(p, "display_name").or_else(|| str_field(p, "real_name")))
                .or_else(|| user.as_ref().and_then(|u| names.get(u).cloned()))
                .or_else(|| str_field(msg, "username"))
                .or_else(|| {
                    msg.get("bot_profile")
                        .and_then(Value::as_object)
                        .and_then(|b| str_field(b, "name"))
                })
                .or(user)
                .or_else(|| str_field(msg, "bot_id"))
                .unwrap_or_else(|| "unknown".to_owned());
            let files: Vec<String> = match msg.get("files") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|f| {
                        f.get("name")
                            .or_else(|| f.get("title"))
                            .and_then(Value::as_str)
                            .unwrap_or("file")
                            .chars()
                            .take(200)
                            .collect()
                    })
                    .collect(),
                Some(_) => return Err(at("`files` must be an array")),
            };
            let text = readable(raw, &names);
            if text.trim().is_empty() && files.is_empty() {
                continue;
            }
            let thread_ts = str_field(msg, "thread_ts").filter(|t| *t != ts);
            let message = ChatMessage {
                external_id: ts.clone(),
                author: author.chars().take(120).collect(),
                posted_at,
                text,
                thread_ts,
                edited: edited_event || msg.get("edited").is_some_and(|e| !e.is_null()),
                files: files.join(", "),
            };
            match by_ts.get(&ts) {
                // An edit may leave out what did not change (uploads, the thread).
                Some(&pos) => {
                    let before = std::mem::replace(&mut out[pos], message);
                    let now = &mut out[pos];
                    if now.files.is_empty() {
                        now.files = before.files;
                    }
                    if now.thread_ts.is_none() {
                        now.thread_ts = before.thread_ts;
                    }
                }
                None => {
                    by_ts.insert(ts, out.len());
                    out.push(message);
                }
            }
        }
    }
    out.sort_by_key(|m| m.posted_at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_markup_becomes_readable_text() {
        let names = HashMap::from([("U1".to_owned(), "ana".to_owned())]);
        assert_eq!(
            readable(
                "<@U1> see <https://x.io/a|the graph> in <#C1|ops> &lt;b&gt; <!here>",
                &names
            ),
            "@ana see the graph (https://x.io/a) in #ops <b> @here"
        );
        assert_eq!(readable("a < b", &names), "a < b");
    }

    #[test]
    fn ts_reads_as_microseconds() {
        let t = ts_time("1714557600.000200").expect("valid");
        assert_eq!(t.timestamp_subsec_micros(), 200);
        assert!(ts_time("x.1").is_none());
    }
}
