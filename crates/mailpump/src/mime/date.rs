//! The `Date` header's date-time (RFC 5322 §3.3).
//!
//! `LuaSocket` formats UTC wall-clock time and appends its `ZONE` string unchanged, so a zone of
//! `+0200` mislabels the time (docs/luasocket.md §1.2). Here the time is converted to the zone it is
//! labelled with; `-0000` keeps its RFC 5322 meaning: UTC, with no information about the local zone.

use chrono::{DateTime, FixedOffset, Local, Offset, TimeZone, Utc};

/// A zone for the `Date` header, as written there: `+hhmm` or `-hhmm`.
///
/// ```
/// use mailpump::mime::date::{Zone, format};
///
/// let zone = Zone::parse("+0530");
/// assert!(zone.is_some() && Zone::parse("+2400").is_none());
/// assert_eq!(format(1_700_000_000, zone), "Wed, 15 Nov 2023 03:43:20 +0530");
/// assert_eq!(format(1_700_000_000, Zone::parse("-0000")), "Tue, 14 Nov 2023 22:13:20 -0000");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    /// East of UTC, in minutes.
    minutes: i32,
    /// `-0000`: UTC time, local zone unknown (RFC 5322 §3.3).
    unknown: bool,
}

impl Zone {
    /// Parses `+hhmm` / `-hhmm` (hours 00-23, minutes 00-59); `None` for anything else.
    ///
    /// ```
    /// use mailpump::mime::date::Zone;
    ///
    /// assert!(Zone::parse("-0800").is_some());
    /// assert!(Zone::parse("PST").is_none());
    /// ```
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 5 || !bytes[1..].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let sign = match bytes[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digit = |i: usize| i32::from(bytes[i] - b'0');
        let hours = digit(1) * 10 + digit(2);
        let minutes = digit(3) * 10 + digit(4);
        if hours > 23 || minutes > 59 {
            return None;
        }
        let minutes = sign * (hours * 60 + minutes);
        Some(Self {
            minutes,
            unknown: sign < 0 && minutes == 0,
        })
    }
}

/// The seconds since the Unix epoch, now.
///
/// ```
/// use mailpump::mime::date::{format, now};
///
/// let date = format(now(), None); // the machine's local zone
/// assert_eq!(date.len(), "Tue, 14 Nov 2023 22:13:20 +0000".len());
/// ```
#[must_use]
pub fn now() -> i64 {
    Utc::now().timestamp()
}

/// Formats `timestamp` (Unix seconds) as an RFC 5322 date-time, `Tue, 14 Nov 2023 22:13:20 +0000`:
/// in `zone` if given, else in the machine's local zone with its real offset.
#[must_use]
pub fn format(timestamp: i64, zone: Option<Zone>) -> String {
    let utc = DateTime::<Utc>::from_timestamp(timestamp, 0).unwrap_or_default();
    let offset = match zone {
        Some(zone) => FixedOffset::east_opt(zone.minutes * 60).unwrap_or(Utc.fix()),
        None => Local.offset_from_utc_datetime(&utc.naive_utc()).fix(),
    };
    let local = utc.with_timezone(&offset);
    let label = if zone.is_some_and(|z| z.unknown) {
        "-0000".to_owned()
    } else {
        let secs = offset.local_minus_utc();
        let sign = if secs < 0 { '-' } else { '+' };
        let minutes = secs.abs() / 60;
        format!("{sign}{:02}{:02}", minutes / 60, minutes % 60)
    };
    // chrono's %a and %b are English whatever the locale, as RFC 5322's day-name and month-name are.
    format!("{} {label}", local.format("%a, %d %b %Y %H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_the_zone_it_names() {
        // 2023-11-14 22:13:20 UTC, the instant of docs/luasocket.md §1.2's example.
        let t = 1_700_000_000;
        assert_eq!(
            format(t, Zone::parse("-0000")),
            "Tue, 14 Nov 2023 22:13:20 -0000"
        );
        assert_eq!(
            format(t, Zone::parse("+0000")),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(
            format(t, Zone::parse("+0200")),
            "Wed, 15 Nov 2023 00:13:20 +0200"
        );
        assert_eq!(
            format(t, Zone::parse("-0930")),
            "Tue, 14 Nov 2023 12:43:20 -0930"
        );
    }

    #[test]
    fn local_zone_has_a_numeric_offset() {
        let text = format(1_700_000_000, None);
        let zone = text.rsplit(' ').next().unwrap();
        assert!(Zone::parse(zone).is_some(), "{text}");
    }

    #[test]
    fn rejects_malformed_zones() {
        for bad in [
            "", "0200", "+200", "+2400", "+0060", "UTC", "+02:00", "-00000",
        ] {
            assert_eq!(Zone::parse(bad), None, "{bad:?}");
        }
    }
}
