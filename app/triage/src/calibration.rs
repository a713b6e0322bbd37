//! Calibrated decisions: confidences that mean what they say, and a threshold per label.
//!
//! The classifier's raw score of a label (the model's logit plus cue and shape weights)
//! is not a probability: cues push it far out, and a label with few examples is scored
//! differently from one with many. [`Calibration::fit`] takes the raw scores of a
//! validation split (examples the probe model was not trained on) and, per label,
//! - fits Platt scaling, `p = σ(a·score + b)`, so that of the messages given confidence
//!   0.8 about eight in ten carry the label;
//! - chooses the threshold: for a risk the highest one that keeps the validation recall at
//!   the target (recall first: a missed fraud report costs more than a second look), never
//!   above the configured risk threshold; for an intent the one with the best F1.

use crate::model::probability;

/// One label's validation scores: the raw score and whether the label was expected.
pub type Scores = Vec<(f32, bool)>;

/// How one label's raw score becomes a confidence, and where it is reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelCalibration {
    /// Slope of the Platt scaling.
    pub a: f32,
    /// Offset of the Platt scaling.
    pub b: f32,
    /// Confidence at or above which the label is reported.
    pub threshold: f32,
}

impl LabelCalibration {
    /// No scaling: the raw score through the logistic function, at `threshold`.
    pub fn identity(threshold: f32) -> Self {
        Self {
            a: 1.0,
            b: 0.0,
            threshold,
        }
    }

    /// The calibrated confidence of a raw score.
    pub fn confidence(&self, score: f32) -> f32 {
        probability(self.a * score + self.b)
    }
}

/// How a threshold is chosen on the validation split.
#[derive(Debug, Clone, Copy)]
pub enum Objective {
    /// The highest threshold keeping recall at or above the target, within `[min, max]`
    /// (the floor keeps a few outliers in the split from flagging everything).
    Recall { target: f32, min: f32, max: f32 },
    /// The threshold with the best F1, within `[min, max]`.
    F1 { min: f32, max: f32 },
}

/// Fewest positive validation examples for a label to be calibrated; under it the label
/// keeps the identity and the configured threshold.
pub const MIN_POSITIVES: usize = 8;

/// Fits one label. `fallback` is the configured threshold, used when the validation split
/// holds too few examples of the label to say anything.
pub fn fit(scores: &[(f32, bool)], objective: Objective, fallback: f32) -> LabelCalibration {
    let positives = scores.iter().filter(|(_, y)| *y).count();
    if positives < MIN_POSITIVES || positives == scores.len() {
        return LabelCalibration::identity(fallback);
    }
    let (a, b) = platt(scores);
    let mut calibration = LabelCalibration {
        a,
        b,
        threshold: fallback,
    };
    let mut confidences: Vec<(f32, bool)> = scores
        .iter()
        .map(|&(s, y)| (calibration.confidence(s), y))
        .collect();
    confidences.sort_by(|x, y| y.0.total_cmp(&x.0));
    calibration.threshold = match objective {
        Objective::Recall { target, min, max } => {
            // Walk down the confidences until enough positives are above the line.
            let needed = (target * positives as f32).ceil() as usize;
            let mut seen = 0;
            let mut threshold = max;
            for &(c, y) in &confidences {
                if y {
                    seen += 1;
                    if seen >= needed {
                        threshold = c;
                        break;
                    }
                }
            }
            threshold.clamp(min, max.max(min))
        }
        Objective::F1 { min, max } => {
            let (mut best, mut best_f1) = (fallback.clamp(min, max), -1.0f32);
            let (mut tp, mut fp) = (0usize, 0usize);
            for (index, &(c, y)) in confidences.iter().enumerate() {
                if y {
                    tp += 1;
                } else {
                    fp += 1;
                }
                // Only cut between distinct confidences.
                if confidences.get(index + 1).is_some_and(|next| next.0 == c) {
                    continue;
                }
                let f1 = 2.0 * tp as f32 / (2 * tp + fp + (positives - tp)) as f32;
                if (min..=max).contains(&c) && f1 > best_f1 {
                    best_f1 = f1;
                    best = c;
                }
            }
            best
        }
    };
    calibration
}

/// Platt scaling by Newton's method on the regularised targets of Platt (1999), which
/// keep a perfectly separated split from sending the slope to infinity.
fn platt(scores: &[(f32, bool)]) -> (f32, f32) {
    let positives = scores.iter().filter(|(_, y)| *y).count() as f64;
    let negatives = scores.len() as f64 - positives;
    let high = (positives + 1.0) / (positives + 2.0);
    let low = 1.0 / (negatives + 2.0);
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-6, 0.0, 1e-6);
        for &(s, y) in scores {
            let s = f64::from(s);
            let t = if y { high } else { low };
            let p = 1.0 / (1.0 + (-(a * s + b)).exp());
            let d = p - t;
            let w = p * (1.0 - p);
            ga += d * s;
            gb += d;
            haa += w * s * s;
            hab += w * s;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() < 1e-7 && db.abs() < 1e-7 {
            break;
        }
    }
    // A slope that is not positive would turn the ranking upside down.
    if !a.is_finite() || !b.is_finite() || a <= 0.0 {
        return (1.0, 0.0);
    }
    (a as f32, b as f32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Scores where a label is present with a probability that rises with the score.
    fn graded() -> Vec<(f32, bool)> {
        let mut scores = Vec::new();
        for i in 0..200 {
            let s = (i as f32 - 100.0) / 20.0;
            // Present in a share of the examples that matches σ(2s - 1).
            let share = probability(2.0 * s - 1.0);
            let present = ((i * 7919) % 100) as f32 / 100.0 < share;
            scores.push((s, present));
        }
        scores
    }

    #[test]
    fn platt_recovers_the_slope_and_offset_roughly() {
        let c = fit(&graded(), Objective::F1 { min: 0.1, max: 0.9 }, 0.5);
        assert!((1.0..3.5).contains(&c.a), "slope {}", c.a);
        assert!((-2.5..0.5).contains(&c.b), "offset {}", c.b);
    }

    #[test]
    fn recall_objective_keeps_the_target_and_never_exceeds_the_maximum() {
        let scores = graded();
        let c = fit(
            &scores,
            Objective::Recall {
                target: 0.95,
                min: 0.0,
                max: 0.5,
            },
            0.5,
        );
        let positives = scores.iter().filter(|(_, y)| *y).count();
        let found = scores
            .iter()
            .filter(|(s, y)| *y && c.confidence(*s) >= c.threshold)
            .count();
        assert!(
            found as f32 >= 0.95 * positives as f32,
            "{found}/{positives}"
        );
        assert!(c.threshold <= 0.5);
    }

    #[test]
    fn too_few_positives_keep_the_configured_threshold() {
        let scores: Vec<(f32, bool)> = (0..100).map(|i| (i as f32, i > 97)).collect();
        assert_eq!(
            fit(&scores, Objective::F1 { min: 0.2, max: 0.8 }, 0.5),
            LabelCalibration::identity(0.5)
        );
    }

    #[test]
    fn separated_scores_give_a_finite_increasing_scale() {
        let scores: Vec<(f32, bool)> = (0..100).map(|i| (i as f32 - 50.0, i >= 50)).collect();
        let c = fit(&scores, Objective::F1 { min: 0.2, max: 0.8 }, 0.5);
        assert!(c.a.is_finite() && c.a > 0.0);
        assert!(c.confidence(10.0) > 0.9 && c.confidence(-10.0) < 0.1);
    }
}
