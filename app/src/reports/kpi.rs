//! Health against targets: the operating targets of `config/kpi.toml`, each with a target,
//! a warning and an action level, evaluated on a report summary.

use super::figures::{Summary, seconds};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The shipped targets.
pub const DEFAULT_KPIS: &str = include_str!("../../../config/kpi.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Above,
    Below,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kpi {
    pub metric: String,
    pub better: Better,
    pub target: f64,
    pub warning: f64,
    pub action: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiFile {
    pub window_hours: u32,
    pub kpis: BTreeMap<String, Kpi>,
}

/// Where a figure stands against its KPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KpiState {
    OnTarget,
    /// Missed the target, not yet at the warning level.
    OffTarget,
    Warning,
    Action,
}

impl KpiState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnTarget => "on_target",
            Self::OffTarget => "off_target",
            Self::Warning => "warning",
            Self::Action => "action",
        }
    }

    /// For the Prometheus gauge: 0 on target .. 3 action.
    pub fn level(self) -> i64 {
        self as i64
    }
}

/// The figure a KPI reads from a summary (`None`: nothing to measure yet, or not a known
/// figure).
pub fn figure(summary: &Summary, metric: &str) -> Option<f64> {
    match metric {
        "sla_first_response_met" => summary.sla_first_response_met_share(),
        "sla_resolution_met" => summary.sla_resolution_met_share(),
        "csat_score" => summary.csat_positive_share(),
        "csat_average" => summary.csat_average(),
        "csat_response_rate" => summary.csat_response_rate(),
        "one_touch_rate" => summary.one_touch_rate(),
        "automation_rate" => summary.automation_rate(),
        "reopen_rate" => summary.reopen_rate(),
        "escalation_rate" => summary.escalation_rate(),
        "resolution_average_seconds" => summary.resolution.average.map(seconds),
        "first_response_average_seconds" => summary.first_response.average.map(seconds),
        _ => None,
    }
}

const KNOWN: [&str; 11] = [
    "sla_first_response_met",
    "sla_resolution_met",
    "csat_score",
    "csat_average",
    "csat_response_rate",
    "one_touch_rate",
    "automation_rate",
    "reopen_rate",
    "escalation_rate",
    "resolution_average_seconds",
    "first_response_average_seconds",
];

impl Kpi {
    pub fn state(&self, value: f64) -> KpiState {
        let worse = |a: f64, b: f64| match self.better {
            Better::Above => a < b,
            Better::Below => a > b,
        };
        if worse(value, self.action) {
            KpiState::Action
        } else if worse(value, self.warning) {
            KpiState::Warning
        } else if worse(value, self.target) {
            KpiState::OffTarget
        } else {
            KpiState::OnTarget
        }
    }
}

impl KpiFile {
    /// Parses and checks a KPI file: known metrics, levels in order.
    pub fn parse(text: &str) -> Result<KpiFile, String> {
        let file: KpiFile = toml::from_str(text).map_err(|e| e.to_string())?;
        for (name, kpi) in &file.kpis {
            if !KNOWN.contains(&kpi.metric.as_str()) {
                return Err(format!("kpi {name}: unknown metric {:?}", kpi.metric));
            }
            let ordered = match kpi.better {
                Better::Above => kpi.target >= kpi.warning && kpi.warning >= kpi.action,
                Better::Below => kpi.target <= kpi.warning && kpi.warning <= kpi.action,
            };
            if !ordered {
                return Err(format!(
                    "kpi {name}: target, warning and action must get worse in that order"
                ));
            }
        }
        if file.window_hours == 0 {
            return Err("window_hours must be at least 1".into());
        }
        Ok(file)
    }

    /// Each KPI's figure and state on a summary (KPIs without a figure yet are left out).
    pub fn evaluate(&self, summary: &Summary) -> Vec<(String, f64, KpiState)> {
        self.kpis
            .iter()
            .filter_map(|(name, kpi)| {
                let value = figure(summary, &kpi.metric)?;
                Some((name.clone(), value, kpi.state(value)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_targets_parse_and_grade() {
        let file = KpiFile::parse(DEFAULT_KPIS).unwrap();
        assert_eq!(file.kpis.len(), 7);
        let sla = &file.kpis["first_response_sla"];
        assert_eq!(sla.state(0.96), KpiState::OnTarget);
        assert_eq!(sla.state(0.92), KpiState::OffTarget);
        assert_eq!(sla.state(0.85), KpiState::Warning);
        assert_eq!(sla.state(0.5), KpiState::Action);
        let resolution = &file.kpis["average_resolution"];
        assert_eq!(resolution.state(1200.0), KpiState::OnTarget);
        assert_eq!(resolution.state(2400.0), KpiState::OffTarget);
        assert_eq!(resolution.state(7200.0), KpiState::Warning);
        assert_eq!(resolution.state(20000.0), KpiState::Action);
    }

    #[test]
    fn bad_files_are_refused() {
        let swapped = "window_hours = 24\n[kpis.x]\nmetric = \"csat_score\"\nbetter = \"above\"\ntarget = 0.5\nwarning = 0.8\naction = 0.9\n";
        assert!(KpiFile::parse(swapped).unwrap_err().contains("order"));
        let unknown = swapped.replace("csat_score", "happiness");
        assert!(
            KpiFile::parse(&unknown)
                .unwrap_err()
                .contains("unknown metric")
        );
    }
}
