//! Figures read from the rollups: a summary of a period, time series, breakdowns by a
//! dimension, the weekly heatmap of arrivals and duration distributions.

use super::fold::{DIMENSIONS, metric};
use super::hist::{self, BUCKETS};
use super::kpi::{KpiFile, KpiState};
use super::{ReportCalendar, ReportError};
use crate::domain::{Micros, SECOND_MICROS};
use crate::store::Store;
use crate::store::reports::{CellSum, RollupCell, RollupQuery};
use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Which part of the figures a report covers: a period and at most one dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub from: Micros,
    pub to: Micros,
    /// `all`, or a dimension of [`DIMENSIONS`] restricted to `values`.
    pub dim: &'static str,
    pub values: Vec<String>,
    /// Durations counted in business hours.
    pub business_hours: bool,
}

impl Scope {
    pub fn everything(from: Micros, to: Micros) -> Scope {
        Scope {
            from,
            to,
            dim: "all",
            values: Vec::new(),
            business_hours: false,
        }
    }

    /// The dimension's name as stored, if it is one.
    pub fn dimension(name: &str) -> Option<&'static str> {
        DIMENSIONS.iter().copied().find(|d| *d == name)
    }

    /// The same scope over the period just before.
    pub fn previous(&self) -> Scope {
        Scope {
            from: self.from - (self.to - self.from),
            to: self.from,
            ..self.clone()
        }
    }

    fn query(&self, metrics: &[&str], by_value: bool, by_hour: bool) -> RollupQuery {
        RollupQuery {
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
            dim: self.dim.to_string(),
            values: self.values.clone(),
            from: self.from,
            to: self.to,
            by_value,
            by_hour,
        }
    }

    fn duration_metric(&self, calendar_metric: &'static str) -> &'static str {
        if !self.business_hours {
            return calendar_metric;
        }
        match calendar_metric {
            metric::FIRST_RESPONSE => metric::FIRST_RESPONSE_BH,
            metric::REPLY => metric::REPLY_BH,
            metric::RESOLUTION => metric::RESOLUTION_BH,
            other => other,
        }
    }
}

/// Count, average, median and 90th percentile of a duration.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DurationFigures {
    pub count: i64,
    pub average: Option<Micros>,
    pub median: Option<Micros>,
    pub p90: Option<Micros>,
}

impl DurationFigures {
    pub fn of(cell: &RollupCell) -> Self {
        Self {
            count: cell.count,
            average: (cell.count > 0).then(|| cell.total / cell.count),
            median: hist::quantile(&cell.histogram, 0.5),
            p90: hist::quantile(&cell.histogram, 0.9),
        }
    }
}

/// The headline figures of a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub created: i64,
    pub resolutions: i64,
    pub reopened: i64,
    pub escalated: i64,
    pub first_response: DurationFigures,
    pub reply: DurationFigures,
    pub resolution: DurationFigures,
    pub sla_first_response_met: i64,
    pub sla_first_response_breached: i64,
    pub sla_resolution_met: i64,
    pub sla_resolution_breached: i64,
    pub resolved_unassisted: i64,
    pub resolved_one_touch: i64,
    pub resolved_auto: i64,
    pub csat_sent: i64,
    pub csat_answers: i64,
    pub csat_score_total: i64,
    pub csat_positive: i64,
    pub held: i64,
    pub held_approved: i64,
    pub held_rejected: i64,
}

