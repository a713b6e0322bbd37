//! Reports: a projection of the event log into hourly rollups, and the figures read from
//! them.
//!
//! The [`Projection`] folds events (never the mutable conversation rows) in id order:
//! it reads a batch after its checkpoint, folds it with the stored per-case state
//! ([`fold`]), and hands the changed case states, the rollup increments and the new
//! checkpoint to the store's writer as one operation, which moves the checkpoint only
//! from where the fold started. A crash before the commit loses the batch and its
//! checkpoint together; one after keeps both, so every event is counted exactly once.
//!
//! Event ids grow in commit order because the main database has one writer; the
//! projection relies on it to never skip an event.
//!
//! Only one projection may write at a time. That assumption lives in [`run`]: today the
//! serving process runs one; when Parley runs several nodes, `run` is where a leader lease
//! is taken before folding (the checkpoint fence already refuses a second writer's batch).

pub mod figures;
pub mod fold;
pub mod hist;
pub mod kpi;

use crate::clock::Clock;
use crate::config::ReportSettings;
use crate::policy::calendar::{Calendar, CalendarBuilder, CalendarError};
use crate::store::entities::conversation_event;
use crate::store::reports::{ApplyReportBatch, CaseRow};
use crate::store::{Store, StoreError};
use chrono::Weekday;
use chrono_tz::Tz;
use fold::{CaseState, Event, Rollups};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reports configuration: {0}")]
    Calendar(#[from] CalendarError),
    #[error("reports configuration: unknown weekday {0:?} (mon .. sun)")]
    Weekday(String),
    #[error("KPI file: {0}")]
    Kpi(String),
    #[error("a stored report state is corrupt: {0}")]
    Corrupt(String),
}

/// The zone and business hours the figures are computed in.
#[derive(Debug, Clone)]
pub struct ReportCalendar {
    pub zone: Tz,
    pub business: Calendar,
}

impl ReportCalendar {
    pub fn from_settings(settings: &ReportSettings) -> Result<Self, ReportError> {
        let mut builder = CalendarBuilder::new(&settings.time_zone)?;
        builder.with_hours();
        for day in &settings.business_days {
            let weekday = match day.as_str() {
                "mon" => Weekday::Mon,
                "tue" => Weekday::Tue,
                "wed" => Weekday::Wed,
                "thu" => Weekday::Thu,
                "fri" => Weekday::Fri,
                "sat" => Weekday::Sat,
                "sun" => Weekday::Sun,
                other => return Err(ReportError::Weekday(other.to_string())),
            };
            builder.add_period(weekday, &settings.business_hours)?;
        }
        let business = builder.build();
        Ok(Self {
            zone: business.time_zone(),
            business,
        })
    }
}

/// Folds a batch of events onto the given case states: the states it changed and the
/// rollup increments. Pure: the same events give the same output however they are split
/// into batches.
pub fn fold_batch(
    calendar: &ReportCalendar,
    states: &mut BTreeMap<i64, Option<CaseState>>,
    events: &[conversation_event::Model],
) -> Rollups {
    let mut rollups = Rollups::default();
    for e in events {
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap_or_default();
        let event = Event {
            id: e.id,
            conversation_id: e.conversation_id,
            kind: &e.kind,
            data: &data,
            actor: &e.actor,
            at: e.created_at,
        };
        let state = states.entry(e.conversation_id).or_default();
        let observations = fold::apply(state, &event, &calendar.business);
        if let Some(case) = state.as_ref() {
            for observation in &observations {
                rollups.add(calendar.zone, case, observation);
            }
        }
    }
    rollups
}

/// The background fold of the event log into the report rollups.
#[derive(Clone)]
pub struct Projection {
    store: Store,
    clock: Arc<dyn Clock>,
    calendar: ReportCalendar,
    batch_size: u64,
}

