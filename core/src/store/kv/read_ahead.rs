//! Reads made ahead of the synchronous engine, for a shell whose store calls can overlap.
//!
//! The engine reads a key-value store one key at a time, because it is synchronous: a
//! validate on Redis is five round trips one after another. Four of those five keys follow
//! from the session id alone ([`lookup_keys`]); the fifth, the slot, is named by the record
//! ([`SlotMemo::second_round`]). A shell that can issue reads concurrently (the WASIp3 build, through
//! the async `spin:key-value@3.0.0`) fetches the four together, then the slot, before it runs
//! the engine, and hands the values to its synchronous store, which answers each key's first
//! read from them ([`ReadAhead`]). The validate then waits for two round trips, not five, makes
//! the same reads as before, and none of them holds up the instance's other requests (a
//! synchronous host call stops every request of a reused instance until it returns).
//!
//! A shell whose instance serves many requests (the WASIp3 build, reused by Spin for up to 128)
//! also remembers which slot each session's record named ([`SlotMemo`]), and reads that slot in
//! the first round, with the four keys, when the same session comes back: one round trip, not
//! two. The memo is a hint and never a fact the engine relies on: a slot read ahead is only the
//! value of a key, and when the record read in the same round names another slot, that one is
//! read in a second round as before.
//!
//! A value read ahead is what a read at the start of the request would have found, so the
//! request sees the store as it was a moment earlier in the same request, as any read does.
//! The order of the reads within the request does not matter either: what a validate checks
//! (the record live, the slot naming the session, the store's generation equal to the
//! record's) each holds from before the token exists until it stops for good, so if each held
//! when it was read, all of them held together at the earliest of those reads.
//! Each value is given out once, and a write of its key drops it, so a read that follows a
//! write of the same request (a rotate reads its write back) always goes to the store.

use super::layout;
use crate::store::StoreError;
use std::collections::HashMap;

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

/// The key of the live session record in `ahead`, with the key of the slot it names.
fn named_slot(ahead: &ReadAhead) -> Option<(String, String)> {
    ahead
        .values
        .iter()
        .find_map(|(key, outcome)| match (layout::KeyKind::of(key), outcome) {
            (layout::KeyKind::Session(_), Ok(Some(value))) => {
                match layout::decode::<layout::StoredSession>(key, value) {
                    Ok(layout::StoredSession::Live(record)) => {
                        Some((key.clone(), layout::slot_key(&record.user_id, record.slot)))
                    }
                    // A deletion mark or a malformed record: the lookup reads no further.
                    _ => None,
                }
            }
            _ => None,
        })
}

/// How many sessions' slots a [`SlotMemo`] remembers before it starts afresh: about 150 KB of
/// keys at most, and many more sessions than one instance's 128 requests can bring.
pub const SLOT_MEMO_CAPACITY: usize = 1024;

/// The slot each session's record named, remembered across the requests of one instance so a
/// later validate of the same session reads its slot in the first round.
///
/// The record of a session names its slot for good once its token exists: the create writes it
/// before it returns the token (a create that loses its slot rewrites the record for the next
/// one first), and afterwards only a deletion mark replaces it. A slot remembered from a
/// record read before its create finished can be wrong; [`SlotMemo::second_round`] then reads
/// the slot the record names and remembers that one instead. The memo holds public session ids
/// and hex user ids, never a secret or a verdict.
#[derive(Debug, Default)]
pub struct SlotMemo {
    /// Session record key to the key of the slot the record named.
    slots: HashMap<String, String>,
}

impl SlotMemo {
    /// The keys of a request's first round: `keys`, and before them the slot remembered for
    /// any session record among them (first, so that it is asked of the store before the
    /// record it would otherwise wait for).
    pub fn first_round(&self, keys: Vec<String>) -> Vec<String> {
        let remembered = keys.iter().filter_map(|key| self.slots.get(key).cloned());
        let mut round: Vec<String> = remembered.collect();
        round.extend(keys);
        round
    }

