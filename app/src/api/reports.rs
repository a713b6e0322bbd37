//! Reports in GraphQL: `report(filter)` reads the rollups of the reporting projection
//! (summary with the previous period, time series, breakdowns, heatmap, distributions).
//! Supervisors and admins read every figure; an agent reads only their own.

use super::{api, principal};
use crate::clock::micros_to_datetime;
use crate::domain::{Permission, SECOND_MICROS};
use crate::error::{ApiError, ErrorCode};
use crate::reports::ReportError;
use crate::reports::figures::{self, DurationFigures, Figures, Interval, Scope, Summary};
use crate::reports::fold::metric;
use crate::reports::hist;
use crate::reports::kpi::KpiState;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::Stream;
use tokio::sync::broadcast;

/// Longest period a report covers.
const MAX_DAYS: i64 = 400;
/// Largest breakdown page.
const MAX_PAGE: i32 = 500;

/// Which conversations' figures: a period, and at most one of the dimension lists.
#[derive(InputObject, Clone)]
pub struct ReportFilter {
    /// Inclusive; rounded down to the hour.
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    /// The projection's time zone (`[reports] time_zone`); another zone is refused.
    pub time_zone: Option<String>,
    /// Durations in business hours (`[reports] business_days`, `business_hours`).
    #[graphql(default)]
    pub business_hours: bool,
    pub team_ids: Option<Vec<ID>>,
    pub agent_ids: Option<Vec<ID>>,
    pub channel_ids: Option<Vec<String>>,
    /// `low`, `medium`, `high`, `urgent`.
    pub priorities: Option<Vec<String>>,
    pub intents: Option<Vec<String>>,
    pub languages: Option<Vec<String>>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReportDimension {
    Team,
    Agent,
    Channel,
    Priority,
    Intent,
    Language,
}

impl ReportDimension {
    fn key(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Agent => "agent",
            Self::Channel => "channel",
            Self::Priority => "priority",
            Self::Intent => "intent",
            Self::Language => "language",
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReportInterval {
    Hour,
    Day,
    Week,
    Month,
}

impl From<ReportInterval> for Interval {
    fn from(interval: ReportInterval) -> Self {
        match interval {
            ReportInterval::Hour => Interval::Hour,
            ReportInterval::Day => Interval::Day,
            ReportInterval::Week => Interval::Week,
            ReportInterval::Month => Interval::Month,
        }
    }
}

/// A series' metric.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReportMetric {
    ConversationsCreated,
    Resolutions,
    Reopened,
    Escalated,
    FirstResponseTime,
    ReplyTime,
    ResolutionTime,
    CsatAnswers,
}

impl ReportMetric {
    fn key(self) -> &'static str {
        match self {
            Self::ConversationsCreated => metric::CREATED,
            Self::Resolutions => metric::RESOLVED,
            Self::Reopened => metric::REOPENED,
            Self::Escalated => metric::ESCALATED,
            Self::FirstResponseTime => metric::FIRST_RESPONSE,
            Self::ReplyTime => metric::REPLY,
            Self::ResolutionTime => metric::RESOLUTION,
            Self::CsatAnswers => metric::CSAT,
        }
    }
}

/// A duration metric's distribution.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DurationMetric {
    FirstResponseTime,
    ReplyTime,
    ResolutionTime,
}

