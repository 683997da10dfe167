//! Maintenance windows as RDS/Neptune write them: `ddd:hh24:mi-ddd:hh24:mi`
//! in UTC (`sun:06:00-sun:06:30`, or wrapping the week: `sat:23:00-sun:01:00`).
//! Pure: the time is always an argument.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

const WEEK_MINUTES: i64 = 7 * 24 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Minutes since Monday 00:00 UTC.
    start: i64,
    end: i64,
}

impl Window {
    pub fn parse(text: &str) -> Result<Window, String> {
        let bad = || {
            format!("expected a maintenance window like \"sun:06:00-sun:06:30\", found {text:?}")
        };
        let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
        let start = minute_of_week(a).ok_or_else(bad)?;
        let end = minute_of_week(b).ok_or_else(bad)?;
        Ok(Window { start, end })
    }

    /// Whether `now` falls inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let m = now_minute(now);
        if self.start <= self.end {
            self.start <= m && m < self.end
        } else {
            m >= self.start || m < self.end
        }
    }

    /// How long from `now` until the window next opens (zero inside it).
    pub fn until_open(&self, now: DateTime<Utc>) -> Duration {
        if self.contains(now) {
            return Duration::zero();
        }
        let m = now_minute(now);
        let minutes = (self.start - m).rem_euclid(WEEK_MINUTES);
        Duration::minutes(minutes) - Duration::seconds(i64::from(now.second()))
    }
}

fn now_minute(now: DateTime<Utc>) -> i64 {
    i64::from(now.weekday().num_days_from_monday()) * 24 * 60
        + i64::from(now.hour()) * 60
        + i64::from(now.minute())
}

fn minute_of_week(part: &str) -> Option<i64> {
    let mut it = part.trim().split(':');
    let day = match it.next()?.to_ascii_lowercase().as_str() {
        "mon" => 0,
        "tue" => 1,
        "wed" => 2,
        "thu" => 3,
        "fri" => 4,
        "sat" => 5,
        "sun" => 6,
        _ => return None,
    };
    let hour: i64 = it.next()?.parse().ok()?;
    let minute: i64 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(0..24).contains(&hour) || !(0..60).contains(&minute) {
        return None;
    }
    Some(day * 24 * 60 + hour * 60 + minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn inside_and_outside() {
        // 2026-11-29 is a Sunday.
        let w = Window::parse("sun:06:00-sun:06:30").unwrap();
        assert!(w.contains(at("2026-11-29T06:10:00Z")));
        assert!(!w.contains(at("2026-11-29T06:30:00Z")));
        assert!(!w.contains(at("2026-11-25T06:10:00Z")));
        assert_eq!(
            w.until_open(at("2026-11-29T05:00:00Z")),
            Duration::minutes(60)
        );
        assert_eq!(
            w.until_open(at("2026-11-29T06:30:00Z")),
            Duration::minutes(7 * 24 * 60 - 30)
        );
    }

    #[test]
    fn windows_that_wrap_the_week() {
        let w = Window::parse("sun:23:30-mon:00:30").unwrap();
        assert!(w.contains(at("2026-11-29T23:45:00Z")));
        assert!(w.contains(at("2026-11-30T00:15:00Z")));
        assert!(!w.contains(at("2026-11-30T00:45:00Z")));
    }

    #[test]
    fn bad_windows_are_errors() {
        for bad in [
            "",
            "sun:06:00",
            "sun:25:00-sun:26:00",
            "xyz:01:00-sun:02:00",
            "sun:06-sun:07",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }
}
