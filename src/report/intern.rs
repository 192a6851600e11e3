//! Interning byte strings as dense `u32` ids, with every string stored once in one arena.
//!
//! A log of a few million requests can hold millions of distinct URLs: a map of boxed strings
//! costs two allocations and ~100 bytes per name; this costs ~30 bytes and no allocation per
//! name, which is what keeps the report's merge step (single-threaded) fast.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Byte strings and their ids (0, 1, 2, ... in first-seen order).
#[derive(Default)]
pub(super) struct Interner {
    hasher: foldhash::fast::FixedState,
    ids: HashTable<u32>,
    bytes: Vec<u8>,
    /// End offset in `bytes` of each id's string.
    ends: Vec<usize>,
    /// Hash of each id's string: growing the table and merging interners never rehash bytes.
    hashes: Vec<u64>,
}

impl Interner {
    /// The number of distinct strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The string of `id`.
    pub fn get(&self, id: u32) -> &[u8] {
        let id = id as usize;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.bytes[start..self.ends[id]]
    }

    /// An interner with room for `n` strings before it grows.
    pub fn with_capacity(n: usize) -> Self {
        Interner {
            ids: HashTable::with_capacity(n),
            ..Interner::default()
        }
    }

    /// The id of `name`, assigning the next one when it is new.
    pub fn id(&mut self, name: &[u8]) -> u32 {
        let hash = self.hasher.hash_one(name);
        self.id_hashed(hash, name)
    }

    /// The ids of `other`'s strings in this interner, in `other`'s id order (adding the new
    /// ones).
    pub fn merge(&mut self, other: &Interner) -> Vec<u32> {
        (0..other.len() as u32)
            .map(|id| self.id_hashed(other.hashes[id as usize], other.get(id)))
            .collect()
    }

    fn id_hashed(&mut self, hash: u64, name: &[u8]) -> u32 {
        let Interner {
            ids,
            bytes,
            ends,
            hashes,
            ..
        } = self;
        let string = |id: u32| {
            let id = id as usize;
            let start = if id == 0 { 0 } else { ends[id - 1] };
            &bytes[start..ends[id]]
        };
        if let Some(&id) = ids.find(hash, |&id| string(id) == name) {
            return id;
        }
        let id = ends.len() as u32;
        ids.insert_unique(hash, id, |&other| hashes[other as usize]);
        bytes.extend_from_slice(name);
        ends.push(bytes.len());
        hashes.push(hash);
        id
    }

    /// Every string, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len() as u32).map(|id| self.get(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_first_seen_and_stable() {
        let mut d = Interner::default();
        assert_eq!(d.id(b"a"), 0);
        assert_eq!(d.id(b""), 1);
        assert_eq!(d.id(b"bc"), 2);
        assert_eq!(d.id(b"a"), 0);
        assert_eq!(d.id(b""), 1);
        for i in 0..10_000u32 {
            assert_eq!(d.id(i.to_string().as_bytes()), i + 3);
        }
        assert_eq!(d.get(2), b"bc");
        assert_eq!(d.get(1), b"");
        assert_eq!(d.iter().count(), 10_003);
        let mut other = Interner::with_capacity(4);
        other.id(b"9999");
        other.id(b"new");
        assert_eq!(d.merge(&other), [10_002, 10_003]);
        assert_eq!(d.get(10_003), b"new");
    }
}
