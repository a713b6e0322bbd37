//! Measuring the classifier on labelled JSONL, and classifying a JSONL stream.
//!
//! Input lines look like
//! `{"text": "...", "intents": ["refund_request"], "urgency": "priority", "risk": ["fraud_signal"], "language": "hi"}`;
//! every field but `text` is optional, and a family is scored only on the lines that label
//! it. Blank lines are skipped. These functions back `parley triage eval FILE.jsonl` and
//! `parley triage classify`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::classifier::{Classification, Classifier};

/// Evaluating or classifying a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The input or output could not be read or written.
    #[error("line {line}: i/o error: {source}")]
    Io {
        /// 1-based input line being handled.
        line: usize,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An input line is not a JSON object with a `text` string.
    #[error("line {line}: {message}")]
    BadLine {
        /// 1-based input line.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// One input line.
#[derive(Debug, Deserialize)]
struct Labelled {
    text: String,
    id: Option<serde_json::Value>,
    intents: Option<Vec<String>>,
    urgency: Option<String>,
    risk: Option<Vec<String>>,
    language: Option<String>,
}

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LabelScore {
    /// Correct predictions over predictions (1 when nothing was predicted).
    pub precision: f64,
    /// Correct predictions over expected (1 when nothing was expected).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Lines expecting the label.
    pub support: usize,
    /// Lines where it was predicted.
    pub predicted: usize,
}

/// Scores of a multi-label family (intents or risks).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FamilyReport {
    /// Lines labelling this family.
    pub lines: usize,
    /// Per label, for labels expected or predicted at least once.
    pub labels: BTreeMap<String, LabelScore>,
    /// Mean precision over the labels with support.
    pub macro_precision: f64,
    /// Mean recall over the labels with support.
    pub macro_recall: f64,
    /// Mean F1 over the labels with support.
    pub macro_f1: f64,
    /// F1 over all label decisions together.
    pub micro_f1: f64,
    /// Lines whose predicted set equals the expected set.
    pub exact_match: f64,
}

/// Accuracy of a single-label family (urgency or language).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AccuracyReport {
    /// Lines labelling this family.
    pub lines: usize,
    /// Share of them predicted right.
    pub accuracy: f64,
}

/// A frequent mistake: `expected` was labelled, `predicted` was said instead (`none`
/// when a label was missed or invented with no counterpart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Confusion {
    /// `intent`, `risk`, `urgency` or `language`.
    pub family: String,
    /// The expected label.
    pub expected: String,
    /// What the classifier said.
    pub predicted: String,
    /// How many lines.
    pub count: usize,
}

/// What `parley triage eval` prints.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EvalReport {
    /// Lines evaluated.
    pub lines: usize,
    /// Intent scores.
    pub intent: FamilyReport,
    /// Risk scores.
    pub risk: FamilyReport,
    /// Urgency accuracy.
    pub urgency: AccuracyReport,
    /// Language accuracy.
    pub language: AccuracyReport,
    /// The most frequent mistakes, most frequent first.
    pub confusions: Vec<Confusion>,
    /// The same scores for the lines of each expected language.
    pub by_language: BTreeMap<String, LanguageReport>,
    /// Risk confusion table: expected risk (or `none`) to predicted risk (or `none`) to
    /// lines. A risk both expected and predicted counts on the diagonal; a missed risk
    /// counts against each wrongly predicted one, or `none`.
    pub risk_confusion: BTreeMap<String, BTreeMap<String, usize>>,
    /// Each label's calibration and threshold, as the classifier was trained.
    pub calibration: Vec<crate::classifier::CalibratedLabel>,
    /// How the lines tagged `low_confidence` (sent to human review) fared against the rest.
    pub review: ReviewReport,
    /// Whether confidences mean what they say: every reported intent and risk, binned by
    /// its confidence, with the share that was right.
    pub reliability: Vec<ReliabilityBin>,
}

