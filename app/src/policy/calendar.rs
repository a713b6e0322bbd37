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
mod tests;