/// A duration: how many, average, median and 90th percentile (the last two read from a
/// log-scale histogram, within 19 %).
#[derive(SimpleObject, Clone, Copy)]
pub struct DurationStats {
    pub count: i64,
    pub average_seconds: Option<f64>,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

impl From<DurationFigures> for DurationStats {
    fn from(d: DurationFigures) -> Self {
        Self {
            count: d.count,
            average_seconds: d.average.map(figures::seconds),
            median_seconds: d.median.map(figures::seconds),
            p90_seconds: d.p90.map(figures::seconds),
        }
    }
}

/// The figures of one period. Rates are shares between 0 and 1, none when nothing was
/// there to divide by.
pub struct ReportSummary(Summary);

#[Object]
impl ReportSummary {
    async fn conversations_created(&self) -> i64 {
        self.0.created
    }
    /// Resolution events (a case resolved twice counts twice).
    async fn resolutions(&self) -> i64 {
        self.0.resolutions
    }
    async fn reopened(&self) -> i64 {
        self.0.reopened
    }
    /// Reopenings per resolution.
    async fn reopen_rate(&self) -> Option<f64> {
        self.0.reopen_rate()
    }
    async fn escalations(&self) -> i64 {
        self.0.escalated
    }
    /// Escalations per conversation created.
    async fn escalation_rate(&self) -> Option<f64> {
        self.0.escalation_rate()
    }
    /// Creation to the first reply by a person.
    async fn first_response_time(&self) -> DurationStats {
        self.0.first_response.into()
    }
    /// Every customer wait, to the reply by a person that ended it.
    async fn reply_time(&self) -> DurationStats {
        self.0.reply.into()
    }
    /// Creation to each resolution.
    async fn resolution_time(&self) -> DurationStats {
        self.0.resolution.into()
    }
    /// First responses within their SLA, of those decided (met / (met + breached)).
    async fn sla_first_response_met(&self) -> Option<f64> {
        self.0.sla_first_response_met_share()
    }
    async fn sla_resolution_met(&self) -> Option<f64> {
        self.0.sla_resolution_met_share()
    }
    /// Resolutions of cases no person replied to.
    async fn automation_rate(&self) -> Option<f64> {
        self.0.automation_rate()
    }
    /// Resolutions after one reply by a person, never reopened.
    async fn one_touch_rate(&self) -> Option<f64> {
        self.0.one_touch_rate()
    }
    /// Resolutions made by the system (the case clock), not a person.
    async fn auto_closure_rate(&self) -> Option<f64> {
        self.0.auto_closure_rate()
    }
    async fn csat_surveys_sent(&self) -> i64 {
        self.0.csat_sent
    }
    async fn csat_answers(&self) -> i64 {
        self.0.csat_answers
    }
    /// Average score (1 to 5).
    async fn csat_average(&self) -> Option<f64> {
        self.0.csat_average()
    }
    /// Answers of 4 or 5.
    async fn csat_score(&self) -> Option<f64> {
        self.0.csat_positive_share()
    }
    async fn csat_response_rate(&self) -> Option<f64> {
        self.0.csat_response_rate()
    }
    async fn held_messages(&self) -> i64 {
        self.0.held
    }
    /// Held messages rejected, of those decided.
    async fn held_override_rate(&self) -> Option<f64> {
        self.0.held_override_rate()
    }
}

#[derive(SimpleObject)]
pub struct ReportPoint {
    pub start: DateTime<Utc>,
    pub count: i64,
    /// Durations: average in seconds; CSAT: average score.
    pub average: Option<f64>,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

#[derive(SimpleObject)]
pub struct ReportSlice {
    /// The dimension's value (an id for teams and agents; `none` when unknown).
    pub value: String,
    pub summary: ReportSummaryBox,
}

#[derive(SimpleObject)]
#[graphql(name = "ReportBreakdownPage")]
pub struct ReportBreakdownPage {
    pub slices: Vec<ReportSlice>,
    /// Pass as `after` for the next page; none on the last page.
    pub next: Option<String>,
}

/// A `ReportSummary` by value (for lists).
pub struct ReportSummaryBox(Summary);

#[Object(name = "ReportSliceSummary")]
impl ReportSummaryBox {
    async fn conversations_created(&self) -> i64 {
        self.0.created
    }
    async fn resolutions(&self) -> i64 {
        self.0.resolutions
    }
    async fn first_response_time(&self) -> DurationStats {
        self.0.first_response.into()
    }
    async fn resolution_time(&self) -> DurationStats {
        self.0.resolution.into()
    }
    async fn sla_first_response_met(&self) -> Option<f64> {
        self.0.sla_first_response_met_share()
    }
    async fn csat_score(&self) -> Option<f64> {
        self.0.csat_positive_share()
    }
    async fn reopen_rate(&self) -> Option<f64> {
        self.0.reopen_rate()
    }
}

#[derive(SimpleObject)]
pub struct HeatmapCell {
    /// 0 = Monday.
    pub weekday: i32,
    pub hour: i32,
    pub conversations: i64,
}

#[derive(SimpleObject)]
pub struct DistributionBucket {
    pub from_seconds: f64,
    /// None for the last, open-ended bucket.
    pub to_seconds: Option<f64>,
    pub count: i64,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum KpiLevel {
    OnTarget,
    /// Missed the target, not yet at the warning level.
    OffTarget,
    Warning,
    Action,
}

impl From<KpiState> for KpiLevel {
    fn from(state: KpiState) -> Self {
        match state {
            KpiState::OnTarget => Self::OnTarget,
            KpiState::OffTarget => Self::OffTarget,
            KpiState::Warning => Self::Warning,
            KpiState::Action => Self::Action,
        }
    }
}

/// A figure against its operating target (`config/kpi.toml`).
#[derive(SimpleObject)]
pub struct KpiHealth {
    pub kpi: String,
    /// The summary figure it reads (`sla_first_response_met`, `csat_score`...).
    pub metric: String,
    pub value: f64,
    pub state: KpiLevel,
    pub target: f64,
    pub warning: f64,
    pub action: f64,
}

/// A KPI entering a state, over the KPI file's rolling window.
#[derive(SimpleObject)]
pub struct KpiStateChange {
    pub kpi: String,
    /// None at the first evaluation after a start.
    pub from: Option<KpiLevel>,
    pub to: KpiLevel,
    pub value: f64,
    pub at: DateTime<Utc>,
}

/// A report over one scope.
pub struct Report {
    scope: Scope,
}

fn report_error(error: ReportError) -> ApiError {
    tracing::error!(error = %error, "A report failed.");
    ApiError::new(ErrorCode::Unavailable, "the report could not be read")
}

fn figures<'a>(ctx: &Context<'a>) -> &'a Figures {
    &api(ctx).figures
}

#[Object]
impl Report {
    /// The last event folded into these figures.
    async fn as_of_event_id(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(figures(ctx).as_of().await.map_err(report_error)?)
    }