    /// The keys still to read after the first round `ahead`: the slot its session record names
    /// (nothing when no live record was read: the lookup stops there), unless that slot was
    /// read already. Remembers that slot.
    pub fn second_round(&mut self, ahead: &ReadAhead) -> Vec<String> {
        let Some((record, slot)) = named_slot(ahead) else {
            return Vec::new();
        };
        let read = ahead.contains(&slot);
        if self.slots.get(&record) != Some(&slot) {
            if self.slots.len() >= SLOT_MEMO_CAPACITY {
                self.slots.clear();
            }
            self.slots.insert(record, slot.clone());
        }
        if read { Vec::new() } else { vec![slot] }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
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

    /// Whether a value of `key` was read ahead (and not yet given out).
    pub fn contains(&self, key: &str) -> bool {
        self.values.iter().any(|(k, _)| k == key)
    }

    /// Adds the values of a later round of reads.
    pub fn extend(&mut self, values: Vec<(String, ReadOutcome)>) {
        self.values.extend(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::KvStore;
    use crate::store::kv::memory::MemoryKeyValue;
    use crate::store::{KeyValue, SessionRow};
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn lookup_keys_are_the_first_reads_of_a_lookup_and_the_slot_is_the_one_left() {
        let reads = Rc::new(RefCell::new(Vec::new()));
        let memory = MemoryKeyValue::default();
        let (store, row) = store_with_alice_s_session(Box::new(super::super::tests::Recording {
            inner: memory.clone(),
            reads: reads.clone(),
        }));
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
            SlotMemo::default().second_round(&ReadAhead::new(values)),
            [layout::slot_key("alice", 0)]
        );
        // Nothing to follow for a session without a record.
        let missing = lookup_keys("1a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d")
            .into_iter()
            .map(|key| (key, Ok(None)))
            .collect();
        assert!(
            SlotMemo::default()
                .second_round(&ReadAhead::new(missing))
                .is_empty()
        );
    }

    /// A store over `kv` holding one session of alice's, in her slot 0.
    fn store_with_alice_s_session(kv: Box<dyn KeyValue>) -> (KvStore, SessionRow) {
        let store = KvStore::new(kv, 5).unwrap();
        let row =
            super::super::tests::row("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", 1_700_000_000_000);
        store
            .insert(&row, row.created_at, 5, false)
            .unwrap()
            .unwrap();
        (store, row)
    }

    /// An in-memory store holding one session of alice's, and the memory under it.
    fn memory_with_alice_s_session() -> (MemoryKeyValue, KvStore, SessionRow) {
        let memory = MemoryKeyValue::default();
        let (store, row) = store_with_alice_s_session(Box::new(memory.clone()));
        (memory, store, row)
    }

    /// `keys` with the values `memory` holds for them, as a round of reads ahead finds them.
    fn read_round(memory: &MemoryKeyValue, keys: &[String]) -> Vec<(String, ReadOutcome)> {
        keys.iter()
            .map(|key| (key.clone(), memory.get(key)))
            .collect()
    }

    #[test]
    fn a_remembered_slot_is_read_in_the_first_round_with_the_four_keys() {
        let (memory, _store, row) = memory_with_alice_s_session();
        let slot = layout::slot_key("alice", 0);
        let mut memo = SlotMemo::default();

        // The first request of the session: nothing remembered, so the slot is a second round.
        let first = memo.first_round(lookup_keys(&row.id));
        assert_eq!(first, lookup_keys(&row.id));
        let ahead = ReadAhead::new(read_round(&memory, &first));
        assert_eq!(memo.second_round(&ahead), std::slice::from_ref(&slot));
        assert_eq!(memo.len(), 1);

        // The next one reads the slot first, beside the four keys, and has nothing left to read.
        let next = memo.first_round(lookup_keys(&row.id));
        assert_eq!(next[0], slot, "{next:?}");
        assert_eq!(next[1..], lookup_keys(&row.id));
        let ahead = ReadAhead::new(read_round(&memory, &next));
        assert!(memo.second_round(&ahead).is_empty());
        assert_eq!(memo.len(), 1);

        // Another session's keys get nothing from the memo.
        let other = "1a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d";
        assert_eq!(memo.first_round(lookup_keys(other)), lookup_keys(other));
    }

    #[test]
    fn a_wrong_remembered_slot_costs_a_second_round_and_is_replaced() {
        let (memory, _store, row) = memory_with_alice_s_session();
        let mut memo = SlotMemo::default();
        let first = memo.first_round(lookup_keys(&row.id));
        memo.second_round(&ReadAhead::new(read_round(&memory, &first)));

        // The record now names slot 1, as a create that lost slot 0 rewrites it before it
        // hands out the token.
        let record_key = layout::session_key(&row.id);
        let mut record: serde_json::Value =
            serde_json::from_slice(&memory.get(&record_key).unwrap().unwrap()).unwrap();
        assert_eq!(record["slot"], 0, "{record}");
        record["slot"] = 1.into();
        memory
            .set(&record_key, &serde_json::to_vec(&record).unwrap())
            .unwrap();

        let next = memo.first_round(lookup_keys(&row.id));
        assert_eq!(next[0], layout::slot_key("alice", 0), "the stale slot");
        let ahead = ReadAhead::new(read_round(&memory, &next));
        assert_eq!(memo.second_round(&ahead), [layout::slot_key("alice", 1)]);
        assert_eq!(
            memo.first_round(lookup_keys(&row.id))[0],
            layout::slot_key("alice", 1),
            "the memo follows the record"
        );
    }

    #[test]
    fn the_memo_starts_afresh_when_full_and_never_remembers_a_deleted_session() {
        let (memory, store, row) = memory_with_alice_s_session();
        let record = memory.get(&layout::session_key(&row.id)).unwrap();
        let mut memo = SlotMemo::default();
        for n in 0..=SLOT_MEMO_CAPACITY {
            let key = layout::session_key(&format!("00000000-0000-4000-8000-{n:012}"));
            memo.second_round(&ReadAhead::new(vec![(key, Ok(record.clone()))]));
            assert!(memo.len() <= SLOT_MEMO_CAPACITY);
        }
        assert_eq!(memo.len(), 1, "cleared at the capacity, then one more");

        // A deletion mark names no slot: nothing to read, nothing remembered.
        let mut memo = SlotMemo::default();
        assert!(store.delete(&row.id).unwrap());
        let keys = lookup_keys(&row.id);
        assert!(
            memo.second_round(&ReadAhead::new(read_round(&memory, &keys)))
                .is_empty()
        );
        assert!(memo.is_empty());
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