/// `part / whole`, none when the whole is zero.
pub fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Summary {
    pub fn from_cells(scope: &Scope, cells: &BTreeMap<String, RollupCell>) -> Summary {
        let get = |m: &str| cells.get(m).copied().unwrap_or_default();
        let count = |m: &str| get(m).count;
        Summary {
            created: count(metric::CREATED),
            resolutions: count(metric::RESOLVED),
            reopened: count(metric::REOPENED),
            escalated: count(metric::ESCALATED),
            first_response: DurationFigures::of(
                &get(scope.duration_metric(metric::FIRST_RESPONSE)),
            ),
            reply: DurationFigures::of(&get(scope.duration_metric(metric::REPLY))),
            resolution: DurationFigures::of(&get(scope.duration_metric(metric::RESOLUTION))),
            sla_first_response_met: count(metric::SLA_MET_FIRST_RESPONSE),
            sla_first_response_breached: count(metric::SLA_BREACHED_FIRST_RESPONSE),
            sla_resolution_met: count(metric::SLA_MET_RESOLUTION),
            sla_resolution_breached: count(metric::SLA_BREACHED_RESOLUTION),
            resolved_unassisted: count(metric::RESOLVED_UNASSISTED),
            resolved_one_touch: count(metric::RESOLVED_ONE_TOUCH),
            resolved_auto: count(metric::RESOLVED_AUTO),
            csat_sent: count(metric::CSAT_SENT),
            csat_answers: count(metric::CSAT),
            csat_score_total: get(metric::CSAT).total,
            csat_positive: count(metric::CSAT_POSITIVE),
            held: count(metric::HELD),
            held_approved: count(metric::HELD_APPROVED),
            held_rejected: count(metric::HELD_REJECTED),
        }
    }

    pub fn reopen_rate(&self) -> Option<f64> {
        share(self.reopened, self.resolutions)
    }
    pub fn escalation_rate(&self) -> Option<f64> {
        share(self.escalated, self.created)
    }
    pub fn sla_first_response_met_share(&self) -> Option<f64> {
        share(
            self.sla_first_response_met,
            self.sla_first_response_met + self.sla_first_response_breached,
        )
    }
    pub fn sla_resolution_met_share(&self) -> Option<f64> {
        share(
            self.sla_resolution_met,
            self.sla_resolution_met + self.sla_resolution_breached,
        )
    }
    pub fn automation_rate(&self) -> Option<f64> {
        share(self.resolved_unassisted, self.resolutions)
    }
    pub fn one_touch_rate(&self) -> Option<f64> {
        share(self.resolved_one_touch, self.resolutions)
    }
    pub fn auto_closure_rate(&self) -> Option<f64> {
        share(self.resolved_auto, self.resolutions)
    }
    pub fn csat_average(&self) -> Option<f64> {
        share(self.csat_score_total, self.csat_answers)
    }
    pub fn csat_positive_share(&self) -> Option<f64> {
        share(self.csat_positive, self.csat_answers)
    }
    pub fn csat_response_rate(&self) -> Option<f64> {
        share(self.csat_answers, self.csat_sent)
    }
    /// Held messages a person edited away or rejected, of those decided.
    pub fn held_override_rate(&self) -> Option<f64> {
        share(self.held_rejected, self.held_approved + self.held_rejected)
    }
}

/// Every metric a summary reads.
const SUMMARY_METRICS: [&str; 23] = [
    metric::CREATED,
    metric::RESOLVED,
    metric::REOPENED,
    metric::ESCALATED,
    metric::FIRST_RESPONSE,
    metric::FIRST_RESPONSE_BH,
    metric::REPLY,
    metric::REPLY_BH,
    metric::RESOLUTION,
    metric::RESOLUTION_BH,
    metric::SLA_MET_FIRST_RESPONSE,
    metric::SLA_BREACHED_FIRST_RESPONSE,
    metric::SLA_MET_RESOLUTION,
    metric::SLA_BREACHED_RESOLUTION,
    metric::RESOLVED_UNASSISTED,
    metric::RESOLVED_ONE_TOUCH,
    metric::RESOLVED_AUTO,
    metric::CSAT_SENT,
    metric::CSAT,
    metric::CSAT_POSITIVE,
    metric::HELD,
    metric::HELD_APPROVED,
    metric::HELD_REJECTED,
];

/// The columns of an export.
pub const CSV_HEADER: &str = "period_start,conversations_created,resolutions,reopened,escalations,\
first_responses,first_response_avg_s,first_response_median_s,first_response_p90_s,\
reply_avg_s,reply_median_s,resolution_avg_s,resolution_median_s,resolution_p90_s,\
sla_first_response_met,sla_resolution_met,automation_rate,one_touch_rate,csat_score,\
csat_average,csat_response_rate,held_messages,held_override_rate";

/// Lengths of a time series' steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    Week,
    Month,
}

/// One step of a time series: its start, and the metric's cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub start: Micros,
    pub cell: RollupCell,
}

/// One value of a breakdown and its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub value: String,
    pub summary: Summary,
}

/// A KPI entering a state (the first evaluation counts as a change too).
#[derive(Debug, Clone, PartialEq)]
pub struct KpiChange {
    pub kpi: String,
    pub from: Option<KpiState>,
    pub to: KpiState,
    pub value: f64,
    pub at: Micros,
}

/// Reads figures from the rollups, and watches the KPIs.
#[derive(Clone)]
pub struct Figures {
    store: Store,
    calendar: ReportCalendar,
    kpis: Arc<KpiFile>,
    changes: broadcast::Sender<KpiChange>,
}

