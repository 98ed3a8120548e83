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

/// A time as every page shows it: `2026-12-01 14:30 CET (+01:00)`.
///
/// Written digit by digit: lists show two per row, and chrono's general formatter was a fifth of
/// the weekly review's CPU. Zones whose offset has seconds or no abbreviation (none in
/// 2000–2100 that we know of) take chrono's path, which the tests hold the fast one to.
pub fn format_time(tz: Tz, at: DateTime<Utc>) -> String {
    use chrono::{Offset, Timelike};
    use chrono_tz::OffsetName;
    let local = at.with_timezone(&tz);
    let offset = local.offset().fix().local_minus_utc();
    let year = local.year();
    match local.offset().abbreviation() {
        Some(abbr) if offset % 60 == 0 && (0..=9999).contains(&year) => {
            let mut out = String::with_capacity(26 + abbr.len());
            push_digits(&mut out, year.unsigned_abs(), 4);
            out.push('-');
            push_digits(&mut out, local.month(), 2);
            out.push('-');
            push_digits(&mut out, local.day(), 2);
            out.push(' ');
            push_digits(&mut out, local.hour(), 2);
            out.push(':');
            push_digits(&mut out, local.minute(), 2);
            out.push(' ');
            out.push_str(abbr);
            out.push_str(" (");
            out.push(if offset < 0 { '-' } else { '+' });
            let minutes = offset.unsigned_abs() / 60;
            push_digits(&mut out, minutes / 60, 2);
            out.push(':');
            push_digits(&mut out, minutes % 60, 2);
            out.push(')');
            out
        }
        _ => chrono_format_time(tz, at),
    }
}

/// `format_time` through chrono's formatter (the reference the fast path is tested against).
fn chrono_format_time(tz: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&tz)
        .format_with_items(TIME_FORMAT.iter())
        .to_string()
}

/// Appends the last `width` decimal digits of `value`, zero-padded (callers pass values that fit).
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u32.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
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

    /// The hand-written display format agrees with chrono's formatter in zones with odd
    /// offsets (half and three-quarter hours, west of UTC, DST of 30 minutes), across the years
    /// people may type.
    #[test]
    fn shown_times_match_chronos_format_in_every_kind_of_zone() {
        use proptest::prelude::*;
        let zones: Vec<Tz> = [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "America/St_Johns",
            "America/Sao_Paulo",
            "Asia/Kolkata",
            "Asia/Kathmandu",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
            "Pacific/Kiritimati",
            "Africa/Casablanca",
        ]
        .iter()
        .map(|z| z.parse().expect("zone"))
        .collect();
        let first = Utc
            .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        let last = Utc
            .with_ymd_and_hms(2100, 12, 31, 23, 59, 59)
            .unwrap()
            .timestamp();
        proptest!(ProptestConfig::with_cases(2000), |(secs in first..=last, zone in 0..zones.len())| {
            let at = DateTime::from_timestamp(secs, 0).expect("in range");
            prop_assert_eq!(format_time(zones[zone], at), chrono_format_time(zones[zone], at));
        });
        let berlin = zones[1];
        let winter = Utc.with_ymd_and_hms(2026, 12, 1, 13, 30, 5).unwrap();
        assert_eq!(format_time(berlin, winter), "2026-12-01 14:30 CET (+01:00)");
        let st_johns = zones[3];
        assert_eq!(
            format_time(st_johns, winter),
            "2026-12-01 10:00 NST (-03:30)"
        );
    }

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