impl Projection {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: &ReportSettings,
    ) -> Result<Self, ReportError> {
        Ok(Self {
            store,
            clock,
            calendar: ReportCalendar::from_settings(settings)?,
            batch_size: settings.batch_size.max(1),
        })
    }

    pub fn calendar(&self) -> &ReportCalendar {
        &self.calendar
    }

    /// Folds one batch; the number of events folded (0: caught up).
    pub async fn step(&self) -> Result<usize, ReportError> {
        let from = self.store.report_checkpoint().await?;
        let events = self.store.events_after(from, self.batch_size).await?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok(0);
        };
        let mut ids: Vec<i64> = events.iter().map(|e| e.conversation_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let stored = self.store.report_cases(&ids).await?;
        let mut states = BTreeMap::new();
        for (id, text) in stored {
            let state: CaseState = serde_json::from_str(&text)
                .map_err(|e| ReportError::Corrupt(format!("case {id}: {e}")))?;
            states.insert(id, Some(state));
        }
        let rollups = fold_batch(&self.calendar, &mut states, &events);
        let cases = states
            .into_iter()
            .filter_map(|(id, state)| {
                let state = state?;
                Some(CaseRow {
                    conversation_id: id,
                    created_at: state.created_at,
                    resolved_at: state.resolved_at,
                    agent_id: state.agent_id,
                    team_id: state.team_id,
                    state: serde_json::to_string(&state).unwrap_or_default(),
                })
            })
            .collect();
        self.store
            .write(ApplyReportBatch {
                from_event_id: from,
                to_event_id: last,
                cases,
                cells: rollups.cells.into_iter().collect(),
                now: self.clock.now(),
            })
            .await?;
        Ok(events.len())
    }

    /// Folds until the checkpoint reaches the end of the log; the events folded.
    pub async fn catch_up(&self) -> Result<u64, ReportError> {
        self.store
            .ensure_report_checkpoint(self.clock.now())
            .await?;
        let mut folded = 0;
        loop {
            match self.step().await? {
                0 => return Ok(folded),
                n => folded += n as u64,
            }
        }
    }

    /// Empties the rollups and folds the whole log again.
    pub async fn rebuild(&self) -> Result<u64, ReportError> {
        self.store.reset_reports(self.clock.now()).await?;
        self.catch_up().await
    }
}

/// Time between two folds when no event announces itself (events written by another
/// process, a failed batch).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// The one writer of the projection in this process: catches up at start, then whenever
/// events are published (see the module documentation for the cluster's leader lease).
/// After each fold that added events it evaluates the KPIs.
pub async fn run(
    projection: Projection,
    figures: figures::Figures,
    mut published: broadcast::Receiver<impl Clone>,
) {
    let mut states = BTreeMap::new();
    let mut first = true;
    loop {
        match projection.catch_up().await {
            Ok(folded) => {
                crate::telemetry::metrics()
                    .reports_folded_events
                    .inc_by(folded);
                if folded > 0 || first {
                    first = false;
                    let now = projection.clock.now();
                    if let Err(error) = figures.watch_kpis(now, &mut states).await {
                        tracing::warn!(error = %error, "Evaluating the KPIs failed.");
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "Folding events into the reports failed; retrying.");
            }
        }
        match tokio::time::timeout(IDLE_POLL, published.recv()).await {
            Err(_) | Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => return,
        }
        // Let a burst of events land before the next fold.
        while published.try_recv().is_ok() {}
    }
}

/// The KPI targets the settings name (the built-in file when none).
pub fn load_kpis(settings: &ReportSettings) -> Result<kpi::KpiFile, ReportError> {
    let text = if settings.kpi_file.is_empty() {
        kpi::DEFAULT_KPIS.to_string()
    } else {
        std::fs::read_to_string(&settings.kpi_file)
            .map_err(|e| ReportError::Kpi(format!("{}: {e}", settings.kpi_file)))?
    };
    kpi::KpiFile::parse(&text).map_err(ReportError::Kpi)
}