/// Lines tagged `low_confidence` against the others, on lines labelling intents and risks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReviewReport {
    /// Lines scored.
    pub lines: usize,
    /// Lines tagged `low_confidence`.
    pub flagged: usize,
    /// Share of the flagged lines whose intents and risks were both exactly right.
    pub exact_when_flagged: f64,
    /// The same share on the lines not flagged.
    pub exact_when_confident: f64,
}

/// Reported labels whose confidence fell in `[from, to)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReliabilityBin {
    pub from: f64,
    pub to: f64,
    /// Labels reported with such a confidence.
    pub reported: usize,
    /// Share of them the line was labelled with.
    pub right: f64,
}

/// Bin edges of [`EvalReport::reliability`].
const RELIABILITY_EDGES: [f64; 7] = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0001];

/// Counts behind [`ReviewReport`] and [`EvalReport::reliability`].
#[derive(Default)]
struct Trust {
    lines: usize,
    flagged: (usize, usize),
    confident: (usize, usize),
    bins: [(usize, usize); RELIABILITY_EDGES.len() - 1],
}

impl Trust {
    fn add(&mut self, labelled: &Labelled, c: &crate::Classification) {
        let (Some(intents), Some(risks)) = (&labelled.intents, &labelled.risk) else {
            return;
        };
        self.lines += 1;
        let same = |expected: &[String], got: &[crate::Scored]| {
            let mut e: Vec<&str> = expected.iter().map(String::as_str).collect();
            let mut g: Vec<&str> = got.iter().map(|s| s.label.as_str()).collect();
            e.sort_unstable();
            e.dedup();
            g.sort_unstable();
            g.dedup();
            e == g
        };
        let exact = same(intents, &c.intents) && same(risks, &c.risks);
        let slot = if c.low_confidence {
            &mut self.flagged
        } else {
            &mut self.confident
        };
        slot.0 += 1;
        slot.1 += usize::from(exact);
        for (reported, expected) in [(&c.intents, intents), (&c.risks, risks)] {
            for s in reported {
                let confidence = f64::from(s.confidence);
                if let Some(bin) = RELIABILITY_EDGES
                    .windows(2)
                    .position(|w| confidence >= w[0] && confidence < w[1])
                {
                    self.bins[bin].0 += 1;
                    self.bins[bin].1 += usize::from(expected.contains(&s.label));
                }
            }
        }
    }

    fn report(&self) -> (ReviewReport, Vec<ReliabilityBin>) {
        let share = |(n, k): (usize, usize)| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        let review = ReviewReport {
            lines: self.lines,
            flagged: self.flagged.0,
            exact_when_flagged: share(self.flagged),
            exact_when_confident: share(self.confident),
        };
        let bins = RELIABILITY_EDGES
            .windows(2)
            .zip(&self.bins)
            .map(|(w, &counts)| ReliabilityBin {
                from: w[0],
                to: w[1].min(1.0),
                reported: counts.0,
                right: share(counts),
            })
            .collect();
        (review, bins)
    }
}

/// Scores of the lines written in one language.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LanguageReport {
    /// Lines in this language.
    pub lines: usize,
    /// Intent scores.
    pub intent: FamilyReport,
    /// Risk scores.
    pub risk: FamilyReport,
    /// Urgency accuracy.
    pub urgency: AccuracyReport,
    /// Language accuracy.
    pub language: AccuracyReport,
}

/// Counts of one slice of the lines (all of them, or one language).
#[derive(Default)]
struct Slice {
    lines: usize,
    intents: Counts,
    risks: Counts,
    urgency: (usize, usize),
    language: (usize, usize),
}

