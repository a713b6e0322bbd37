#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use chrono::Utc;

const MIN: i64 = MICROS_PER_MINUTE;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap()
        .timestamp_micros()
}

fn local(tz: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    let tz: Tz = tz.parse().unwrap();
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .unwrap()
        .timestamp_micros()
}

fn madrid(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    local("Europe/Madrid", y, mo, d, h, mi)
}

const LUNCH: &[&str] = &["09:00-13:00", "14:00-18:00"];

/// Finance: Mon-Fri 09:00-13:00 and 14:00-18:00 in Madrid, closed on Christmas.
fn finance() -> Calendar {
    Calendar::new(
        "Europe/Madrid",
        Some(&[
            (Weekday::Mon, LUNCH),
            (Weekday::Tue, LUNCH),
            (Weekday::Wed, LUNCH),
            (Weekday::Thu, LUNCH),
            (Weekday::Fri, LUNCH),
        ]),
        &["2026-12-25"],
    )
    .unwrap()
}

#[test]
fn parses_periods() {
    let p = Period::parse("09:00-13:00").unwrap();
    assert_eq!((p.start_minute(), p.end_minute()), (540, 780));
    assert_eq!(p.to_string(), "09:00-13:00");
    let p = Period::parse(" 18:30 - 24:00 ").unwrap();
    assert_eq!((p.start_minute(), p.end_minute()), (1110, 1440));
    assert_eq!(p.to_string(), "18:30-24:00");
    assert_eq!(Period::parse("9:05-10:00").unwrap().start_minute(), 545);
    assert_eq!(Period::new(0, 1440).unwrap().to_string(), "00:00-24:00");
}

#[test]
fn refuses_malformed_periods() {
    for text in [
        "0900-1300",
        "09:00",
        "09:00-25:00",
        "09:60-10:00",
        "24:00-24:00",
        "ab:cd-10:00",
        "09:0-10:00",
        "24:30-10:00",
        "",
    ] {
        let err = Period::parse(text).unwrap_err();
        assert!(
            matches!(
                err,
                CalendarError::MalformedPeriod { .. } | CalendarError::EmptyPeriod(_)
            ),
            "{text}: {err}"
        );
    }
    assert_eq!(
        Period::parse("13:00-09:00").unwrap_err(),
        CalendarError::EmptyPeriod("13:00-09:00".into())
    );
    assert!(matches!(
        Period::parse("10:00-10:00"),
        Err(CalendarError::EmptyPeriod(_))
    ));
    assert!(
        Period::parse("22:00-06:00")
            .unwrap_err()
            .to_string()
            .contains("two periods")
    );
    assert!(Period::new(600, 500).is_err());
    assert!(Period::new(0, 1441).is_err());
}

