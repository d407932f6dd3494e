//! Reads made ahead of the synchronous engine, for a shell whose store calls can overlap.
//!
//! The engine reads a key-value store one key at a time, because it is synchronous: a
//! validate on Redis is five round trips one after another. Four of those five keys follow
//! from the session id alone ([`lookup_keys`]); the fifth, the slot, is named by the record
//! ([`follow_up_keys`]). A shell that can issue reads concurrently (the WASIp3 build, through
//! the async `spin:key-value@3.0.0`) fetches the four together, then the slot, before it runs
//! the engine, and hands the values to its synchronous store, which answers each key's first
//! read from them ([`ReadAhead`]). The validate then waits for two round trips, not five, makes
//! the same reads as before, and none of them holds up the instance's other requests (a
//! synchronous host call stops every request of a reused instance until it returns).
//!
//! A value read ahead is what a read at the start of the request would have found, so the
//! request sees the store as it was a moment earlier in the same request, as any read does.
//! Each value is given out once, and a write of its key drops it, so a read that follows a
//! write of the same request (a rotate reads its write back) always goes to the store.

use super::layout;
use crate::store::StoreError;

/// The keys a lookup of session `id` reads whatever it finds, in the order
/// [`KvStore::find`](super::KvStore::find) reads them: the store's generation, the session's
/// record, its activity and its secret. (The fifth read, the slot, is named by the record.)
pub fn lookup_keys(id: &str) -> Vec<String> {
    vec![
        layout::GEN_KEY.to_owned(),
        layout::session_key(id),
        layout::activity_key(id),
        layout::secret_key(id),
    ]
}

/// The keys a lookup reads next, named by what was read ahead: the slot that the session
/// record in `ahead` names. Nothing when no live record was read (the lookup stops there).
pub fn follow_up_keys(ahead: &ReadAhead) -> Vec<String> {
    ahead
        .values
        .iter()
        .find_map(|(key, outcome)| match (layout::KeyKind::of(key), outcome) {
            (layout::KeyKind::Session(_), Ok(Some(value))) => {
                match layout::decode::<layout::StoredSession>(key, value) {
                    Ok(layout::StoredSession::Live(record)) => {
                        Some(vec![layout::slot_key(&record.user_id, record.slot)])
                    }
                    // A deletion mark or a malformed record: the lookup reads no further.
                    _ => None,
                }
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// One read's outcome: the value (or its absence), or the store's error.
pub type ReadOutcome = Result<Option<Vec<u8>>, StoreError>;

/// Values read ahead for one request, each given out once.
#[derive(Debug, Default)]
pub struct ReadAhead {
    values: Vec<(String, ReadOutcome)>,
}

impl ReadAhead {
    pub fn new(values: Vec<(String, ReadOutcome)>) -> Self {
        Self { values }
    }

    /// The outcome read ahead for `key`, if there is one; it is then gone.
    pub fn take(&mut self, key: &str) -> Option<ReadOutcome> {
        let at = self.values.iter().position(|(k, _)| k == key)?;
        Some(self.values.swap_remove(at).1)
    }

    /// Drops what was read ahead for `key`: the request is writing it, so it is stale.
    pub fn forget(&mut self, key: &str) {
        self.values.retain(|(k, _)| k != key);
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Adds the values of a later round of reads.
    pub fn extend(&mut self, values: Vec<(String, ReadOutcome)>) {
        self.values.extend(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyValue;
    use crate::store::kv::KvStore;
    use crate::store::kv::memory::MemoryKeyValue;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records the keys read from the store it wraps, in order.
    #[derive(Debug)]
    struct Recording {
        inner: MemoryKeyValue,
        reads: Rc<RefCell<Vec<String>>>,
    }

    impl KeyValue for Recording {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.reads.borrow_mut().push(key.to_owned());
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.inner.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key)
        }
        fn get_keys(&self) -> Result<Vec<String>, StoreError> {
            self.inner.get_keys()
        }
    }

    #[test]
    fn lookup_keys_are_the_first_reads_of_a_lookup_and_the_slot_is_the_one_left() {
        let reads = Rc::new(RefCell::new(Vec::new()));
        let memory = MemoryKeyValue::default();
        let store = KvStore::new(
            Box::new(Recording {
                inner: memory.clone(),
                reads: reads.clone(),
            }),
            5,
        )
        .unwrap();
        let row =
            super::super::tests::row("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", 1_700_000_000_000);
        store
            .insert(&row, row.created_at, 5, false)
            .unwrap()
            .unwrap();
        reads.borrow_mut().clear();
        assert!(
            store.find(&row.id).unwrap().is_some(),
            "the session is live"
        );
        let read = reads.borrow().clone();
        let ahead = lookup_keys(&row.id);
        // Positive control: the lookup reads exactly one key more than is read ahead, the slot.
        assert_eq!(read.len(), ahead.len() + 1, "{read:?}");
        let rest: Vec<&String> = read.iter().filter(|k| !ahead.contains(k)).collect();
        assert_eq!(rest, [&layout::slot_key("alice", 0)], "{read:?}");
        for key in &ahead {
            assert!(read.contains(key), "{key} is read by the lookup: {read:?}");
        }
        // What the lookup keys hold names the fifth read.
        let values = ahead
            .iter()
            .map(|key| (key.clone(), memory.get(key)))
            .collect();
        assert_eq!(
            follow_up_keys(&ReadAhead::new(values)),
            [layout::slot_key("alice", 0)]
        );
        // Nothing to follow for a session without a record.
        let missing = lookup_keys("1a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d")
            .into_iter()
            .map(|key| (key, Ok(None)))
            .collect();
        assert!(follow_up_keys(&ReadAhead::new(missing)).is_empty());
    }

    #[test]
    fn a_value_is_given_out_once_and_a_write_drops_it() {
        let mut ahead = ReadAhead::new(vec![
            ("a".to_owned(), Ok(Some(b"1".to_vec()))),
            ("b".to_owned(), Ok(None)),
            (
                "c".to_owned(),
                Err(StoreError::Unavailable("down".to_owned())),
            ),
        ]);
        assert!(matches!(ahead.take("a"), Some(Ok(Some(v))) if v == b"1"));
        assert!(ahead.take("a").is_none(), "given out once");
        ahead.forget("b");
        assert!(ahead.take("b").is_none(), "a write drops it");
        assert!(matches!(
            ahead.take("c"),
            Some(Err(StoreError::Unavailable(_)))
        ));
        assert!(ahead.is_empty());
    }
}
