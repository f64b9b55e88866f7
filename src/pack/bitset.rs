//! `RowSet`: a fixed-length bitset over the rows of a filter matrix.
//!
//! Column combining asks, over and over, "which rows does this group touch?" and "how
//! many rows do these two groups share?" (the shared rows are exactly the conflicts that
//! merging them adds). Keeping rows as packed `u64` words turns those questions into
//! word-wise AND + popcount, which is what makes the grouping strategies fast.

/// A set of row indices in `0..len`, stored as packed 64-bit words.
///
/// Bits at positions `>= len` in the last word are always zero, so `count` and
/// `and_count` never need masking.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowSet {
    words: Vec<u64>,
    len: usize,
}

impl RowSet {
    /// The empty set over `len` rows.
    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// The set `{ i in 0..len : pred(i) }`.
    pub fn from_fn(len: usize, mut pred: impl FnMut(usize) -> bool) -> Self {
        let mut s = Self::new(len);
        for i in 0..len {
            if pred(i) {
                s.insert(i);
            }
        }
        s
    }

    /// Number of rows the set ranges over (`count` gives the number of members).
    pub fn universe(&self) -> usize {
        self.len
    }

    /// The packed words (bit `i % 64` of word `i / 64` is row `i`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Mutable words, for callers that compute a set word-wise from other sets over the
    /// same rows (which keeps the bits past `len` zero, as `count` relies on).
    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// Adds row `i`. Panics if `i >= len` (an indexing bug, not a data error).
    #[inline]
    pub fn insert(&mut self, i: usize) {
        assert!(i < self.len, "row {i} out of range 0..{}", self.len);
        self.words[i / 64] |= 1u64 << (i % 64);
    }

    /// Removes row `i`. Panics if `i >= len`.
    #[inline]
    pub fn remove(&mut self, i: usize) {
        assert!(i < self.len, "row {i} out of range 0..{}", self.len);
        self.words[i / 64] &= !(1u64 << (i % 64));
    }

    /// Whether row `i` is a member; rows outside `0..len` are not.
    #[inline]
    pub fn contains(&self, i: usize) -> bool {
        i < self.len && (self.words[i / 64] >> (i % 64)) & 1 == 1
    }

    /// Number of members.
    #[inline]
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// `|self ∩ other|` without materialising the intersection.
    #[inline]
    pub fn and_count(&self, other: &RowSet) -> usize {
        debug_assert_eq!(self.len, other.len);
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }

    /// `self ← self ∪ other`.
    #[inline]
    pub fn union_with(&mut self, other: &RowSet) {
        debug_assert_eq!(self.len, other.len);
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// `self ← self ∖ other`.
    #[inline]
    pub fn difference_with(&mut self, other: &RowSet) {
        debug_assert_eq!(self.len, other.len);
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    /// Removes every member.
    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Whether the set has no member.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Members in increasing order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            words: &self.words,
            index: 0,
            current: self.words.first().copied().unwrap_or(0),
        }
    }
}

/// Iterator over the members of a [`RowSet`], in increasing order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    words: &'a [u64],
    index: usize,
    current: u64,
}

impl Iterator for Iter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.current == 0 {
            self.index += 1;
            self.current = *self.words.get(self.index)?;
        }
        let bit = self.current.trailing_zeros() as usize;
        // Clear the lowest set bit.
        self.current &= self.current - 1;
        Some(self.index * 64 + bit)
    }
}

impl<'a> IntoIterator for &'a RowSet {
    type Item = usize;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_zero_length() {
        let s = RowSet::new(0);
        assert!(s.is_empty());
        assert_eq!(s.count(), 0);
        assert_eq!(s.iter().count(), 0);
        assert!(!s.contains(0));
        let t = RowSet::new(130);
        assert!(t.is_empty());
        assert_eq!(t.universe(), 130);
        assert_eq!(t.iter().next(), None);
    }

    #[test]
    fn insert_contains_count_iter() {
        let mut s = RowSet::new(200);
        for i in [0, 1, 63, 64, 65, 127, 128, 199] {
            s.insert(i);
        }
        s.insert(64); // idempotent
        assert_eq!(s.count(), 8);
        assert!(s.contains(63) && s.contains(199) && !s.contains(2) && !s.contains(500));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![0, 1, 63, 64, 65, 127, 128, 199]
        );
        s.remove(64);
        assert!(!s.contains(64));
        assert_eq!(s.count(), 7);
    }

    #[test]
    fn set_algebra() {
        let a = RowSet::from_fn(100, |i| i % 2 == 0);
        let b = RowSet::from_fn(100, |i| i % 3 == 0);
        assert_eq!(a.and_count(&b), (0..100).filter(|i| i % 6 == 0).count());
        let mut u = a.clone();
        u.union_with(&b);
        assert_eq!(
            u.count(),
            (0..100).filter(|i| i % 2 == 0 || i % 3 == 0).count()
        );
        let mut d = a.clone();
        d.difference_with(&b);
        assert_eq!(
            d.iter().collect::<Vec<_>>(),
            (0..100)
                .filter(|i| i % 2 == 0 && i % 3 != 0)
                .collect::<Vec<_>>()
        );
        u.clear();
        assert!(u.is_empty());
    }

    #[test]
    #[should_panic]
    fn insert_out_of_range_panics() {
        RowSet::new(10).insert(10);
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_a_sorted_set(
            len in 0usize..300,
            a in proptest::collection::vec(0usize..300, 0..80),
            b in proptest::collection::vec(0usize..300, 0..80),
        ) {
            use std::collections::BTreeSet;
            let sa: BTreeSet<usize> = a.into_iter().filter(|&i| i < len).collect();
            let sb: BTreeSet<usize> = b.into_iter().filter(|&i| i < len).collect();
            let mut ra = RowSet::new(len);
            sa.iter().for_each(|&i| ra.insert(i));
            let mut rb = RowSet::new(len);
            sb.iter().for_each(|&i| rb.insert(i));
            proptest::prop_assert_eq!(ra.count(), sa.len());
            proptest::prop_assert_eq!(ra.is_empty(), sa.is_empty());
            proptest::prop_assert_eq!(ra.iter().collect::<Vec<_>>(), sa.iter().copied().collect::<Vec<_>>());
            proptest::prop_assert_eq!(ra.and_count(&rb), sa.intersection(&sb).count());
            let mut u = ra.clone();
            u.union_with(&rb);
            proptest::prop_assert_eq!(u.iter().collect::<Vec<_>>(), sa.union(&sb).copied().collect::<Vec<_>>());
            for i in 0..len {
                proptest::prop_assert_eq!(ra.contains(i), sa.contains(&i));
            }
        }
    }
}
