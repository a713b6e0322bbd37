//! Business hours of one team: when it is open, when it opens next, and how much open
//! time lies between two instants.
//!
//! This module owns the *calendar arithmetic* used by routing (is the team open now?) and
//! by SLA clocks that count business time only (how much open time has elapsed, when is
//! the deadline). It is pure: instants are `i64` microseconds since the Unix epoch (UTC),
//! passed in by the caller; nothing here reads the clock.
//!
//! A [`Calendar`] is written in the team's own wall-clock time:
//!
//! - an IANA time zone (`Europe/Madrid`), so that "09:00" follows daylight-saving changes;
//! - for each weekday, zero or more [`Period`]s such as `09:00-13:00` and `14:00-18:00`
//!   (a lunch break is simply the gap between two periods). A period may end at `24:00`;
//!   a shift that crosses midnight is written as two periods on consecutive days;
//! - holidays: local dates on which the team is closed all day.
//!
//! A calendar with no hours configured is open around the clock (except on its holidays,
//! if any were listed). A calendar whose hours are configured but empty never opens.
//!
//! ## Daylight-saving transitions
//!
//! Each period of each local date is turned into one UTC interval by converting its
//! start and end wall-clock times to instants with one monotonic rule: a wall-clock time
//! that occurs twice (autumn) is taken at its *first* occurrence; one that does not occur
//! (spring) is taken at the transition instant, the first moment after the gap. So a
//! `00:00-24:00` day lasts 23 hours in spring and 25 hours in autumn, a period `01:00-04:00`
//! lasts 2 hours on the spring-forward night, and intervals never overlap, which keeps
//! [`Calendar::open_micros_between`] and [`Calendar::add_open_time`] exact inverses.
//!
//! ## Cost
//!
//! Every query walks local dates, touching each date's few periods: `is_open` looks at three
//! dates, `open_micros_between` and `add_open_time` at one date per day spanned, and
//! `next_open` at one date per day until the next opening. Instants are clamped to the
//! years 0001..=9999.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Weekday};
use chrono_tz::Tz;
use std::fmt;

/// Microseconds in one minute.
pub const MICROS_PER_MINUTE: i64 = 60_000_000;
const MINUTES_PER_DAY: u16 = 24 * 60;
/// 0001-01-01T00:00:00Z, the earliest instant the calendar reasons about.
const MIN_MICROS: i64 = -62_135_596_800 * 1_000_000;
/// 9999-12-30T00:00:00Z, the latest instant the calendar reasons about (a margin of a day
/// keeps `date + 1` valid everywhere).
const MAX_MICROS: i64 = 253_402_128_000 * 1_000_000;
/// How many consecutive days without any open time prove (past the last holiday) that a
/// calendar will never open again.
const CLOSED_DAYS_LIMIT: u32 = 15;

/// Why a calendar could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "unknown time zone \"{0}\" (expected an IANA name such as \"Europe/Madrid\" or \"UTC\")"
    )]
    UnknownTimeZone(String),
    #[error("malformed period \"{text}\": {why} (expected \"HH:MM-HH:MM\", e.g. \"09:00-13:00\")")]
    MalformedPeriod { text: String, why: String },
    #[error(
        "period \"{0}\" does not end after it starts (a shift that crosses midnight is written \
         as two periods, e.g. \"22:00-24:00\" and \"00:00-06:00\" on the next day)"
    )]
    EmptyPeriod(String),
    #[error("periods \"{first}\" and \"{second}\" overlap on {day}")]
    Overlap {
        day: String,
        first: String,
        second: String,
    },
    #[error("malformed holiday \"{0}\" (expected a date \"YYYY-MM-DD\")")]
    MalformedHoliday(String),
    #[error("holiday {0} is listed twice")]
    DuplicateHoliday(String),
}

/// One opening period of a day, in local wall-clock minutes since midnight: `[start, end)`,
/// `end` at most 24:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    start: u16,
    end: u16,
}

impl Period {
    /// A period from minute `start` to minute `end` after local midnight (`end` <= 1440).
    pub fn new(start: u16, end: u16) -> Result<Period, CalendarError> {
        let period = Period { start, end };
        if end > MINUTES_PER_DAY || start >= MINUTES_PER_DAY {
            return Err(CalendarError::MalformedPeriod {
                text: period.to_string(),
                why: "times must lie between 00:00 and 24:00".into(),
            });
        }
        if end <= start {
            return Err(CalendarError::EmptyPeriod(period.to_string()));
        }
        Ok(period)
    }

