//! Times as people type and read them: form input in the configured zone, the display
//! format with zone and offset, and short human durations (`3h 05m`).

use std::sync::LazyLock;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The display format, parsed once: lists format two times per row.
static TIME_FORMAT: LazyLock<Vec<Item<'static>>> = LazyLock::new(|| {
    StrftimeItems::new("%Y-%m-%d %H:%M %Z (%:z)")
        .parse_to_owned()
        .unwrap_or_default()
});

/// Today's date in the configured zone: every page and API answer that says "today",
/// "overdue" or "this week" counts days here, so they agree with each other.
pub fn today(tz: Tz) -> chrono::NaiveDate {
    Utc::now().with_timezone(&tz).date_naive()
}

pub fn format_time(tz: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&tz)
        .format_with_items(TIME_FORMAT.iter())
        .to_string()
}

/// The years a date or time may fall in, on every field (incidents, milestones, timeline
/// entries, due dates, filters, report weeks). A year outside is a typo (1815, 2592, year 20)
/// that would otherwise be stored and break the weekly review of that week.
pub const MIN_YEAR: i32 = 2000;
pub const MAX_YEAR: i32 = 2100;

/// The message every date field answers with when its year is outside [`MIN_YEAR`]..=[`MAX_YEAR`].
pub fn out_of_range_message() -> String {
    format!("must be between {MIN_YEAR} and {MAX_YEAR}")
}

/// Checks that a date's year is within [`MIN_YEAR`]..=[`MAX_YEAR`].
pub fn check_date(date: NaiveDate) -> Result<NaiveDate, String> {
    if (MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
        Ok(date)
    } else {
        Err(out_of_range_message())
    }
}

/// Parses a calendar date (`2026-12-01`) within the allowed years. Empty means none.
pub fn parse_date(raw: &str) -> Result<Option<NaiveDate>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| "must be a date like 2026-12-01".to_owned())?;
    check_date(date).map(Some)
}

/// Parses a time typed into a form: a `datetime-local` value (`2026-11-25T14:30`, read in the
/// configured zone) or a full RFC 3339 time with its own offset. Empty means none.
pub fn parse_form_time(raw: &str, tz: Tz) -> Result<Option<DateTime<Utc>>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        // The year as written is checked (what the schema's pattern can say), not its UTC one.
        check_date(t.date_naive())?;
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(raw, format) {
            check_date(naive.date())?;
            // A local time that a DST change skips or repeats takes its earliest meaning.
            let at = tz
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| format!("{raw} does not exist in {}", tz.name()))?;
            return Ok(Some(at));
        }
    }
    Err("must be a date and time like 2026-11-25T14:30".to_owned())
}

/// `1d 2h`, `3h 05m`, `12m`, `45s`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, mins) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins:02}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{secs}s")
    }
}

/// `1d 2h`, `3h 05m`, `12m`, `45s`, or `—` for none.
pub fn human_secs(secs: Option<i64>) -> String {
    secs.map_or_else(|| "—".to_owned(), |s| human_duration(Duration::seconds(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_outside_2000_to_2100_are_refused() {
        for raw in [
            "1815-03-01T10:00:00Z",
            "2592-01-01T00:00",
            "0020-05-05T00:00:00Z",
        ] {
            assert_eq!(
                parse_form_time(raw, Tz::UTC),
                Err("must be between 2000 and 2100".to_owned()),
                "{raw}"
            );
        }
        assert!(parse_form_time("2000-01-01T00:00:00Z", Tz::UTC).is_ok());
        assert!(parse_form_time("2100-12-31T23:59", Tz::UTC).is_ok());
        assert_eq!(
            parse_date("0020-01-01"),
            Err("must be between 2000 and 2100".to_owned())
        );
        assert_eq!(parse_date(""), Ok(None));
        assert!(parse_date("2026-12-01").is_ok_and(|d| d.is_some()));
        assert!(parse_date("2026-13-01").is_err());
    }

    #[test]
    fn form_times_are_read_in_the_configured_zone() {
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        let t = parse_form_time("2026-11-25T14:30", berlin)
            .expect("valid")
            .expect("some");
        assert_eq!(crate::db::ts(t), "2026-11-25T13:30:00.000Z");
        let t = parse_form_time("2026-07-01T10:00:00+02:00", Tz::UTC)
            .expect("valid")
            .expect("some");
        assert_eq!(crate::db::ts(t), "2026-07-01T08:00:00.000Z");
        assert_eq!(parse_form_time("  ", berlin), Ok(None));
        assert!(parse_form_time("yesterday", berlin).is_err());
    }

    #[test]
    fn times_show_zone_and_offset() {
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        let t = DateTime::parse_from_rfc3339("2026-11-25T13:30:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(format_time(berlin, t), "2026-11-25 14:30 CET (+01:00)");
    }

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(human_duration(Duration::seconds(45)), "45s");
        assert_eq!(human_duration(Duration::minutes(12)), "12m");
        assert_eq!(human_duration(Duration::minutes(185)), "3h 05m");
        assert_eq!(human_duration(Duration::hours(26)), "1d 2h");
        assert_eq!(human_duration(Duration::seconds(-5)), "0s");
    }
}