impl Slice {
    fn add(
        &mut self,
        labelled: &Labelled,
        c: &crate::Classification,
        confusions: &mut HashMap<(String, String, String), usize>,
    ) {
        self.lines += 1;
        let names = |s: &[crate::Scored]| s.iter().map(|s| s.label.clone()).collect::<Vec<_>>();
        if let Some(expected) = &labelled.intents {
            self.intents
                .add(expected, &names(&c.intents), "intent", confusions);
        }
        if let Some(expected) = &labelled.risk {
            self.risks
                .add(expected, &names(&c.risks), "risk", confusions);
        }
        for (family, expected, predicted, counts) in [
            (
                "urgency",
                &labelled.urgency,
                &c.urgency.label,
                &mut self.urgency,
            ),
            (
                "language",
                &labelled.language,
                &c.language.label,
                &mut self.language,
            ),
        ] {
            if let Some(expected) = expected {
                counts.0 += 1;
                if expected == predicted {
                    counts.1 += 1;
                } else {
                    *confusions
                        .entry((family.to_owned(), expected.clone(), predicted.clone()))
                        .or_default() += 1;
                }
            }
        }
    }

    fn report(&self) -> LanguageReport {
        let accuracy = |(n, right): (usize, usize)| AccuracyReport {
            lines: n,
            accuracy: if n == 0 { 1.0 } else { right as f64 / n as f64 },
        };
        LanguageReport {
            lines: self.lines,
            intent: self.intents.report(),
            risk: self.risks.report(),
            urgency: accuracy(self.urgency),
            language: accuracy(self.language),
        }
    }
}

/// Adds one line to the risk confusion table (see [`EvalReport::risk_confusion`]).
fn confuse_risks(
    table: &mut BTreeMap<String, BTreeMap<String, usize>>,
    expected: &[String],
    predicted: &[String],
) {
    let none = "none".to_owned();
    let mut count = |e: &String, p: &String| {
        *table
            .entry(e.clone())
            .or_default()
            .entry(p.clone())
            .or_default() += 1;
    };
    let extra: Vec<&String> = predicted.iter().filter(|p| !expected.contains(p)).collect();
    if expected.is_empty() {
        if extra.is_empty() {
            count(&none, &none);
        }
        for p in &extra {
            count(&none, p);
        }
        return;
    }
    for e in expected {
        if predicted.contains(e) {
            count(e, e);
        } else if extra.is_empty() {
            count(e, &none);
        } else {
            for p in &extra {
                count(e, p);
            }
        }
    }
}

/// Most confusion pairs reported.
const MAX_CONFUSIONS: usize = 25;

#[derive(Default)]
struct Counts {
    lines: usize,
    exact: usize,
    per_label: BTreeMap<String, (usize, usize, usize)>,
}

