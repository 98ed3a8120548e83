//! The last-N event ring: 8 bytes per event, stored as two parallel `u32` arrays.
//!
//! Latencies sit in their own array so the exact-quantile scan reads 4 bytes per event and
//! nothing else. The second array packs the outcome (bit 31 = error) with the event time as
//! milliseconds since `base_ms` (31 bits ≈ 24.8 days). Times never go backwards inside a
//! window, so when an offset would overflow the base simply moves forward; the rare event
//! still in the ring from before the new base (a service that records less than once per
//! 12 days) has its time clamped to the base, which only shortens the reported span.
//!
//! The arrays grow by doubling with `reserve_exact` up to exactly `cap`, so an idle service
//! costs little and a busy one never holds more than `8 · cap` bytes of events.

const ERROR_BIT: u32 = 1 << 31;
const OFFSET_MASK: u32 = ERROR_BIT - 1;
/// Where the base moves to on overflow: half the offset range behind the newest event.
const REBASE_KEEP_MS: u64 = 1 << 30;

/// An evicted event: latency (µs, saturated) and whether it was an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Evicted {
    pub(crate) latency_us: u32,
    pub(crate) error: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Ring {
    cap: usize,
    lat: Vec<u32>,
    meta: Vec<u32>,
    /// Once full: index of the oldest event, which is also the next one overwritten.
    head: usize,
    base_ms: u64,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Self {
        debug_assert!(cap > 0);
        Ring {
            cap,
            lat: Vec::new(),
            meta: Vec::new(),
            head: 0,
            base_ms: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lat.len()
    }

    /// Appends an event; `at_ms` must not be older than the previous event's. Returns the
    /// event pushed out when the ring is full.
    #[inline]
    pub(crate) fn push(&mut self, latency_us: u32, error: bool, at_ms: u64) -> Option<Evicted> {
        if self.lat.is_empty() {
            self.base_ms = at_ms;
        }
        let offset = at_ms - self.base_ms;
        let offset = if offset > u64::from(OFFSET_MASK) {
            self.rebase(at_ms)
        } else {
            offset as u32
        };
        let meta = offset | if error { ERROR_BIT } else { 0 };
        if self.lat.len() < self.cap {
            if self.lat.len() == self.lat.capacity() {
                self.grow();
            }
            self.lat.push(latency_us);
            self.meta.push(meta);
            return None;
        }
        let i = self.head;
        let evicted = Evicted {
            latency_us: self.lat[i],
            error: self.meta[i] & ERROR_BIT != 0,
        };
        self.lat[i] = latency_us;
        self.meta[i] = meta;
        self.head = if i + 1 == self.cap { 0 } else { i + 1 };
        Some(evicted)
    }

    #[cold]
    fn grow(&mut self) {
        let len = self.lat.len();
        let target = (len * 2).max(64).min(self.cap);
        self.lat.reserve_exact(target - len);
        self.meta.reserve_exact(target - len);
    }

    /// Moves `base_ms` so that `at_ms` fits; returns `at_ms`'s new offset.
    #[cold]
    fn rebase(&mut self, at_ms: u64) -> u32 {
        let new_base = at_ms - REBASE_KEEP_MS;
        for m in &mut self.meta {
            let abs = self.base_ms + u64::from(*m & OFFSET_MASK);
            let off = abs.saturating_sub(new_base) as u32; // < 2^30 since abs ≤ at_ms
            *m = (*m & ERROR_BIT) | off;
        }
        self.base_ms = new_base;
        REBASE_KEEP_MS as u32
    }

    fn oldest_index(&self) -> usize {
        if self.lat.len() < self.cap {
            0
        } else {
            self.head
        }
    }

    /// Time of the oldest event held, if any.
    pub(crate) fn oldest_ms(&self) -> Option<u64> {
        if self.lat.is_empty() {
            return None;
        }
        let m = self.meta[self.oldest_index()];
        Some(self.base_ms + u64::from(m & OFFSET_MASK))
    }

    /// Latencies of the newest `c` events (`c ≤ len`), as up to two slices in no
    /// particular order.
    pub(crate) fn newest(&self, c: usize) -> (&[u32], &[u32]) {
        let len = self.lat.len();
        debug_assert!(c <= len);
        let c = c.min(len);
        if len < self.cap {
            return (&self.lat[len - c..], &[]);
        }
        let end = self.head; // newest events end just before the head
        if c <= end {
            (&self.lat[end - c..end], &[])
        } else {
            (&self.lat[self.cap - (c - end)..], &self.lat[..end])
        }
    }

    /// Bytes held by the event arrays (their capacity, not their length).
    pub(crate) fn memory_bytes(&self) -> usize {
        4 * (self.lat.capacity() + self.meta.capacity())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sorted(parts: (&[u32], &[u32])) -> Vec<u32> {
        let mut v: Vec<u32> = parts.0.iter().chain(parts.1).copied().collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn evicts_oldest_first_once_full() {
        let mut r = Ring::new(3);
        assert_eq!(r.push(1, false, 10), None);
        assert_eq!(r.push(2, true, 11), None);
        assert_eq!(r.push(3, false, 12), None);
        assert_eq!(r.oldest_ms(), Some(10));
        let e = r.push(4, false, 13).unwrap();
        assert_eq!((e.latency_us, e.error), (1, false));
        let e = r.push(5, false, 14).unwrap();
        assert_eq!((e.latency_us, e.error), (2, true));
        assert_eq!(r.oldest_ms(), Some(12));
        assert_eq!(r.len(), 3);
        assert_eq!(sorted(r.newest(2)), vec![4, 5]);
        assert_eq!(sorted(r.newest(3)), vec![3, 4, 5]);
    }

    #[test]
    fn newest_handles_wraparound() {
        let mut r = Ring::new(4);
        for (i, v) in (10..17).enumerate() {
            r.push(v, false, i as u64);
        }
        // Holds 13..=16 with the head at index 3.
        assert_eq!(sorted(r.newest(4)), vec![13, 14, 15, 16]);
        assert_eq!(sorted(r.newest(3)), vec![14, 15, 16]);
        assert_eq!(sorted(r.newest(0)), Vec::<u32>::new());
    }

    #[test]
    fn capacity_never_exceeds_the_cap() {
        let mut r = Ring::new(100);
        for i in 0..1000 {
            r.push(i, false, u64::from(i));
        }
        assert_eq!(r.memory_bytes(), 800);
    }

    #[test]
    fn far_apart_times_rebase_without_losing_the_error_flag() {
        let mut r = Ring::new(3);
        r.push(1, true, 5);
        r.push(2, false, 5 + (1 << 31) + 7); // forces a rebase
        assert_eq!(r.oldest_ms(), Some(5 + (1 << 31) + 7 - REBASE_KEEP_MS));
        r.push(3, false, 5 + (1 << 31) + 8);
        let e = r.push(4, false, 5 + (1 << 31) + 9).unwrap();
        assert_eq!((e.latency_us, e.error), (1, true));
        assert_eq!(r.oldest_ms(), Some(5 + (1 << 31) + 7));
    }
}
