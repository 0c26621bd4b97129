//! The times in SHOW CLIENTS and SHOW SERVERS (`connect_time`, `request_time`), written as
//! PgBouncer writes them: `2026-12-04 19:48:51 UTC`, to the second.
//!
//! PgBouncer prints local time with the zone's abbreviation; qcp prints UTC so the text
//! does not depend on the host's zone (and the console announces `TimeZone` UTC). The
//! calendar arithmetic is Howard Hinnant's `civil_from_days`, for days since 1970 (never
//! negative here: a time before 1970 is shown as the epoch).

use std::time::{SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: u64 = 86_400;

/// `time` as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_utc(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (year, month, day) = civil_from_days(seconds / SECONDS_PER_DAY);
    let of_day = seconds % SECONDS_PER_DAY;
    let (hour, minute, second) = (of_day / 3_600, of_day % 3_600 / 60, of_day % 60);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

/// The (year, month, day) of the `days`-th day after 1970-01-01 in the proleptic Gregorian
/// calendar.
///
/// The calendar repeats every 400 years (an era of 146 097 days). Counting from
/// 0000-03-01 puts February, and its leap day, at the end of each year, so the day of the
/// year maps to a month by a linear formula. Every intermediate value is small (a day of
/// the era is below 146 097), so the saturating operations only matter for absurd input.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    // Leap days so far in the era: one every 4 years, none every 100, one every 400.
    let year_of_era = day_of_era
        .saturating_sub(day_of_era / 1_460)
        .saturating_add(day_of_era / 36_524)
        .saturating_sub(day_of_era / 146_096)
        / 365;
    let year_start = year_of_era
        .saturating_mul(365)
        .saturating_add(year_of_era / 4)
        .saturating_sub(year_of_era / 100);
    let day_of_year = day_of_era.saturating_sub(year_start);
    // Months from March: 0 is March, 11 is February.
    let month_from_march = day_of_year.saturating_mul(5).saturating_add(2) / 153;
    let month_start = month_from_march.saturating_mul(153).saturating_add(2) / 5;
    let day = day_of_year.saturating_sub(month_start).saturating_add(1);
    let (month, year_shift) = if month_from_march < 10 {
        (month_from_march.saturating_add(3), 0)
    } else {
        (month_from_march.saturating_sub(9), 1)
    };
    let year = era
        .saturating_mul(400)
        .saturating_add(year_of_era)
        .saturating_add(year_shift);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(seconds: u64) -> String {
        format_utc(UNIX_EPOCH + Duration::from_secs(seconds))
    }

    #[test]
    fn known_instants() {
        // Checked with `date -u -d @N`.
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(at(951_868_799), "2000-02-29 23:59:59 UTC");
        assert_eq!(at(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(at(1_796_413_731), "2026-12-04 19:48:51 UTC");
        assert_eq!(at(4_102_444_800), "2100-01-01 00:00:00 UTC");
        assert_eq!(at(253_402_300_799), "9999-12-31 23:59:59 UTC");
    }

    #[test]
    fn before_the_epoch_is_the_epoch() {
        assert_eq!(
            format_utc(UNIX_EPOCH - Duration::from_secs(10)),
            "1970-01-01 00:00:00 UTC"
        );
    }

    fn month_len(y: u64, m: u64) -> u64 {
        match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn every_day_follows_the_one_before() {
        // Walks 1970..2400 day by day: each date is the day after the one before.
        let mut previous = civil_from_days(0);
        assert_eq!(previous, (1970, 1, 1));
        for days in 1..(430 * 366) {
            let (py, pm, pd) = previous;
            let expected = if pd < month_len(py, pm) {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!(civil_from_days(days), expected, "day {days}");
            previous = expected;
        }
    }
}
