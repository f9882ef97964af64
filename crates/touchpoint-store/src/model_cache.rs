//! What the store keeps in memory between reads, shared by every clone of a
//! [`Store`](crate::Store) (the server clones one per request):
//!
//! - the analytics model ([`OrderFacts`]) as of a fact sequence number. A
//!   read that finds `analytics_state.fact_seq` unchanged uses it as it is;
//!   after writes it applies only the facts written since (`seq` greater than
//!   the cached one), so a busy store does not reload four million facts per
//!   request. Writers take a row lock on `analytics_state` to get their
//!   sequence number, so sequence numbers commit in order and "greater than
//!   the cached one" misses nothing. A rebuild rewrites every fact, which a
//!   reader notices (no fact at or below the cached number is left) and
//!   answers with a full load.
//! - computed results (reports, the value and acquisition reports) keyed by
//!   their request and the version of the data they read: a repeated view
//!   costs a lookup; a change of the data gives a new key, and old entries
//!   age out of a small least-recently-used list.
//!
//! Another process writing to the same database (the CLI importing while
//! `touchpoint serve` runs) is seen the same way: the versions are read from
//! the database at each request, not kept in memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use touchpoint_core::analytics::facts::OrderFacts;

/// The in-memory state of one store.
#[derive(Debug)]
pub struct ModelCache {
    /// The loaded facts and their sequence number.
    pub(crate) facts: tokio::sync::Mutex<Option<(i64, Arc<OrderFacts>)>>,
    /// Reports by request and data version.
    pub(crate) reports: Memo<crate::reports::Report>,
    /// The member summaries of the last scopes read (the several reports of
    /// one page share one), by scope and fact sequence number.
    pub(crate) datasets: Memo<touchpoint_core::analytics::Dataset>,
    /// Value reports by model and prediction version.
    pub(crate) values: Memo<touchpoint_core::analytics::ValueReport>,
    /// Acquisition reports by filter and data version.
    pub(crate) acquisition: Memo<crate::acquisition::AcquisitionReport>,
    /// The acquisition report's reading of the identity graph, by identity
    /// version.
    pub(crate) acquisition_identities: Memo<crate::acquisition::IdentityPart>,
    /// The acquisition report's CLV per member, by prediction run.
    pub(crate) acquisition_clv: Memo<std::collections::HashMap<i64, i64>>,
}

impl Default for ModelCache {
    fn default() -> Self {
        ModelCache {
            facts: Default::default(),
            reports: Memo::default(),
            // A data set of 1M members is a few hundred MB: keep two.
            datasets: Memo::with_capacity(2),
            values: Memo::default(),
            acquisition: Memo::default(),
            acquisition_identities: Memo::with_capacity(1),
            acquisition_clv: Memo::with_capacity(1),
        }
    }
}

/// Results kept per key, at most [`Memo::CAPACITY`] of them, least recently
/// used first out.
#[derive(Debug)]
pub(crate) struct Memo<T> {
    entries: Mutex<VecDeque<(String, Arc<T>)>>,
    capacity: usize,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo::with_capacity(Self::CAPACITY)
    }
}

impl<T> Memo<T> {
    /// Entries kept by default: a dashboard's pages times a few filters.
    pub(crate) const CAPACITY: usize = 64;

    /// A memo of at most `capacity` entries.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Memo {
            entries: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    /// The value of `key`, if it is kept (and mark it recently used).
    pub(crate) fn get(&self, key: &str) -> Option<Arc<T>> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let i = e.iter().position(|(k, _)| k == key)?;
        let hit = e.remove(i)?;
        let v = hit.1.clone();
        e.push_back(hit);
        Some(v)
    }

    /// Keep `value` under `key`.
    pub(crate) fn put(&self, key: String, value: Arc<T>) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|(k, _)| *k != key);
        e.push_back((key, value));
        while e.len() > self.capacity {
            e.pop_front();
        }
    }

    /// Forget everything (tests).
    #[cfg(test)]
    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_keeps_the_most_recently_used_entries() {
        let m: Memo<u32> = Memo::default();
        for i in 0..(Memo::<u32>::CAPACITY as u32 + 5) {
            m.put(format!("k{i}"), Arc::new(i));
        }
        assert!(m.get("k0").is_none(), "the oldest entries are dropped");
        assert_eq!(m.get("k5").as_deref(), Some(&5));
        // k5 was used last: adding one more drops k6, not k5.
        m.put("new".into(), Arc::new(99));
        assert!(m.get("k6").is_none());
        assert_eq!(m.get("k5").as_deref(), Some(&5));
        m.put("k5".into(), Arc::new(50));
        assert_eq!(m.get("k5").as_deref(), Some(&50), "a put replaces");
        m.clear();
        assert!(m.get("k5").is_none());
    }
}