#[test]
fn refuses_overlaps_but_accepts_touching_periods() {
    let mut b = CalendarBuilder::new("UTC").unwrap();
    b.add_period(Weekday::Mon, "09:00-13:00").unwrap();
    b.add_period(Weekday::Mon, "13:00-14:00").unwrap();
    b.add_period(Weekday::Tue, "12:00-15:00").unwrap();
    let err = b.add_period(Weekday::Mon, "12:30-18:00").unwrap_err();
    assert_eq!(
        err,
        CalendarError::Overlap {
            day: "mon".into(),
            first: "09:00-13:00".into(),
            second: "12:30-18:00".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "periods \"09:00-13:00\" and \"12:30-18:00\" overlap on mon"
    );
    // A period that contains another one also overlaps.
    assert!(b.add_period(Weekday::Tue, "08:00-20:00").is_err());
    // Periods are kept sorted whatever the order they were given in.
    b.add_period(Weekday::Mon, "06:00-07:00").unwrap();
    let cal = b.build();
    let starts: Vec<u16> = cal
        .periods(Weekday::Mon)
        .unwrap()
        .iter()
        .map(|p| p.start_minute())
        .collect();
    assert_eq!(starts, vec![360, 540, 780]);
}

#[test]
fn refuses_bad_zones_and_holidays() {
    assert_eq!(
        CalendarBuilder::new("Europe/Madird").unwrap_err(),
        CalendarError::UnknownTimeZone("Europe/Madird".into())
    );
    assert!(
        CalendarBuilder::new("Mars/Olympus")
            .unwrap_err()
            .to_string()
            .contains("IANA")
    );
    let mut b = CalendarBuilder::new("Asia/Kolkata").unwrap();
    b.add_holiday("2026-01-26").unwrap();
    assert_eq!(
        b.add_holiday("2026-01-26").unwrap_err(),
        CalendarError::DuplicateHoliday("2026-01-26".into())
    );
    assert_eq!(
        b.add_holiday("26/01/2026").unwrap_err(),
        CalendarError::MalformedHoliday("26/01/2026".into())
    );
    assert!(b.add_holiday("2026-02-30").is_err());
}

#[test]
fn no_hours_means_always_open() {
    let cal = Calendar::always_open();
    let t = utc(2026, 3, 29, 1, 30);
    assert!(cal.is_always_open());
    assert!(cal.is_open(t));
    assert_eq!(cal.next_open(t), Some(t));
    assert_eq!(cal.open_micros_between(t, t + 3 * DAY), 3 * DAY);
    assert_eq!(cal.add_open_time(t, 5 * HOUR), Some(t + 5 * HOUR));
    assert_eq!(cal.open_micros_between(i64::MIN, i64::MAX), i64::MAX);
    assert_eq!(cal.add_open_time(i64::MAX, 1), None);
    // A zone alone changes nothing.
    let cal = Calendar::new("Asia/Dubai", None, &[]).unwrap();
    assert!(cal.is_always_open());
}

#[test]
fn holidays_close_a_round_the_clock_calendar() {
    let cal = Calendar::new("Asia/Dubai", None, &["2026-12-02"]).unwrap();
    assert!(!cal.is_always_open());
    let before = local("Asia/Dubai", 2026, 12, 1, 23, 59);
    assert!(cal.is_open(before));
    assert!(!cal.is_open(local("Asia/Dubai", 2026, 12, 2, 12, 0)));
    assert_eq!(
        cal.next_open(before + MIN),
        Some(local("Asia/Dubai", 2026, 12, 3, 0, 0))
    );
    assert_eq!(cal.open_micros_between(before, before + 2 * DAY), DAY);
}

#[test]
fn lunch_break() {
    let cal = finance();
    // Wednesday 2026-06-17.
    assert!(!cal.is_open(madrid(2026, 6, 17, 8, 59)));
    assert!(cal.is_open(madrid(2026, 6, 17, 9, 0)));
    assert!(cal.is_open(madrid(2026, 6, 17, 12, 59)));
    assert!(!cal.is_open(madrid(2026, 6, 17, 13, 0)));
    assert!(!cal.is_open(madrid(2026, 6, 17, 13, 30)));
    assert!(cal.is_open(madrid(2026, 6, 17, 14, 0)));
    assert!(!cal.is_open(madrid(2026, 6, 17, 18, 0)));
    assert_eq!(
        cal.next_open(madrid(2026, 6, 17, 13, 30)),
        Some(madrid(2026, 6, 17, 14, 0))
    );
    let open = madrid(2026, 6, 17, 10, 0);
    assert_eq!(cal.next_open(open), Some(open));
    // The whole day: 8 hours.
    assert_eq!(
        cal.open_micros_between(madrid(2026, 6, 17, 0, 0), madrid(2026, 6, 18, 0, 0)),
        8 * HOUR
    );
    // Across lunch: 12:00-15:00 is two hours of open time.
    assert_eq!(
        cal.open_micros_between(madrid(2026, 6, 17, 12, 0), madrid(2026, 6, 17, 15, 0)),
        2 * HOUR
    );
    // One hour from 12:30 ends after lunch.
    assert_eq!(
        cal.add_open_time(madrid(2026, 6, 17, 12, 30), HOUR),
        Some(madrid(2026, 6, 17, 14, 30))
    );
}

#[test]
fn weekends_and_holidays() {
    let cal = finance();
    // Friday 2026-06-19 after closing: next opening is Monday 09:00.
    assert_eq!(
        cal.next_open(madrid(2026, 6, 19, 18, 30)),
        Some(madrid(2026, 6, 22, 9, 0))
    );
    assert!(!cal.is_open(madrid(2026, 6, 20, 11, 0)));
    // Friday 17:00 to Monday 10:00: one hour on Friday, one on Monday.
    assert_eq!(
        cal.open_micros_between(madrid(2026, 6, 19, 17, 0), madrid(2026, 6, 22, 10, 0)),
        2 * HOUR
    );
    assert_eq!(
        cal.add_open_time(madrid(2026, 6, 19, 17, 0), 2 * HOUR),
        Some(madrid(2026, 6, 22, 10, 0))
    );
    // Starting on a Saturday.
    assert_eq!(
        cal.add_open_time(madrid(2026, 6, 20, 12, 0), HOUR),
        Some(madrid(2026, 6, 22, 10, 0))
    );
    // Christmas 2026 is a Friday: Thursday evening opens next on Monday the 28th.
    assert!(!cal.is_open(madrid(2026, 12, 25, 10, 0)));
    assert_eq!(
        cal.next_open(madrid(2026, 12, 24, 18, 0)),
        Some(madrid(2026, 12, 28, 9, 0))
    );
    assert_eq!(
        cal.open_micros_between(madrid(2026, 12, 21, 0, 0), madrid(2026, 12, 28, 0, 0)),
        4 * 8 * HOUR
    );
    assert_eq!(
        cal.local_label(madrid(2026, 12, 28, 9, 0), madrid(2026, 12, 24, 18, 0)),
        "Mon 09:00"
    );
    assert_eq!(
        cal.local_label(madrid(2026, 12, 28, 9, 0), madrid(2026, 12, 20, 18, 0)),
        "Mon 2026-12-28 09:00"
    );
}

#[test]
fn add_open_time_edges() {
    let cal = finance();
    let from = madrid(2026, 6, 17, 17, 0);
    // Running out exactly at closing time gives the closing time.
    assert_eq!(
        cal.add_open_time(from, HOUR),
        Some(madrid(2026, 6, 17, 18, 0))
    );
    assert_eq!(
        cal.add_open_time(from, HOUR + 1),
        Some(madrid(2026, 6, 18, 9, 0) + 1)
    );
    assert_eq!(cal.add_open_time(from, 0), Some(from));
    assert_eq!(cal.add_open_time(from, -5), Some(from));
    // 24 business hours from Wednesday 17:00: 1 h Wed, 8 Thu, 8 Fri, 7 on Monday.
    assert_eq!(
        cal.add_open_time(from, 24 * HOUR),
        Some(madrid(2026, 6, 22, 17, 0))
    );
}

#[test]
fn time_zones() {
    let hours: &[(Weekday, &[&str])] = &[
        (Weekday::Mon, &["09:00-18:00"]),
        (Weekday::Tue, &["09:00-18:00"]),
    ];
    let tokyo = Calendar::new("Asia/Tokyo", Some(hours), &[]).unwrap();
    let sao_paulo = Calendar::new("America/Sao_Paulo", Some(hours), &[]).unwrap();
    // Monday 2026-06-15 01:00 UTC: 10:00 in Tokyo, 22:00 Sunday in São Paulo.
    let t = utc(2026, 6, 15, 1, 0);
    assert!(tokyo.is_open(t));
    assert!(!sao_paulo.is_open(t));
    assert_eq!(sao_paulo.next_open(t), Some(utc(2026, 6, 15, 12, 0)));
    assert_eq!(
        tokyo.next_open(utc(2026, 6, 16, 9, 0)),
        Some(utc(2026, 6, 22, 0, 0))
    );
    assert_eq!(tokyo.time_zone_name(), "Asia/Tokyo");
    // Holidays are local dates: Monday the 15th in Tokyo starts on Sunday in UTC.
    let tokyo_holiday = Calendar::new("Asia/Tokyo", Some(hours), &["2026-06-15"]).unwrap();
    assert!(!tokyo_holiday.is_open(t));
    assert_eq!(tokyo_holiday.next_open(t), Some(utc(2026, 6, 16, 0, 0)));
}

#[test]
fn daylight_saving_weeks() {
    // Madrid springs forward on Sunday 2026-03-29 (02:00 -> 03:00) and falls back on
    // Sunday 2026-10-25 (03:00 -> 02:00).
    let cal = finance();
    // Weekday hours stay in local time: 09:00 is 08:00 UTC before, 07:00 UTC after.
    assert_eq!(
        cal.next_open(utc(2026, 3, 27, 20, 0)),
        Some(utc(2026, 3, 30, 7, 0))
    );
    assert_eq!(
        cal.next_open(utc(2026, 3, 20, 20, 0)),
        Some(utc(2026, 3, 23, 8, 0))
    );
    assert!(cal.is_open(utc(2026, 3, 30, 7, 0)));
    assert!(!cal.is_open(utc(2026, 3, 23, 7, 0)));
    // The week containing each change still has 40 open hours.
    for (from, to) in [
        (madrid(2026, 3, 23, 0, 0), madrid(2026, 3, 30, 0, 0)),
        (madrid(2026, 3, 26, 12, 0), madrid(2026, 4, 2, 12, 0)),
        (madrid(2026, 10, 19, 0, 0), madrid(2026, 10, 26, 0, 0)),
        (madrid(2026, 10, 22, 12, 0), madrid(2026, 10, 29, 12, 0)),
    ] {
        assert_eq!(cal.open_micros_between(from, to), 40 * HOUR);
    }
    // A Friday-evening deadline across the change lands on Monday local time.
    assert_eq!(
        cal.add_open_time(madrid(2026, 3, 27, 17, 0), 2 * HOUR),
        Some(madrid(2026, 3, 30, 10, 0))
    );

    // Round the clock on Sundays: 23 hours in spring, 25 in autumn.
    let sundays = Calendar::new(
        "Europe/Madrid",
        Some(&[(Weekday::Sun, &["00:00-24:00"])]),
        &[],
    )
    .unwrap();
    let week = |m: u32, d: u32| {
        sundays.open_micros_between(madrid(2026, m, d, 0, 0), madrid(2026, m, d + 7, 0, 0))
    };
    assert_eq!(week(3, 23), 23 * HOUR);
    assert_eq!(week(10, 19), 25 * HOUR);
    assert_eq!(week(6, 15), 24 * HOUR);
    // Measured in real time, a week from Monday midnight ends at 23:00 on the next
    // Sunday in autumn, an hour before the local week does.
    let oct = madrid(2026, 10, 19, 0, 0);
    assert_eq!(sundays.open_micros_between(oct, oct + 7 * DAY), 24 * HOUR);
    assert_eq!(
        sundays.add_open_time(madrid(2026, 10, 24, 12, 0), 25 * HOUR),
        Some(madrid(2026, 10, 26, 0, 0))
    );

    // A period around the spring gap: 01:00-04:00 lasts two real hours, and one that
    // starts inside the gap starts at the transition (03:00 CEST = 01:00 UTC).
    let night = |period: &'static str| {
        Calendar::new("Europe/Madrid", Some(&[(Weekday::Sun, &[period])]), &[]).unwrap()
    };
    let day = |cal: &Calendar| {
        cal.open_micros_between(madrid(2026, 3, 29, 0, 0), madrid(2026, 3, 30, 0, 0))
    };
    assert_eq!(day(&night("01:00-04:00")), 2 * HOUR);
    let gap = night("02:30-05:00");
    assert_eq!(day(&gap), 2 * HOUR);
    assert_eq!(
        gap.next_open(utc(2026, 3, 28, 23, 0)),
        Some(utc(2026, 3, 29, 1, 0))
    );
    // In autumn the same night period lasts four real hours.
    let autumn = |cal: &Calendar| {
        cal.open_micros_between(madrid(2026, 10, 25, 0, 0), madrid(2026, 10, 26, 0, 0))
    };
    assert_eq!(autumn(&night("01:00-04:00")), 4 * HOUR);

    // New York (changes on 2026-03-08 and 2026-11-01), a 24/7 calendar with hours
    // written out: the week of each change has 167 and 169 hours.
    let all: &[&str] = &["00:00-24:00"];
    let ny = Calendar::new(
        "America/New_York",
        Some(&[
            (Weekday::Mon, all),
            (Weekday::Tue, all),
            (Weekday::Wed, all),
            (Weekday::Thu, all),
            (Weekday::Fri, all),
            (Weekday::Sat, all),
            (Weekday::Sun, all),
        ]),
        &[],
    )
    .unwrap();
    let local_ny = |d: u32, m: u32| local("America/New_York", 2026, m, d, 0, 0);
    assert_eq!(
        ny.open_micros_between(local_ny(2, 3), local_ny(9, 3)),
        167 * HOUR
    );
    assert_eq!(
        ny.open_micros_between(local_ny(26, 10), local_ny(2, 11)),
        169 * HOUR
    );
    // Open at every instant of the change night.
    let mut t = utc(2026, 11, 1, 3, 0);
    while t < utc(2026, 11, 1, 9, 0) {
        assert!(ny.is_open(t));
        t += 7 * MIN;
    }
}

