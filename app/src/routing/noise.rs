//! The noise filter's memory: which contacts are blocked, and which texts are being sent
//! from many numbers at once (near-duplicate clusters).
//!
//! The text checks themselves (acknowledgements, spam score, fingerprints) are pure and
//! live in [`crate::triage::noise`]; per-contact rate limiting lives in each conversation
//! actor, which sees every message of its contact in order. What needs to be shared across
//! contacts lives here, behind short locks: a set of blocked WhatsApp ids and a bounded,
//! time-windowed index of recent fingerprints.

use crate::domain::{Micros, SECOND_MICROS};
use crate::triage::noise::Fingerprint;
use dashmap::DashSet;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Why a message was kept away from the human queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressReason {
    BlockedContact,
    RateLimited,
    Spam,
    DuplicateCluster,
    AckAfterResolution,
    /// A routing rule said so (`then.suppress`).
    Rule,
    /// A STOP/START-style keyword: recorded in the consent ledger, not a request.
    ConsentKeyword,
}

impl SuppressReason {
    pub const ALL: [SuppressReason; 7] = [
        Self::BlockedContact,
        Self::RateLimited,
        Self::Spam,
        Self::DuplicateCluster,
        Self::AckAfterResolution,
        Self::Rule,
        Self::ConsentKeyword,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlockedContact => "blocked_contact",
            Self::RateLimited => "rate_limited",
            Self::Spam => "spam",
            Self::DuplicateCluster => "duplicate_cluster",
            Self::AckAfterResolution => "ack_after_resolution",
            Self::Rule => "rule",
            Self::ConsentKeyword => "consent_keyword",
        }
    }
}

/// What the cluster index says about a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterVerdict {
    /// Too short to cluster, or not (yet) seen from enough numbers.
    Single,
    /// Seen from `contacts` distinct numbers within the window: one cluster.
    Cluster {
        contacts: u32,
        messages: u32,
        first_seen: Micros,
        sample: String,
        fingerprint: Fingerprint,
    },
}

/// Most distinct numbers remembered per cluster: beyond the threshold only counts matter.
const MAX_REMEMBERED_CONTACTS: usize = 32;

struct Entry {
    fingerprint: Fingerprint,
    sample: String,
    contacts: Vec<String>,
    contact_count: u32,
    messages: u32,
    first_seen: Micros,
    last_seen: Micros,
}

/// Recent distinct texts, oldest first, bounded in number and age. A lookup compares the
/// fingerprint with every entry (a XOR and a popcount each: a few microseconds for the
/// default bound), which finds near-duplicates that exact hashing would miss.
pub struct ClusterIndex {
    entries: VecDeque<Entry>,
    capacity: usize,
}

/// Parameters of the cluster check, from the routing policy's `[noise]` section.
#[derive(Debug, Clone, Copy)]
pub struct ClusterParams {
    pub min_contacts: u32,
    pub window: Micros,
    pub min_words: usize,
}