impl Counts {
    fn add(
        &mut self,
        expected: &[String],
        predicted: &[String],
        family: &str,
        confusions: &mut HashMap<(String, String, String), usize>,
    ) {
        self.lines += 1;
        let mut e = expected.to_vec();
        let mut p = predicted.to_vec();
        e.sort();
        e.dedup();
        p.sort();
        p.dedup();
        if e == p {
            self.exact += 1;
        }
        for label in &p {
            let entry = self.per_label.entry(label.clone()).or_default();
            if e.contains(label) {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        let missed: Vec<&String> = e.iter().filter(|l| !p.contains(l)).collect();
        let extra: Vec<&String> = p.iter().filter(|l| !e.contains(l)).collect();
        for label in &missed {
            self.per_label.entry((*label).clone()).or_default().2 += 1;
        }
        let none = "none".to_owned();
        let pairs: Vec<(&String, &String)> = match (missed.is_empty(), extra.is_empty()) {
            (true, true) => Vec::new(),
            (false, true) => missed.iter().map(|m| (*m, &none)).collect(),
            (true, false) => extra.iter().map(|x| (&none, *x)).collect(),
            (false, false) => missed
                .iter()
                .flat_map(|m| extra.iter().map(move |x| (*m, *x)))
                .collect(),
        };
        for (m, x) in pairs {
            *confusions
                .entry((family.to_owned(), m.clone(), x.clone()))
                .or_default() += 1;
        }
    }

    fn report(&self) -> FamilyReport {
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        let f1 = |p: f64, r: f64| {
            if p + r == 0.0 {
                0.0
            } else {
                2.0 * p * r / (p + r)
            }
        };
        let mut labels = BTreeMap::new();
        let (mut tp_all, mut fp_all, mut fn_all) = (0, 0, 0);
        for (label, &(tp, fp, fneg)) in &self.per_label {
            tp_all += tp;
            fp_all += fp;
            fn_all += fneg;
            let precision = ratio(tp, tp + fp);
            let recall = ratio(tp, tp + fneg);
            labels.insert(
                label.clone(),
                LabelScore {
                    precision,
                    recall,
                    f1: f1(precision, recall),
                    support: tp + fneg,
                    predicted: tp + fp,
                },
            );
        }
        let supported: Vec<&LabelScore> = labels.values().filter(|s| s.support > 0).collect();
        let mean = |f: fn(&LabelScore) -> f64| {
            if supported.is_empty() {
                0.0
            } else {
                supported.iter().map(|s| f(s)).sum::<f64>() / supported.len() as f64
            }
        };
        let micro_p = ratio(tp_all, tp_all + fp_all);
        let micro_r = ratio(tp_all, tp_all + fn_all);
        FamilyReport {
            lines: self.lines,
            macro_precision: mean(|s| s.precision),
            macro_recall: mean(|s| s.recall),
            macro_f1: mean(|s| s.f1),
            micro_f1: f1(micro_p, micro_r),
            exact_match: ratio(self.exact, self.lines),
            labels,
        }
    }
}

fn parse_line(line: &str, number: usize) -> Result<Labelled, EvalError> {
    serde_json::from_str(line).map_err(|e| EvalError::BadLine {
        line: number,
        message: format!("expected a JSON object with a \"text\" string: {e}"),
    })
}

/// Classifies every labelled line of `reader` and scores the classifier against the labels.
/// Stops at the first line that is not valid, naming it.
pub fn eval(classifier: &Classifier, reader: impl BufRead) -> Result<EvalReport, EvalError> {
    let mut all = Slice::default();
    let mut by_language: BTreeMap<String, Slice> = BTreeMap::new();
    let mut risk_confusion = BTreeMap::new();
    let mut confusions: HashMap<(String, String, String), usize> = HashMap::new();
    let mut ignored = HashMap::new();
    let mut trust = Trust::default();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|source| EvalError::Io {
            line: number,
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let labelled = parse_line(&line, number)?;
        let c = classifier.classify(&labelled.text);
        all.add(&labelled, &c, &mut confusions);
        trust.add(&labelled, &c);
        let language = labelled
            .language
            .clone()
            .unwrap_or_else(|| "none".to_owned());
        by_language
            .entry(language)
            .or_default()
            .add(&labelled, &c, &mut ignored);
        if let Some(expected) = &labelled.risk {
            let predicted: Vec<String> = c.risks.iter().map(|r| r.label.clone()).collect();
            confuse_risks(&mut risk_confusion, expected, &predicted);
        }
    }
    let mut confusions: Vec<Confusion> = confusions
        .into_iter()
        .map(|((family, expected, predicted), count)| Confusion {
            family,
            expected,
            predicted,
            count,
        })
        .collect();
    confusions.sort_by(|a, b| {
        b.count.cmp(&a.count).then_with(|| {
            (&a.family, &a.expected, &a.predicted).cmp(&(&b.family, &b.expected, &b.predicted))
        })
    });
    confusions.truncate(MAX_CONFUSIONS);
    let overall = all.report();
    let (review, reliability) = trust.report();
    Ok(EvalReport {
        lines: overall.lines,
        intent: overall.intent,
        risk: overall.risk,
        urgency: overall.urgency,
        language: overall.language,
        confusions,
        by_language: by_language
            .into_iter()
            .map(|(language, slice)| (language, slice.report()))
            .collect(),
        risk_confusion,
        calibration: classifier.calibration(),
        review,
        reliability,
    })
}

/// One output line of [`classify_stream`].
#[derive(Debug, Serialize)]
struct Output<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a serde_json::Value>,
    intents: Vec<&'a str>,
    urgency: &'a str,
    risk: Vec<&'a str>,
    language: &'a str,
    tones: Vec<&'a str>,
    low_confidence: bool,
    confidence: OutputConfidence<'a>,
}

#[derive(Debug, Serialize)]
struct OutputConfidence<'a> {
    intents: BTreeMap<&'a str, f32>,
    urgency: f32,
    risk: BTreeMap<&'a str, f32>,
    language: f32,
    candidates: BTreeMap<&'a str, f32>,
}

