//! Chat pasted as text (`HH:MM name: message`, a line each; lines that do not start with a
//! time continue the message above) and CSV (`time,author,text`), read in the incident's
//! zone on the day chosen on the form.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use super::ChatMessage;

fn local(tz: Tz, at: NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&at)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// A stable id for a message without one (time, author and text), so importing the same
/// paste twice does not double it.
fn id_of(at: DateTime<Utc>, author: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(author.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    let hex: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}#{hex}", at.timestamp())
}

/// `14:02`, `14:02:33`, `[14:02]` at the start of a line, then `name: message`.
fn line_start(line: &str) -> Option<(NaiveTime, &str, &str)> {
    let line = line.trim_start();
    let (time, rest) = if let Some(inner) = line.strip_prefix('[') {
        inner.split_once(']')?
    } else {
        line.split_once(char::is_whitespace)?
    };
    let time = NaiveTime::parse_from_str(time.trim(), "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(time.trim(), "%H:%M"))
        .ok()?;
    let (name, text) = rest.trim_start().split_once(':')?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return None;
    }
    Some((time, name, text.trim()))
}

/// Messages of a pasted conversation on `day`. A time earlier than the one before is the next
/// day (a conversation past midnight).
pub fn pasted(
    raw: &str,
    day: NaiveDate,
    tz: Tz,
    max_text: usize,
) -> Result<Vec<ChatMessage>, String> {
    let mut out: Vec<ChatMessage> = Vec::new();
    let mut day = day;
    let mut last: Option<NaiveTime> = None;
    for (n, line) in raw.lines().enumerate() {
        if let Some((time, name, text)) = line_start(line) {
            if last.is_some_and(|l| time < l) {
                day += Duration::days(1);
            }
            last = Some(time);
            let at = local(tz, day.and_time(time))
                .ok_or_else(|| format!("line {}: {time} does not exist on {day}", n + 1))?;
            out.push(ChatMessage {
                external_id: String::new(),
                author: name.to_owned(),
                posted_at: at,
                text: text.to_owned(),
                thread_ts: None,
                edited: false,
                files: String::new(),
            });
        } else if let Some(prev) = out.last_mut() {
            prev.text.push('\n');
            prev.text.push_str(line);
        } else if !line.trim().is_empty() {
            return Err(format!(
                "line {}: expected `HH:MM name: message`, got {:?}",
                n + 1,
                line.chars().take(60).collect::<String>()
            ));
        }
        if out
            .last()
            .is_some_and(|m| m.text.chars().count() > max_text)
        {
            return Err(format!(
                "line {}: the message is longer than {max_text} characters",
                n + 1
            ));
        }
    }
    for m in &mut out {
        m.text = m.text.trim_end().to_owned();
        m.external_id = id_of(m.posted_at, &m.author, &m.text);
    }
    if out.is_empty() {
        return Err("no messages: paste lines like `14:02 ana: the pool is exhausted`".into());
    }
    Ok(out)
}

/// The records of a CSV text (RFC 4180: quoted fields may hold commas, quotes and line
/// breaks), each with the line it starts on.
fn records(raw: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut out = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = raw.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                if !(record.len() == 1 && record[0].is_empty()) {
                    out.push((start, std::mem::take(&mut record)));
                }
                record.clear();
                line += 1;
                start = line;
                any = false;
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {start}: a quoted field is never closed"));
    }
    if any {
        record.push(field);
        out.push((start, record));
    }
    Ok(out)
}

/// Messages of a CSV with a `time,author,text` header (any order, more columns ignored).
/// Times are RFC 3339, `YYYY-MM-DD HH:MM[:SS]` in the zone, or `HH:MM[:SS]` on `day`.
pub fn csv(
    raw: &str,
    day: Option<NaiveDate>,
    tz: Tz,
    max_text: usize,
) -> Result<Vec<ChatMessage>, String> {
    let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
    let rows = records(raw)?;
    let Some(((_, header), rows)) = rows.split_first() else {
        return Err("the CSV is empty; it needs a `time,author,text` header".into());
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("line 1: the header needs a `{name}` column (time,author,text)"))
    };
    let (t, a, x) = (col("time")?, col("author")?, col("text")?);
    let mut out = Vec::new();
    for (line, r) in rows {
        let get = |i: usize| r.get(i).map(|s| s.trim()).unwrap_or("");
        let raw_time = get(t);
        let posted_at = DateTime::parse_from_rfc3339(raw_time)
            .map(|d| d.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(raw_time, f).ok())
                    .and_then(|n| local(tz, n))
            })
            .or_else(|| {
                let time = NaiveTime::parse_from_str(raw_time, "%H:%M:%S")
                    .or_else(|_| NaiveTime::parse_from_str(raw_time, "%H:%M"))
                    .ok()?;
                local(tz, day?.and_time(time))
            })
            .ok_or_else(|| {
                format!(
                    "line {line}: time {raw_time:?} is not a date and time (2024-05-01 14:02, or 14:02 with the day chosen)"
                )
            })?;
        let author = get(a);
        if author.is_empty() {
            return Err(format!("line {line}: author is empty"));
        }
        let text = r.get(x).map(|s| s.trim()).unwrap_or("");
        if text.chars().count() > max_text {
            return Err(format!(
                "line {line}: text is longer than {max_text} characters"
            ));
        }
        if text.is_empty() {
            continue;
        }
        out.push(ChatMessage {
            external_id: id_of(posted_at, author, text),
            author: author.chars().take(120).collect(),
            posted_at,
            text: text.to_owned(),
            thread_ts: None,
            edited: false,
            files: String::new(),
        });
    }
    if out.is_empty() {
        return Err("the CSV has no messages under its header".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_lines_continue_and_cross_midnight() {
        let day = NaiveDate::from_ymd_opt(2024, 5, 1).expect("date");
        let got = pasted(
            "23:58 ana: pool exhausted\nstill failing\n[00:03] bo: rolled back",
            day,
            Tz::UTC,
            1000,
        )
        .expect("parses");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].text, "pool exhausted\nstill failing");
        assert_eq!(got[1].author, "bo");
        assert_eq!(got[1].posted_at.to_rfc3339(), "2024-05-02T00:03:00+00:00");
        let err = pasted("hello\n14:00 a: b", day, Tz::UTC, 1000).expect_err("refused");
        assert!(err.starts_with("line 1:"), "{err}");
    }

    #[test]
    fn csv_reads_quoted_fields_and_names_bad_lines() {
        let day = NaiveDate::from_ymd_opt(2024, 5, 1);
        let got = csv(
            "time,author,text\n14:02,ana,\"pool, \"\"again\"\"\nsecond line\"\n2024-05-01 14:05,bo,ok\n",
            day,
            Tz::UTC,
            1000,
        )
        .expect("parses");
        assert_eq!(got[0].text, "pool, \"again\"\nsecond line");
        assert_eq!(got.len(), 2);
        let err =
            csv("time,author,text\n1,a,b\nnoon,a,b\n", day, Tz::UTC, 1000).expect_err("refused");
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(csv("when,who\n", day, Tz::UTC, 10).is_err());
    }
}