    /// Parses `"09:00-13:00"` (spaces around the dash are tolerated; `24:00` is allowed as
    /// an end).
    pub fn parse(text: &str) -> Result<Period, CalendarError> {
        let malformed = |why: &str| CalendarError::MalformedPeriod {
            text: text.to_string(),
            why: why.to_string(),
        };
        let (start, end) = text
            .split_once('-')
            .ok_or_else(|| malformed("no '-' between start and end"))?;
        let start = parse_clock(start.trim()).map_err(|why| malformed(&why))?;
        let end = parse_clock(end.trim()).map_err(|why| malformed(&why))?;
        if start >= MINUTES_PER_DAY {
            return Err(malformed("a period cannot start at 24:00"));
        }
        if end <= start {
            return Err(CalendarError::EmptyPeriod(text.to_string()));
        }
        Ok(Period { start, end })
    }

    /// Start, in minutes after local midnight.
    pub fn start_minute(&self) -> u16 {
        self.start
    }

    /// End (exclusive), in minutes after local midnight; 1440 for `24:00`.
    pub fn end_minute(&self) -> u16 {
        self.end
    }

    fn overlaps(&self, other: &Period) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// `"HH:MM"` (or `"H:MM"`) to minutes after midnight; `24:00` gives 1440.
fn parse_clock(text: &str) -> Result<u16, String> {
    let (h, m) = text
        .split_once(':')
        .ok_or_else(|| format!("\"{text}\" is not a time HH:MM"))?;
    let digits = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || m.len() != 2 || !digits(m, 2) {
        return Err(format!("\"{text}\" is not a time HH:MM"));
    }
    let h: u16 = h
        .parse()
        .map_err(|_| format!("\"{text}\" is not a time HH:MM"))?;
    let m: u16 = m
        .parse()
        .map_err(|_| format!("\"{text}\" is not a time HH:MM"))?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("\"{text}\" is not a time between 00:00 and 24:00"));
    }
    Ok(h * 60 + m)
}

/// Short English name of a weekday as used in configuration keys (`mon`..`sun`).
pub fn weekday_key(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

/// The whole local day, used by calendars without configured hours.
static FULL_DAY: [Period; 1] = [Period {
    start: 0,
    end: MINUTES_PER_DAY,
}];

/// Incremental construction of a [`Calendar`], one period or holiday at a time, so that a
/// configuration reader can attach each error to the item that caused it.
#[derive(Debug, Clone)]
pub struct CalendarBuilder {
    tz: Tz,
    week: Option<[Vec<Period>; 7]>,
    holidays: Vec<NaiveDate>,
}

impl CalendarBuilder {
    /// A calendar in the given IANA time zone, open around the clock until hours are added.
    pub fn new(time_zone: &str) -> Result<CalendarBuilder, CalendarError> {
        let tz: Tz = time_zone
            .parse()
            .map_err(|_| CalendarError::UnknownTimeZone(time_zone.to_string()))?;
        Ok(CalendarBuilder::in_zone(tz))
    }

    /// A calendar in the given time zone, open around the clock until hours are added.
    pub fn in_zone(tz: Tz) -> CalendarBuilder {
        CalendarBuilder {
            tz,
            week: None,
            holidays: Vec::new(),
        }
    }

    /// Declares that opening hours are configured: from now on, days without periods are
    /// closed (a calendar whose hours are declared but empty never opens).
    pub fn with_hours(&mut self) -> &mut CalendarBuilder {
        self.week.get_or_insert_with(Default::default);
        self
    }

    /// Adds an opening period (`"09:00-13:00"`) to a weekday; refuses malformed periods and
    /// periods overlapping one already given for that day (touching is fine).
    pub fn add_period(&mut self, day: Weekday, text: &str) -> Result<Period, CalendarError> {
        let period = Period::parse(text)?;
        self.add(day, period)?;
        Ok(period)
    }

    /// Adds an already parsed period to a weekday (see [`CalendarBuilder::add_period`]).
    pub fn add(&mut self, day: Weekday, period: Period) -> Result<(), CalendarError> {
        let periods = &mut self.week.get_or_insert_with(Default::default)
            [day.num_days_from_monday() as usize];
        if let Some(other) = periods.iter().find(|p| p.overlaps(&period)) {
            return Err(CalendarError::Overlap {
                day: weekday_key(day).to_string(),
                first: other.to_string(),
                second: period.to_string(),
            });
        }
        let at = periods.partition_point(|p| p.start < period.start);
        periods.insert(at, period);
        Ok(())
    }

    /// Adds a holiday (`"2026-12-25"`, a date in the calendar's zone); refuses malformed and
    /// repeated dates.
    pub fn add_holiday(&mut self, text: &str) -> Result<NaiveDate, CalendarError> {
        let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| CalendarError::MalformedHoliday(text.to_string()))?;
        match self.holidays.binary_search(&date) {
            Ok(_) => Err(CalendarError::DuplicateHoliday(date.to_string())),
            Err(at) => {
                self.holidays.insert(at, date);
                Ok(date)
            }
        }
    }

    /// The finished calendar.
    pub fn build(self) -> Calendar {
        let never_opens = self
            .week
            .as_ref()
            .is_some_and(|week| week.iter().all(Vec::is_empty));
        Calendar {
            tz: self.tz,
            week: self.week,
            holidays: self.holidays,
            never_opens,
        }
    }
}