impl ClusterIndex {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
        }
    }

    /// Records that `wa_id` sent `text` at `now`, and says whether it belongs to a cluster.
    pub fn observe(
        &mut self,
        text: &str,
        wa_id: &str,
        now: Micros,
        params: ClusterParams,
    ) -> ClusterVerdict {
        if text.split_whitespace().count() < params.min_words {
            return ClusterVerdict::Single;
        }
        while self
            .entries
            .front()
            .is_some_and(|e| now.saturating_sub(e.last_seen) > params.window)
        {
            self.entries.pop_front();
        }
        let fingerprint = Fingerprint::of(text);
        let found = self
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.fingerprint.similar(fingerprint));
        let entry = match found {
            Some(entry) => entry,
            None => {
                if self.entries.len() >= self.capacity {
                    self.entries.pop_front();
                }
                self.entries.push_back(Entry {
                    fingerprint,
                    sample: text.chars().take(280).collect(),
                    contacts: vec![wa_id.to_owned()],
                    contact_count: 1,
                    messages: 1,
                    first_seen: now,
                    last_seen: now,
                });
                return ClusterVerdict::Single;
            }
        };
        entry.messages += 1;
        entry.last_seen = now;
        if !entry.contacts.iter().any(|c| c == wa_id) {
            entry.contact_count += 1;
            if entry.contacts.len() < MAX_REMEMBERED_CONTACTS {
                entry.contacts.push(wa_id.to_owned());
            }
        }
        if entry.contact_count < params.min_contacts.max(2) {
            return ClusterVerdict::Single;
        }
        ClusterVerdict::Cluster {
            contacts: entry.contact_count,
            messages: entry.messages,
            first_seen: entry.first_seen,
            sample: entry.sample.clone(),
            fingerprint: entry.fingerprint,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Distinct texts the cluster index remembers by default.
pub const DEFAULT_CLUSTER_CAPACITY: usize = 4096;

/// Shared noise state: blocked contacts and the cluster index.
pub struct NoiseState {
    blocked: DashSet<String>,
    clusters: Mutex<ClusterIndex>,
}

impl Default for NoiseState {
    fn default() -> Self {
        Self::new(DEFAULT_CLUSTER_CAPACITY)
    }
}

impl NoiseState {
    pub fn new(cluster_capacity: usize) -> Self {
        Self {
            blocked: DashSet::new(),
            clusters: Mutex::new(ClusterIndex::new(cluster_capacity)),
        }
    }

    pub fn is_blocked(&self, wa_id: &str) -> bool {
        self.blocked.contains(wa_id)
    }

    pub fn set_blocked(&self, wa_id: &str, blocked: bool) {
        if blocked {
            self.blocked.insert(wa_id.to_owned());
        } else {
            self.blocked.remove(wa_id);
        }
    }

    pub fn observe(
        &self,
        text: &str,
        wa_id: &str,
        now: Micros,
        params: ClusterParams,
    ) -> ClusterVerdict {
        match self.clusters.lock() {
            Ok(mut index) => index.observe(text, wa_id, now, params),
            Err(poisoned) => poisoned.into_inner().observe(text, wa_id, now, params),
        }
    }
}

/// Per-contact message times within the rate-limit window (kept by the contact's actor).
#[derive(Debug, Default, Clone)]
pub struct RateWindow {
    times: VecDeque<Micros>,
}

impl RateWindow {
    /// Counts a message at `now`; true when it is over `limit` within `window`.
    pub fn exceeded(&mut self, now: Micros, limit: u32, window_secs: u64) -> bool {
        let window = i64::try_from(window_secs)
            .unwrap_or(i64::MAX / SECOND_MICROS)
            .saturating_mul(SECOND_MICROS);
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= window)
        {
            self.times.pop_front();
        }
        self.times.push_back(now);
        self.times.len() > limit as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: ClusterParams = ClusterParams {
        min_contacts: 3,
        window: 3600 * SECOND_MICROS,
        min_words: 5,
    };
    const SCAM: &str =
        "Congratulations! You won a free iPhone 15, claim it now at bit.ly/xyz before it expires";

    #[test]
    fn the_same_text_from_three_numbers_becomes_a_cluster() {
        let mut index = ClusterIndex::new(100);
        assert_eq!(index.observe(SCAM, "1", 0, PARAMS), ClusterVerdict::Single);
        assert_eq!(index.observe(SCAM, "1", 1, PARAMS), ClusterVerdict::Single);
        let variant = SCAM.replace("15", "16").replace("xyz", "abc");
        assert_eq!(
            index.observe(&variant, "2", 2, PARAMS),
            ClusterVerdict::Single
        );
        match index.observe(SCAM, "3", 3, PARAMS) {
            ClusterVerdict::Cluster {
                contacts, messages, ..
            } => {
                assert_eq!(contacts, 3);
                assert_eq!(messages, 4);
            }
            other => panic!("expected a cluster, got {other:?}"),
        }
    }

    #[test]
    fn short_texts_and_old_entries_never_cluster() {
        let mut index = ClusterIndex::new(100);
        for n in 0..10 {
            assert_eq!(
                index.observe("where is my order", &n.to_string(), n, PARAMS),
                ClusterVerdict::Single
            );
        }
        index.observe(SCAM, "1", 0, PARAMS);
        index.observe(SCAM, "2", 1, PARAMS);
        // The window has passed: the third number starts afresh.
        let later = 2 * 3600 * SECOND_MICROS;
        assert_eq!(
            index.observe(SCAM, "3", later, PARAMS),
            ClusterVerdict::Single
        );
    }

    #[test]
    fn different_texts_stay_apart_and_the_index_is_bounded() {
        let mut index = ClusterIndex::new(8);
        for n in 0..50 {
            let text = format!(
                "my order number {n} arrived broken and the box was wet {}",
                "x".repeat(n)
            );
            index.observe(&text, &n.to_string(), n as i64, PARAMS);
        }
        assert!(index.len() <= 8);
    }

    #[test]
    fn rate_window_counts_only_recent_messages() {
        let mut window = RateWindow::default();
        for n in 0..3 {
            assert!(!window.exceeded(n, 3, 60));
        }
        assert!(window.exceeded(3, 3, 60));
        assert!(!window.exceeded(61 * SECOND_MICROS, 3, 60));
    }
}