/// Counts of a [`classify_stream`] run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamSummary {
    /// Lines classified.
    pub classified: usize,
    /// Lines answered with an error object.
    pub errors: usize,
}

/// Reads JSONL lines with a `text` field and writes one JSON object per line, in order:
/// `intents`, `urgency`, `risk`, `language`, `tones`, `low_confidence` and `confidence`
/// (per predicted label, plus the best intent candidates), echoing `id` when given. A line
/// that is not valid JSON gets `{"line": N, "error": "..."}` and the stream goes on;
/// blank lines are skipped.
pub fn classify_stream(
    classifier: &Classifier,
    reader: impl BufRead,
    mut writer: impl Write,
) -> Result<StreamSummary, EvalError> {
    let mut summary = StreamSummary::default();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let io = |source| EvalError::Io {
            line: number,
            source,
        };
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let json = match parse_line(&line, number) {
            Ok(labelled) => {
                summary.classified += 1;
                let c = classifier.classify(&labelled.text);
                serde_json::to_string(&output(&c, labelled.id.as_ref()))
            }
            Err(e) => {
                summary.errors += 1;
                serde_json::to_string(
                    &serde_json::json!({ "line": number, "error": e.to_string() }),
                )
            }
        };
        let json = json.map_err(|e| io(std::io::Error::other(e)))?;
        writeln!(writer, "{json}").map_err(io)?;
    }
    writer
        .flush()
        .map_err(|source| EvalError::Io { line: 0, source })?;
    Ok(summary)
}

fn output<'a>(c: &'a Classification, id: Option<&'a serde_json::Value>) -> Output<'a> {
    let names = |s: &'a [crate::Scored]| s.iter().map(|s| s.label.as_str()).collect::<Vec<_>>();
    let confidences = |s: &'a [crate::Scored]| {
        s.iter()
            .map(|s| (s.label.as_str(), round(s.confidence)))
            .collect()
    };
    Output {
        id,
        intents: names(&c.intents),
        urgency: &c.urgency.label,
        risk: names(&c.risks),
        language: &c.language.label,
        tones: names(&c.tones),
        low_confidence: c.low_confidence,
        confidence: OutputConfidence {
            intents: confidences(&c.intents),
            urgency: round(c.urgency.confidence),
            risk: confidences(&c.risks),
            language: round(c.language.confidence),
            candidates: confidences(&c.candidates),
        },
    }
}