    async fn summary(&self, ctx: &Context<'_>) -> async_graphql::Result<ReportSummary> {
        let s = figures(ctx)
            .summary(&self.scope)
            .await
            .map_err(report_error)?;
        Ok(ReportSummary(s))
    }

    /// Each KPI with a figure in this scope, against its target.
    async fn health(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<KpiHealth>> {
        let figures = figures(ctx);
        let summary = figures.summary(&self.scope).await.map_err(report_error)?;
        let kpis = figures.kpis();
        Ok(kpis
            .evaluate(&summary)
            .into_iter()
            .filter_map(|(name, value, state)| {
                let kpi = kpis.kpis.get(&name)?;
                Some(KpiHealth {
                    metric: kpi.metric.clone(),
                    kpi: name,
                    value,
                    state: state.into(),
                    target: kpi.target,
                    warning: kpi.warning,
                    action: kpi.action,
                })
            })
            .collect())
    }

    /// The same figures over the period of the same length just before.
    async fn previous_summary(&self, ctx: &Context<'_>) -> async_graphql::Result<ReportSummary> {
        let s = figures(ctx)
            .summary(&self.scope.previous())
            .await
            .map_err(report_error)?;
        Ok(ReportSummary(s))
    }

    /// One metric per hour, day, week (from Monday) or month of the report's time zone;
    /// steps without data are left out.
    async fn time_series(
        &self,
        ctx: &Context<'_>,
        metric: ReportMetric,
        interval: ReportInterval,
    ) -> async_graphql::Result<Vec<ReportPoint>> {
        let points = figures(ctx)
            .series(&self.scope, metric.key(), interval.into())
            .await
            .map_err(report_error)?;
        let duration = fold_is_duration(metric);
        let averaged = duration || metric == ReportMetric::CsatAnswers;
        let scale = if duration { SECOND_MICROS as f64 } else { 1.0 };
        Ok(points
            .into_iter()
            .map(|p| {
                let stats = DurationFigures::of(&p.cell);
                ReportPoint {
                    start: micros_to_datetime(p.start),
                    count: p.cell.count,
                    average: (averaged && p.cell.count > 0)
                        .then(|| p.cell.total as f64 / p.cell.count as f64 / scale),
                    median_seconds: stats.median.filter(|_| duration).map(figures::seconds),
                    p90_seconds: stats.p90.filter(|_| duration).map(figures::seconds),
                }
            })
            .collect())
    }

    /// The summary of each step as CSV (one header line, then one line per step with
    /// data), for a spreadsheet or a BI tool.
    async fn export_csv(
        &self,
        ctx: &Context<'_>,
        interval: ReportInterval,
    ) -> async_graphql::Result<String> {
        Ok(figures(ctx)
            .export_csv(&self.scope, interval.into())
            .await
            .map_err(report_error)?)
    }

    /// The summary per value of a dimension, ordered by value.
    async fn breakdown(
        &self,
        ctx: &Context<'_>,
        by: ReportDimension,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<ReportBreakdownPage> {
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("first must be between 1 and {MAX_PAGE}"),
            )
            .into());
        }
        let first = first as usize;
        let mut slices = figures(ctx)
            .breakdown(&self.scope, by.key(), first + 1, after.as_deref())
            .await
            .map_err(report_error)?;
        let more = slices.len() > first;
        slices.truncate(first);
        Ok(ReportBreakdownPage {
            next: more
                .then(|| slices.last().map(|s| s.value.clone()))
                .flatten(),
            slices: slices
                .into_iter()
                .map(|s| ReportSlice {
                    value: s.value,
                    summary: ReportSummaryBox(s.summary),
                })
                .collect(),
        })
    }