/// Opening hours in one time zone, with holidays. See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    tz: Tz,
    /// Periods per weekday, Monday first; `None` means around the clock.
    week: Option<[Vec<Period>; 7]>,
    /// Sorted, distinct.
    holidays: Vec<NaiveDate>,
    never_opens: bool,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar::always_open()
    }
}

impl Calendar {
    /// Open around the clock, every day (UTC, no holidays).
    pub fn always_open() -> Calendar {
        CalendarBuilder::in_zone(Tz::UTC).build()
    }

    /// Builds a calendar in one call: `hours` of `None` means around the clock; each entry
    /// of `Some(hours)` lists the periods of one weekday (days not listed are closed).
    pub fn new(
        time_zone: &str,
        hours: Option<&[(Weekday, &[&str])]>,
        holidays: &[&str],
    ) -> Result<Calendar, CalendarError> {
        let mut builder = CalendarBuilder::new(time_zone)?;
        if let Some(hours) = hours {
            builder.with_hours();
            for (day, periods) in hours {
                for period in *periods {
                    builder.add_period(*day, period)?;
                }
            }
        }
        for holiday in holidays {
            builder.add_holiday(holiday)?;
        }
        Ok(builder.build())
    }

    /// The calendar's time zone.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The IANA name of the calendar's time zone.
    pub fn time_zone_name(&self) -> &'static str {
        self.tz.name()
    }

    /// True when no hours are configured and there are no holidays: open at every instant.
    pub fn is_always_open(&self) -> bool {
        self.week.is_none() && self.holidays.is_empty()
    }

    /// True when hours are configured and every weekday is empty.
    pub fn never_opens(&self) -> bool {
        self.never_opens
    }

    /// The configured periods of a weekday (`None` when no hours are configured).
    pub fn periods(&self, day: Weekday) -> Option<&[Period]> {
        self.week
            .as_ref()
            .map(|week| week[day.num_days_from_monday() as usize].as_slice())
    }

    /// The holidays, sorted.
    pub fn holidays(&self) -> &[NaiveDate] {
        &self.holidays
    }

    /// Whether the team is open at `at`.
    pub fn is_open(&self, at: i64) -> bool {
        if self.is_always_open() {
            return true;
        }
        if self.never_opens {
            return false;
        }
        let at = clamp(at);
        let day = self.local_date(at);
        let mut date = day.pred_opt().unwrap_or(day);
        for _ in 0..3 {
            if self.intervals_on(date).any(|(s, e)| s <= at && at < e) {
                return true;
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        false
    }

    /// The first instant at or after `at` when the team is open: `at` itself when open,
    /// `None` when it never opens again.
    pub fn next_open(&self, at: i64) -> Option<i64> {
        if self.is_open(at) {
            return Some(at);
        }
        if self.never_opens {
            return None;
        }
        let at = clamp(at);
        let mut walk = DayWalk::new(self, at);
        while let Some(date) = walk.next_date() {
            let mut open = false;
            for (s, e) in self.intervals_on(date) {
                open = true;
                if e > at {
                    return Some(s.max(at));
                }
            }
            if walk.give_up(open) {
                return None;
            }
        }
        None
    }

    /// Open time, in microseconds, within `[from, to)` (0 when `to <= from`).
    pub fn open_micros_between(&self, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        if self.is_always_open() {
            return to.saturating_sub(from);
        }
        if self.never_opens {
            return 0;
        }
        let (from, to) = (clamp(from), clamp(to));
        let last = self.local_date(to).succ_opt().unwrap_or(NaiveDate::MAX);
        let mut date = self.local_date(from);
        date = date.pred_opt().unwrap_or(date);
        let mut total: i64 = 0;
        while date <= last {
            for (s, e) in self.intervals_on(date) {
                let overlap = e.min(to) - s.max(from);
                if overlap > 0 {
                    total += overlap;
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        total
    }

    /// The instant at which `duration` microseconds of open time have elapsed since `from`
    /// (an SLA deadline in business time). `from` itself for a duration of zero or less;
    /// the end of an opening period when the time runs out exactly there; `None` when the
    /// calendar never accumulates that much open time.
    pub fn add_open_time(&self, from: i64, duration: i64) -> Option<i64> {
        if duration <= 0 {
            return Some(from);
        }
        if self.is_always_open() {
            return from.checked_add(duration);
        }
        if self.never_opens {
            return None;
        }
        let from = clamp(from);
        let mut remaining = duration;
        let mut walk = DayWalk::new(self, from);
        while let Some(date) = walk.next_date() {
            let mut open = false;
            for (s, e) in self.intervals_on(date) {
                let s = s.max(from);
                if e <= s {
                    continue;
                }
                open = true;
                let len = e - s;
                if len >= remaining {
                    return Some(s + remaining);
                }
                remaining -= len;
            }
            if walk.give_up(open) {
                return None;
            }
        }
        None
    }

    /// `at` in the calendar's wall-clock time, e.g. `"Mon 09:00"`; with the date
    /// (`"Mon 2026-12-28 09:00"`) when `at` is six days or more after `now`.
    pub fn local_label(&self, at: i64, now: i64) -> String {
        let Some(dt) = DateTime::from_timestamp_micros(clamp(at)) else {
            return at.to_string();
        };
        let local = dt.with_timezone(&self.tz);
        if at.saturating_sub(now) >= 6 * 24 * 60 * MICROS_PER_MINUTE {
            local.format("%a %Y-%m-%d %H:%M").to_string()
        } else {
            local.format("%a %H:%M").to_string()
        }
    }

    fn local_date(&self, at: i64) -> NaiveDate {
        DateTime::from_timestamp_micros(at)
            .map(|dt| dt.with_timezone(&self.tz).date_naive())
            .unwrap_or(NaiveDate::MIN)
    }

    fn is_holiday(&self, date: NaiveDate) -> bool {
        !self.holidays.is_empty() && self.holidays.binary_search(&date).is_ok()
    }

    fn periods_on(&self, date: NaiveDate) -> &[Period] {
        if self.is_holiday(date) {
            return &[];
        }
        match &self.week {
            None => &FULL_DAY,
            Some(week) => &week[date.weekday().num_days_from_monday() as usize],
        }
    }

    /// The non-empty UTC intervals `[start, end)` of a local date, in order.
    fn intervals_on(&self, date: NaiveDate) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.periods_on(date).iter().filter_map(move |p| {
            let start = self.instant(date, p.start)?;
            let end = self.instant(date, p.end)?;
            (end > start).then_some((start, end))
        })
    }

    /// The instant at which the local wall clock of `date` shows `minute` (0..=1440), by
    /// the monotonic rule described in the module documentation.
    fn instant(&self, date: NaiveDate, minute: u16) -> Option<i64> {
        let naive = if minute >= MINUTES_PER_DAY {
            date.succ_opt()?.and_hms_opt(0, 0, 0)?
        } else {
            date.and_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?
        };
        if let Some(micros) = self.resolve(&naive) {
            return Some(micros);
        }
        // In a gap (spring forward): the first wall-clock minute after it that exists is
        // the transition instant. Gaps last at most a day (Samoa skipped 2011-12-30).
        let mut probe = naive;
        for _ in 0..(2 * MINUTES_PER_DAY) {
            probe = probe.checked_add_signed(chrono::TimeDelta::minutes(1))?;
            if let Some(micros) = self.resolve(&probe) {
                return Some(micros);
            }
        }
        Some(naive.and_utc().timestamp_micros())
    }

    fn resolve(&self, naive: &NaiveDateTime) -> Option<i64> {
        match self.tz.from_local_datetime(naive) {
            LocalResult::Single(dt) => Some(dt.timestamp_micros()),
            LocalResult::Ambiguous(first, second) => {
                Some(first.timestamp_micros().min(second.timestamp_micros()))
            }
            LocalResult::None => None,
        }
    }
}

/// Walks local dates forward from the day before an instant, and tells when it is safe to
/// conclude that no open time will ever come (enough closed days past the last holiday).
struct DayWalk<'a> {
    calendar: &'a Calendar,
    date: Option<NaiveDate>,
    closed_days: u32,
}

impl<'a> DayWalk<'a> {
    fn new(calendar: &'a Calendar, at: i64) -> DayWalk<'a> {
        let day = calendar.local_date(at);
        DayWalk {
            calendar,
            date: Some(day.pred_opt().unwrap_or(day)),
            closed_days: 0,
        }
    }

    fn next_date(&mut self) -> Option<NaiveDate> {
        let date = self.date?;
        self.date = date.succ_opt();
        Some(date)
    }

    /// Records whether the date just walked had open time; true when the walk should stop.
    fn give_up(&mut self, had_open_time: bool) -> bool {
        if had_open_time {
            self.closed_days = 0;
            return false;
        }
        let past_holidays = match (self.date, self.calendar.holidays.last()) {
            (Some(date), Some(last)) => date > *last,
            (Some(_), None) => true,
            (None, _) => return true,
        };
        if past_holidays {
            self.closed_days += 1;
        }
        self.closed_days > CLOSED_DAYS_LIMIT
    }
}

fn clamp(at: i64) -> i64 {
    at.clamp(MIN_MICROS, MAX_MICROS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
}