/// Three decimals are plenty for a confidence and keep the output readable.
fn round(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::shipped_classifier as classifier;

    #[test]
    fn eval_scores_labelled_lines_and_skips_blank_ones() {
        let input = r#"{"text": "where is my order??", "intents": ["order_tracking"], "language": "en"}

{"text": "quiero cancelar mi suscripción", "intents": ["cancellation"], "risk": ["churn_risk"], "language": "es"}
"#;
        let report = eval(classifier(), input.as_bytes()).unwrap();
        assert_eq!(report.lines, 2);
        assert_eq!(report.intent.lines, 2);
        assert_eq!(report.risk.lines, 1);
        assert_eq!(report.language.accuracy, 1.0);
        assert!(report.intent.macro_f1 > 0.99, "{report:?}");
        assert!(
            serde_json::to_string(&report)
                .unwrap()
                .contains("\"macro_f1\"")
        );
    }

    #[test]
    fn eval_reports_each_language_and_a_risk_confusion_table() {
        let input = r#"{"text": "i'm going to sue you and call my lawyer", "risk": ["legal_threat"], "language": "en"}
{"text": "hola, donde va mi pedido?", "intents": ["order_tracking"], "risk": [], "language": "es"}
{"text": "hola, gracias", "intents": ["greeting_or_thanks"], "risk": ["fraud_signal"], "language": "es"}
"#;
        let report = eval(classifier(), input.as_bytes()).unwrap();
        assert_eq!(report.by_language.len(), 2, "{report:?}");
        assert_eq!(report.by_language["en"].lines, 1);
        assert_eq!(report.by_language["es"].lines, 2);
        assert_eq!(report.by_language["es"].intent.lines, 2);
        assert_eq!(
            report.by_language["en"].risk.labels["legal_threat"].recall,
            1.0
        );
        let table = &report.risk_confusion;
        assert_eq!(table["legal_threat"]["legal_threat"], 1, "{table:?}");
        assert_eq!(table["none"]["none"], 1, "{table:?}");
        assert_eq!(table["fraud_signal"]["none"], 1, "{table:?}");
        // Only lines labelling both intents and risks count for review; the thanks line
        // missed its (made-up) fraud, so not every line is exactly right.
        assert_eq!(report.review.lines, 2, "{:?}", report.review);
        assert!(report.review.exact_when_confident < 1.0 || report.review.flagged > 0);
        // Every reported label lands in one reliability bin.
        let binned: usize = report.reliability.iter().map(|b| b.reported).sum();
        let reported: usize = input
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            // Lines labelling both families, as review and reliability count them.
            .filter(|v| v.get("intents").is_some() && v.get("risk").is_some())
            .map(|v| {
                let c = classifier().classify(v["text"].as_str().unwrap());
                c.intents.len() + c.risks.len()
            })
            .sum();
        assert_eq!(binned, reported, "{:?}", report.reliability);
        assert!(
            report
                .reliability
                .iter()
                .all(|b| (0.0..=1.0).contains(&b.right))
        );
        assert_eq!(
            report.calibration.len(),
            classifier().intent_labels().len() + classifier().risk_labels().len()
        );
    }

    #[test]
    fn eval_names_the_bad_line() {
        let input = "{\"text\": \"ok\"}\n{\"text\": 12}\n";
        match eval(classifier(), input.as_bytes()) {
            Err(EvalError::BadLine { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a bad line error, got {other:?}"),
        }
    }

    #[test]
    fn wrong_predictions_show_up_as_confusions() {
        let input = r#"{"text": "where is my order", "intents": ["refund_request"]}"#;
        let report = eval(classifier(), input.as_bytes()).unwrap();
        assert!(
            report
                .confusions
                .iter()
                .any(|c| c.expected == "refund_request" && c.predicted == "order_tracking"),
            "{:?}",
            report.confusions
        );
    }

    #[test]
    fn classify_writes_one_object_per_line_in_order_and_reports_bad_lines() {
        let input = "{\"id\": 1, \"text\": \"mera refund kab aayega??\"}\nnot json\n{\"text\": \"where tf is my order\"}\n";
        let mut out = Vec::new();
        let summary = classify_stream(classifier(), input.as_bytes(), &mut out).unwrap();
        assert_eq!(
            summary,
            StreamSummary {
                classified: 2,
                errors: 1
            }
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["id"], 1);
        assert_eq!(lines[0]["language"], "hi");
        assert!(
            lines[0]["intents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i == "refund_request")
        );
        assert!(
            lines[0]["confidence"]["intents"]["refund_request"]
                .as_f64()
                .unwrap()
                > 0.5
        );
        assert_eq!(lines[1]["line"], 2);
        assert!(lines[1]["error"].as_str().unwrap().contains("line 2"));
        assert_eq!(lines[2]["intents"][0], "order_tracking");
        assert!(lines[2]["urgency"].is_string());
        assert!(lines[2]["risk"].is_array());
    }
}