    /// Conversations created per weekday and hour of the report's time zone (168 cells).
    async fn heatmap(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HeatmapCell>> {
        let grid = figures(ctx)
            .heatmap(&self.scope)
            .await
            .map_err(report_error)?;
        Ok(grid
            .iter()
            .enumerate()
            .flat_map(|(day, hours)| {
                hours.iter().enumerate().map(move |(hour, &n)| HeatmapCell {
                    weekday: day as i32,
                    hour: hour as i32,
                    conversations: n,
                })
            })
            .collect())
    }

    /// A duration's histogram (log-scale buckets a factor √2 apart; empty ones left out).
    async fn distribution(
        &self,
        ctx: &Context<'_>,
        metric: DurationMetric,
    ) -> async_graphql::Result<Vec<DistributionBucket>> {
        let key = match metric {
            DurationMetric::FirstResponseTime => metric::FIRST_RESPONSE,
            DurationMetric::ReplyTime => metric::REPLY,
            DurationMetric::ResolutionTime => metric::RESOLUTION,
        };
        let histogram = figures(ctx)
            .distribution(&self.scope, key)
            .await
            .map_err(report_error)?;
        Ok(histogram
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(bucket, &count)| DistributionBucket {
                from_seconds: figures::seconds(hist::lower_bound(bucket)),
                to_seconds: hist::upper_bound(bucket).map(figures::seconds),
                count,
            })
            .collect())
    }
}

fn fold_is_duration(metric: ReportMetric) -> bool {
    crate::reports::fold::is_duration(metric.key())
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, message.into())
}

/// The filter as a scope the rollups can answer, for this caller.
fn scope_of(ctx: &Context<'_>, filter: ReportFilter) -> Result<Scope, ApiError> {
    let who = principal(ctx)?;
    who.require(Permission::ReadConversations)?;
    let calendar = figures(ctx).calendar();
    if let Some(zone) = &filter.time_zone
        && zone != calendar.zone.name()
    {
        return Err(invalid(format!(
            "the reports are kept in {}; timeZone must be that zone",
            calendar.zone.name()
        )));
    }
    let hour = 3600 * SECOND_MICROS;
    let from = filter.from.timestamp_micros().div_euclid(hour) * hour;
    let to = filter.to.timestamp_micros();
    if to <= from {
        return Err(invalid("to must be after from"));
    }
    if to - from > MAX_DAYS * 24 * hour {
        return Err(invalid(format!("a report covers at most {MAX_DAYS} days")));
    }
    let ids = |v: Option<Vec<ID>>| v.map(|v| v.into_iter().map(|id| id.to_string()).collect());
    let lists: Vec<(&'static str, Option<Vec<String>>)> = vec![
        ("team", ids(filter.team_ids)),
        ("agent", ids(filter.agent_ids)),
        ("channel", filter.channel_ids),
        ("priority", filter.priorities),
        ("intent", filter.intents),
        ("language", filter.languages),
    ];
    let mut given = lists
        .into_iter()
        .filter_map(|(dim, values)| Some((dim, values?)))
        .collect::<Vec<_>>();
    if given.len() > 1 {
        return Err(invalid(
            "filter by at most one of teamIds, agentIds, channelIds, priorities, intents, languages",
        ));
    }
    let mut scope = Scope {
        business_hours: filter.business_hours,
        ..Scope::everything(from, to)
    };
    if let Some((dim, values)) = given.pop() {
        if values.is_empty() {
            return Err(invalid(format!("the {dim} list is empty")));
        }
        scope.dim = dim;
        scope.values = values;
    }
    if !who.role.allows(Permission::OverrideOwnership) {
        // Agents read their own figures only.
        let Some(me) = who.agent_id.map(|id| id.to_string()) else {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only supervisors, admins and agents read reports",
            ));
        };
        match scope.dim {
            "all" => {
                scope.dim = "agent";
                scope.values = vec![me];
            }
            "agent" if scope.values == [me.clone()] => {}
            _ => {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "agents read their own figures only (agentIds: [your id], or no filter)",
                ));
            }
        }
    }
    Ok(scope)
}

#[derive(Default)]
pub struct ReportSubscription;

#[Subscription]
impl ReportSubscription {
    /// KPI state changes (supervisors and admins), as the projection notices them.
    async fn kpi_state_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = KpiStateChange>> {
        principal(ctx)?.require(Permission::OverrideOwnership)?;
        let receiver = figures(ctx).kpi_changes();
        Ok(futures::stream::unfold(
            receiver,
            |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(change) => {
                            let item = KpiStateChange {
                                kpi: change.kpi,
                                from: change.from.map(Into::into),
                                to: change.to.into(),
                                value: change.value,
                                at: micros_to_datetime(change.at),
                            };
                            return Some((item, receiver));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}

#[derive(Default)]
pub struct ReportQuery;

#[Object]
impl ReportQuery {
    /// Figures from the reporting projection. See `ReportFilter`.
    async fn report(
        &self,
        ctx: &Context<'_>,
        filter: ReportFilter,
    ) -> async_graphql::Result<Report> {
        Ok(Report {
            scope: scope_of(ctx, filter)?,
        })
    }
}