fn by_metric(rows: Vec<CellSum>) -> BTreeMap<String, RollupCell> {
    rows.into_iter().map(|r| (r.metric, r.cell)).collect()
}

impl Figures {
    pub fn new(store: Store, calendar: ReportCalendar, kpis: KpiFile) -> Self {
        Self {
            store,
            calendar,
            kpis: Arc::new(kpis),
            changes: broadcast::channel(256).0,
        }
    }

    pub fn kpis(&self) -> &KpiFile {
        &self.kpis
    }

    /// KPI state changes as they are noticed.
    pub fn kpi_changes(&self) -> broadcast::Receiver<KpiChange> {
        self.changes.subscribe()
    }

    /// Evaluates the KPIs over the window ending at `now`; publishes (and counts on
    /// /metrics) each one whose state differs from `last`, which it updates.
    pub async fn watch_kpis(
        &self,
        now: Micros,
        last: &mut BTreeMap<String, KpiState>,
    ) -> Result<Vec<KpiChange>, ReportError> {
        let hour = 3600 * SECOND_MICROS;
        let to = (now.div_euclid(hour) + 1) * hour;
        let scope = Scope::everything(to - i64::from(self.kpis.window_hours) * hour, to);
        let summary = self.summary(&scope).await?;
        let metrics = crate::telemetry::metrics();
        let mut changes = Vec::new();
        for (kpi, value, state) in self.kpis.evaluate(&summary) {
            metrics
                .kpi_state
                .with_label_values(&[kpi.as_str()])
                .set(state.level());
            let from = last.get(&kpi).copied();
            if from == Some(state) {
                continue;
            }
            last.insert(kpi.clone(), state);
            metrics
                .kpi_state_changes
                .with_label_values(&[kpi.as_str(), state.as_str()])
                .inc();
            let change = KpiChange {
                kpi,
                from,
                to: state,
                value,
                at: now,
            };
            let _ = self.changes.send(change.clone());
            changes.push(change);
        }
        Ok(changes)
    }

    pub fn calendar(&self) -> &ReportCalendar {
        &self.calendar
    }

    /// The last event folded.
    pub async fn as_of(&self) -> Result<i64, ReportError> {
        Ok(self.store.report_checkpoint().await?)
    }

    pub async fn summary(&self, scope: &Scope) -> Result<Summary, ReportError> {
        let rows = self
            .store
            .rollup_sums(&scope.query(&SUMMARY_METRICS, false, false))
            .await?;
        Ok(Summary::from_cells(scope, &by_metric(rows)))
    }

    /// A metric step by step (steps without data are left out).
    pub async fn series(
        &self,
        scope: &Scope,
        metric: &'static str,
        interval: Interval,
    ) -> Result<Vec<Point>, ReportError> {
        let metric = scope.duration_metric(metric);
        let rows = self
            .store
            .rollup_sums(&scope.query(&[metric], false, true))
            .await?;
        let mut steps: BTreeMap<Micros, RollupCell> = BTreeMap::new();
        for row in rows {
            steps
                .entry(self.step_start(row.hour, interval))
                .or_default()
                .merge(&row.cell);
        }
        Ok(steps
            .into_iter()
            .map(|(start, cell)| Point { start, cell })
            .collect())
    }

    /// The summary of each step of the scope (steps without data are left out).
    pub async fn summaries(
        &self,
        scope: &Scope,
        interval: Interval,
    ) -> Result<Vec<(Micros, Summary)>, ReportError> {
        let rows = self
            .store
            .rollup_sums(&scope.query(&SUMMARY_METRICS, false, true))
            .await?;
        let mut steps: BTreeMap<Micros, BTreeMap<String, RollupCell>> = BTreeMap::new();
        for row in rows {
            steps
                .entry(self.step_start(row.hour, interval))
                .or_default()
                .entry(row.metric)
                .or_default()
                .merge(&row.cell);
        }
        Ok(steps
            .into_iter()
            .map(|(start, cells)| (start, Summary::from_cells(scope, &cells)))
            .collect())
    }