#[test]
fn periods_ending_at_midnight_join_the_next_day() {
    let cal = Calendar::new(
        "Asia/Jakarta",
        Some(&[
            (Weekday::Sat, &["20:00-24:00"]),
            (Weekday::Sun, &["00:00-02:00"]),
        ]),
        &[],
    )
    .unwrap();
    let jkt = |d: u32, h: u32, m: u32| local("Asia/Jakarta", 2026, 6, d, h, m);
    assert!(cal.is_open(jkt(20, 23, 59)));
    assert!(cal.is_open(jkt(21, 0, 0)));
    assert!(!cal.is_open(jkt(21, 2, 0)));
    assert_eq!(
        cal.open_micros_between(jkt(20, 23, 0), jkt(21, 1, 0)),
        2 * HOUR
    );
    assert_eq!(
        cal.add_open_time(jkt(20, 23, 30), HOUR),
        Some(jkt(21, 0, 30))
    );
}

#[test]
fn never_open() {
    let mut b = CalendarBuilder::new("Europe/Madrid").unwrap();
    b.with_hours();
    let cal = b.build();
    let t = madrid(2026, 6, 17, 10, 0);
    assert!(cal.never_opens());
    assert!(!cal.is_open(t));
    assert_eq!(cal.next_open(t), None);
    assert_eq!(cal.open_micros_between(t, t + 30 * DAY), 0);
    assert_eq!(cal.add_open_time(t, HOUR), None);
    // Hours on some days but every such day a holiday: no opening after the holidays
    // either way, and the walk stops.
    let cal = Calendar::new(
        "UTC",
        Some(&[(Weekday::Mon, &["09:00-10:00"])]),
        &["2026-06-15", "2026-06-22"],
    )
    .unwrap();
    assert_eq!(
        cal.next_open(utc(2026, 6, 14, 0, 0)),
        Some(utc(2026, 6, 29, 9, 0))
    );
}

#[test]
fn multi_week_spans() {
    let cal = finance();
    // Four full weeks in June 2026.
    assert_eq!(
        cal.open_micros_between(madrid(2026, 6, 1, 0, 0), madrid(2026, 6, 29, 0, 0)),
        4 * 40 * HOUR
    );
    // All of 2026 (Thursday to Thursday): 52 weeks + Thursday 2026-12-31, minus Christmas.
    let year = cal.open_micros_between(madrid(2026, 1, 1, 0, 0), madrid(2027, 1, 1, 0, 0));
    assert_eq!(year, (52 * 40 + 8 - 8) * HOUR);
    // 160 business hours from Monday 09:00 end four weeks later on Friday 18:00.
    assert_eq!(
        cal.add_open_time(madrid(2026, 6, 1, 9, 0), 160 * HOUR),
        Some(madrid(2026, 6, 26, 18, 0))
    );
}

/// add_open_time and open_micros_between are inverses, and is_open agrees with both,
/// on pseudo-random instants across the year (including both DST changes).
#[test]
fn queries_agree() {
    let cal = finance();
    let start = madrid(2026, 1, 1, 0, 0);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let from = start + (next() % (365 * DAY as u64)) as i64;
        let duration = (next() % (60 * HOUR as u64)) as i64 + 1;
        let end = cal.add_open_time(from, duration).unwrap();
        assert_eq!(cal.open_micros_between(from, end), duration, "from {from}");
        assert!(cal.is_open(end - 1), "open just before the deadline");
        let t = from;
        assert_eq!(cal.is_open(t), cal.open_micros_between(t, t + 1) == 1);
        let opens = cal.next_open(t).unwrap();
        assert!(cal.is_open(opens));
        assert_eq!(cal.open_micros_between(t, opens), 0);
    }
}