    /// The summaries of [`Figures::summaries`] as CSV, one line per step, with a header.
    pub async fn export_csv(
        &self,
        scope: &Scope,
        interval: Interval,
    ) -> Result<String, ReportError> {
        let mut out = String::from(CSV_HEADER);
        out.push('\n');
        for (start, s) in self.summaries(scope, interval).await? {
            let started = self
                .calendar
                .zone
                .timestamp_micros(start)
                .single()
                .map_or_else(String::new, |t| t.to_rfc3339());
            let opt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.4}"));
            let secs =
                |v: Option<Micros>| v.map_or_else(String::new, |v| format!("{:.1}", seconds(v)));
            let line = [
                started,
                s.created.to_string(),
                s.resolutions.to_string(),
                s.reopened.to_string(),
                s.escalated.to_string(),
                s.first_response.count.to_string(),
                secs(s.first_response.average),
                secs(s.first_response.median),
                secs(s.first_response.p90),
                secs(s.reply.average),
                secs(s.reply.median),
                secs(s.resolution.average),
                secs(s.resolution.median),
                secs(s.resolution.p90),
                opt(s.sla_first_response_met_share()),
                opt(s.sla_resolution_met_share()),
                opt(s.automation_rate()),
                opt(s.one_touch_rate()),
                opt(s.csat_positive_share()),
                opt(s.csat_average()),
                opt(s.csat_response_rate()),
                s.held.to_string(),
                opt(s.held_override_rate()),
            ];
            out.push_str(&line.join(","));
            out.push('\n');
        }
        Ok(out)
    }

    /// The local start of the hour, day, week (Monday) or month holding `hour`.
    fn step_start(&self, hour: Micros, interval: Interval) -> Micros {
        let zone = self.calendar.zone;
        let Some(local) = zone.timestamp_micros(hour).single() else {
            return hour;
        };
        let date = local.date_naive();
        let day = match interval {
            Interval::Hour => return hour,
            Interval::Day => date,
            Interval::Week => {
                date - chrono::Days::new(u64::from(date.weekday().num_days_from_monday()))
            }
            Interval::Month => {
                NaiveDate::from_ymd_opt(date.year(), date.month(), 1).unwrap_or(date)
            }
        };
        day.and_hms_opt(0, 0, 0)
            .and_then(|t| zone.from_local_datetime(&t).earliest())
            .map_or(hour, |t| t.timestamp_micros())
    }

    /// The summary per value of `dim` (within the scope's own restriction when it is the
    /// same dimension), ordered by value, `first` after `after`.
    pub async fn breakdown(
        &self,
        scope: &Scope,
        dim: &'static str,
        first: usize,
        after: Option<&str>,
    ) -> Result<Vec<Slice>, ReportError> {
        let scope = if scope.dim == dim {
            scope.clone()
        } else {
            Scope {
                dim,
                values: Vec::new(),
                ..scope.clone()
            }
        };
        let rows = self
            .store
            .rollup_sums(&scope.query(&SUMMARY_METRICS, true, false))
            .await?;
        let mut values: BTreeMap<String, BTreeMap<String, RollupCell>> = BTreeMap::new();
        for row in rows {
            values
                .entry(row.value)
                .or_default()
                .insert(row.metric, row.cell);
        }
        Ok(values
            .into_iter()
            .filter(|(value, _)| after.is_none_or(|a| value.as_str() > a))
            .take(first)
            .map(|(value, cells)| Slice {
                summary: Summary::from_cells(&scope, &cells),
                value,
            })
            .collect())
    }

    /// Conversations created per local weekday (Monday = 0) and hour.
    pub async fn heatmap(&self, scope: &Scope) -> Result<[[i64; 24]; 7], ReportError> {
        let rows = self
            .store
            .rollup_sums(&scope.query(&[metric::CREATED], false, true))
            .await?;
        let mut grid = [[0; 24]; 7];
        for row in rows {
            if let Some(local) = self.calendar.zone.timestamp_micros(row.hour).single() {
                let day = local.weekday().num_days_from_monday() as usize;
                grid[day][local.hour() as usize] += row.cell.count;
            }
        }
        Ok(grid)
    }

    /// A duration's histogram over the scope.
    pub async fn distribution(
        &self,
        scope: &Scope,
        metric: &'static str,
    ) -> Result<[i64; BUCKETS], ReportError> {
        let metric = scope.duration_metric(metric);
        let rows = self
            .store
            .rollup_sums(&scope.query(&[metric], false, false))
            .await?;
        Ok(rows.first().map_or([0; BUCKETS], |row| row.cell.histogram))
    }
}

/// Seconds, for the API.
pub fn seconds(micros: Micros) -> f64 {
    micros as f64 / SECOND_MICROS as f64
}
