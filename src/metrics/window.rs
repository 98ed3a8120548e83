//! One service's window: the last N events (ring + histogram) and the last T seconds
//! (rotating slots + a running histogram), updated in O(1) per event.
//!
//! # Time
//! Callers pass every timestamp (`at_ms`, `now_ms`: milliseconds on any monotonic-ish
//! clock, usually Unix time); nothing here reads a clock. Time never goes backwards inside
//! a window: a timestamp older than the latest one seen — by `record`, `record_saturation`
//! or a report — is treated as that latest one. This keeps the ring ordered by time, so
//! both windows are suffixes of the event stream and late events still count (in the
//! newest slot) instead of being dropped.
//!
//! # The time window
//! Time is cut into slots of `T/S` seconds aligned on multiples of the slot length. The
//! time window at `now` is the `S` slots ending with the one containing `now`: it covers
//! between `T - T/S` and `T` seconds, like Prometheus' rotating windows. Each slot keeps
//! count, errors, latency sum, min, max, saturation sum/count/max and a compact histogram
//! (64 sub-buckets per power of two, `u16` counts); the running histogram of the whole time
//! window gains each event as it is recorded and loses a slot's histogram when the slot
//! expires.
//!
//! # Memory (N = 100,000, T = 300 s, S = 60), see [`WindowConfig::memory_bound_bytes`]
//! - ring: 100,000 × 8 B = 800,000 B
//! - last-N histogram: 3,328 buckets × 4 B (`u32`, ≤ N per bucket) = 13,312 B
//! - time histogram: 1,728 buckets × 8 B (`u64`, unbounded count) = 13,824 B
//! - slot histograms: 60 × 1,728 × 2 B = 207,360 B
//! - slot summaries: 60 × 80 B = 4,800 B, plus the 296 B struct
//!
//! = 1,039,592 B ≈ 0.991 MiB (1 MiB = 1,048,576 B); at the default N = 10,000 it is
//! 319,592 B. The ring grows to N as events arrive; the rest is allocated up front.
//!
//! `u16` slot cells are what make 60 slot histograms fit. A cell that passes 65,535 events
//! (over 13,000 events/s into one bucket at most 1.6 % wide, for a whole 5 s slot) carries
//! into an overflow list of 12 B per (slot, bucket) pair, so counts stay exact;
//! `memory_bytes` counts that list, the config bound does not.

use serde::{Deserialize, Serialize};

use super::MetricsError;
use super::histogram::{Count, Histogram, Layout, rank, saturate_us};
use super::snapshot::{self, QuantileMode, WindowReport};

/// Layout of the last-N histogram: 128 sub-buckets, relative error < 0.39 %.
pub(crate) const N_LAYOUT: Layout = Layout::FINE;
/// Layout of the time-window and per-slot histograms: 64 sub-buckets, relative error
/// < 0.78 %. Half the buckets of `N_LAYOUT`, which is what keeps 60 slot histograms
/// inside the 1 MiB budget.
pub(crate) const T_LAYOUT: Layout = Layout::COMPACT;
const T_BUCKETS: usize = T_LAYOUT.buckets();

/// Sizes of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// N: how many of the latest events the count window holds.
    pub max_events: usize,
    /// T: how many seconds the time window spans.
    pub window_secs: u32,
    /// S: how many slots the time window is cut into (each `T/S` seconds long).
    pub slots: u32,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            max_events: 10_000,
            window_secs: 300,
            slots: 60,
        }
    }
}

impl WindowConfig {
    /// Checks the sizes: N in `1..=u32::MAX`, T in `1..=1_000_000` s (the ring's time
    /// offsets keep at least 12 days), S in `1..=65_536` and dividing `T` in milliseconds.
    pub fn validate(&self) -> Result<(), MetricsError> {
        if self.max_events == 0 || u32::try_from(self.max_events).is_err() {
            return Err(MetricsError::InvalidConfig(
                "max_events must be between 1 and 4294967295",
            ));
        }
        if !(1..=1_000_000).contains(&self.window_secs) {
            return Err(MetricsError::InvalidConfig(
                "window_secs must be between 1 and 1000000",
            ));
        }
        if !(1..=65_536).contains(&self.slots) {
            return Err(MetricsError::InvalidConfig(
                "slots must be between 1 and 65536",
            ));
        }
        if !u64::from(self.window_secs)
            .saturating_mul(1000)
            .is_multiple_of(u64::from(self.slots))
        {
            return Err(MetricsError::InvalidConfig(
                "slots must divide window_secs × 1000 (whole milliseconds per slot)",
            ));
        }
        Ok(())
    }

    /// Length of one slot in milliseconds.
    pub fn slot_ms(&self) -> u64 {
        u64::from(self.window_secs) * 1000 / u64::from(self.slots).max(1)
    }

    /// Upper bound of [`ServiceWindow::memory_bytes`] for this config (excluding the
    /// overflow list described in the module docs, which stays empty below 65,536 events
    /// per bucket per slot).
    pub fn memory_bound_bytes(&self) -> usize {
        let slots = self.slots as usize;
        std::mem::size_of::<ServiceWindow>()
            + 8 * self.max_events
            + N_LAYOUT.buckets() * 4
            + T_BUCKETS * 8
            + slots * (T_BUCKETS * 2 + std::mem::size_of::<Slot>())
    }
}

/// Which window a query is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The last N events, however old.
    LastN,
    /// The events of the last T seconds (slot-aligned, see the module docs).
    LastT,
}

/// Per-slot summary. `k` is the absolute slot number (`at_ms / slot_ms`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub(crate) k: u64,
    pub(crate) count: u64,
    pub(crate) errors: u64,
    pub(crate) sum_us: u128,
    pub(crate) min_us: u32,
    pub(crate) max_us: u32,
    pub(crate) sat_sum: f64,
    pub(crate) sat_count: u64,
    pub(crate) sat_max: f64,
}

impl Slot {
    const EMPTY: Slot = Slot {
        k: u64::MAX,
        count: 0,
        errors: 0,
        sum_us: 0,
        min_us: u32::MAX,
        max_us: 0,
        sat_sum: 0.0,
        sat_count: 0,
        sat_max: f64::NEG_INFINITY,
    };
}

/// Carry of a slot histogram cell past `u16::MAX`: `wraps × 65,536` more events.
#[derive(Clone, Copy, Debug)]
struct Overflow {
    slot: u32,
    bucket: u16,
    wraps: u32,
}

/// One scope's numbers, borrowed from the window for reports and rules.
pub(crate) struct ScopeData<'a, C: Count> {
    pub(crate) hist: &'a Histogram<C>,
    pub(crate) count: u64,
    pub(crate) errors: u64,
    pub(crate) sum_us: u128,
    /// Exact min/max when the scope tracks them (the time window does, per slot).
    pub(crate) min_max_us: Option<(u32, u32)>,
    /// The raw latencies of exactly this scope's events, when the ring still holds them.
    pub(crate) values: Option<(&'a [u32], &'a [u32])>,
    pub(crate) covered_ms: u64,
}

/// Quantiles answered by [`ServiceWindow::quantiles_us`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantiles {
    /// One value per requested quantile, in request order, in µs.
    pub values_us: Vec<u64>,
    /// Whether the values are exact (Exact mode with the raw values available).
    pub exact: bool,
}

/// Windowed latency/error/saturation collector for one service. Not shared by itself:
/// methods take `&mut self`, and [`super::Registry`] puts each window behind a mutex.
#[derive(Clone, Debug)]
pub struct ServiceWindow {
    config: WindowConfig,
    slot_ms: u64,
    started: bool,
    clock_ms: u64,
    first_ms: Option<u64>,

    ring: super::ring::Ring,
    n_hist: Histogram<u32>,
    n_sum_us: u64,
    n_errors: u64,

    slots: Box<[Slot]>,
    slot_hists: Box<[u16]>,
    overflow: Vec<Overflow>,
    t_hist: Histogram<u64>,
    head_k: u64,

    last_saturation: Option<(f64, u64)>,
}

impl ServiceWindow {
    /// An empty window; fails if the config does not validate.
    pub fn new(config: WindowConfig) -> Result<Self, MetricsError> {
        config.validate()?;
        let slots = config.slots as usize;
        Ok(ServiceWindow {
            config,
            slot_ms: config.slot_ms(),
            started: false,
            clock_ms: 0,
            first_ms: None,
            ring: super::ring::Ring::new(config.max_events),
            n_hist: Histogram::new(N_LAYOUT),
            n_sum_us: 0,
            n_errors: 0,
            slots: vec![Slot::EMPTY; slots].into_boxed_slice(),
            slot_hists: vec![0u16; slots * T_BUCKETS].into_boxed_slice(),
            overflow: Vec::new(),
            t_hist: Histogram::new(T_LAYOUT),
            head_k: 0,
            last_saturation: None,
        })
    }

    /// The window's sizes.
    pub fn config(&self) -> WindowConfig {
        self.config
    }

    /// Records one event: latency in µs (saturated at `u32::MAX`, ~71.6 min), outcome and
    /// time. O(1) amortized; the only non-constant work is expiring slots, once per slot.
    #[inline]
    pub fn record(&mut self, latency_us: u64, ok: bool, at_ms: u64) {
        let at = self.advance(at_ms);
        self.first_ms.get_or_insert(at);
        let v = saturate_us(latency_us);
        let error = !ok;

        if let Some(old) = self.ring.push(v, error, at) {
            self.n_hist
                .remove_from_bucket(N_LAYOUT.index(old.latency_us), 1);
            self.n_sum_us -= u64::from(old.latency_us);
            self.n_errors -= u64::from(old.error);
        }
        self.n_hist.add_us(v);
        self.n_sum_us += u64::from(v);
        self.n_errors += u64::from(error);

        let k = at / self.slot_ms;
        let pos = self.pos(k);
        let slot = &mut self.slots[pos];
        if slot.k != k {
            debug_assert_eq!(slot.k, u64::MAX, "a stale slot survived advance()");
            slot.k = k;
        }
        slot.count += 1;
        slot.errors += u64::from(error);
        slot.sum_us += u128::from(v);
        slot.min_us = slot.min_us.min(v);
        slot.max_us = slot.max_us.max(v);

        let b = T_LAYOUT.index(v);
        let cell = &mut self.slot_hists[pos * T_BUCKETS + b];
        if *cell == u16::MAX {
            *cell = 0;
            self.carry(pos, b);
        } else {
            *cell += 1;
        }
        self.t_hist.add_us(v);
    }

    /// Records a saturation gauge sample (in-flight requests, queue depth, …). Must be
    /// finite and within `0..=1e15`.
    pub fn record_saturation(&mut self, value: f64, at_ms: u64) -> Result<(), MetricsError> {
        check_saturation(value)?;
        let at = self.advance(at_ms);
        self.first_ms.get_or_insert(at);
        let k = at / self.slot_ms;
        let pos = self.pos(k);
        let slot = &mut self.slots[pos];
        slot.k = k;
        slot.sat_sum += value;
        slot.sat_count += 1;
        slot.sat_max = slot.sat_max.max(value);
        self.last_saturation = Some((value, at));
        Ok(())
    }

    /// Snapshot of both windows at `now_ms` (which also advances the window's clock).
    pub fn report(&mut self, now_ms: u64, mode: QuantileMode) -> WindowReport {
        let now = self.advance(now_ms);
        snapshot::build(self, now, mode)
    }

    /// The last-T window's figures, as `report(now_ms, mode).last_t` has them.
    pub fn last_t_stats(&mut self, now_ms: u64, mode: QuantileMode) -> snapshot::WindowStats {
        let now = self.advance(now_ms);
        snapshot::last_t_stats(self, now, mode)
    }

    /// The nearest-rank quantiles `qs` (any order) of one scope, in µs; `None` when the
    /// scope is empty. Fast mode reads the histogram only (one prefix-sum pass); Exact mode
    /// refines from the ring, and falls back to Fast for the time window when it holds
    /// more events than the ring (see `Quantiles::exact`).
    pub fn quantiles_us(
        &mut self,
        scope: Scope,
        qs: &[f64],
        mode: QuantileMode,
        now_ms: u64,
    ) -> Option<Quantiles> {
        self.advance(now_ms);
        match scope {
            Scope::LastN => quantiles_of(&self.last_n(self.clock_ms), qs, mode),
            Scope::LastT => quantiles_of(&self.last_t(self.clock_ms), qs, mode),
        }
    }

    /// How many latencies in `scope` are `≤ threshold_us`, and whether that count is exact.
    /// Exact whenever the ring holds the scope's events (always for `LastN`); otherwise the
    /// threshold's own bucket is judged by its representative value.
    pub fn count_le(&mut self, scope: Scope, threshold_us: u64, now_ms: u64) -> (u64, bool) {
        self.advance(now_ms);
        let t = saturate_us(threshold_us);
        match scope {
            Scope::LastN => count_le_of(&self.last_n(self.clock_ms), t),
            Scope::LastT => count_le_of(&self.last_t(self.clock_ms), t),
        }
    }

    /// Bytes held by this window: struct, ring capacity, histograms, slots, overflow.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.ring.memory_bytes() + self.n_hist.memory_bytes()
            - std::mem::size_of::<Histogram<u32>>()
            + self.t_hist.memory_bytes()
            - std::mem::size_of::<Histogram<u64>>()
            + std::mem::size_of_val(&*self.slots)
            + std::mem::size_of_val(&*self.slot_hists)
            + self.overflow.capacity() * std::mem::size_of::<Overflow>()
    }

    // ---- time ----------------------------------------------------------------------

    fn pos(&self, k: u64) -> usize {
        (k % u64::from(self.config.slots)) as usize
    }

    /// Moves the clock to `max(clock, at_ms)`, expiring slots that fall out of the time
    /// window, and returns the (clamped) time to use.
    #[inline]
    pub(crate) fn advance(&mut self, at_ms: u64) -> u64 {
        if !self.started {
            self.started = true;
            self.clock_ms = at_ms;
            self.head_k = at_ms / self.slot_ms;
            return at_ms;
        }
        if at_ms <= self.clock_ms {
            return self.clock_ms;
        }
        self.clock_ms = at_ms;
        let k = at_ms / self.slot_ms;
        if k > self.head_k {
            self.expire_before(k);
            self.head_k = k;
        }
        at_ms
    }

    /// Expires live slots that are no longer in the window once slot `k_new` is current.
    #[cold]
    fn expire_before(&mut self, k_new: u64) {
        let s = u64::from(self.config.slots);
        let Some(last_stale) = k_new.checked_sub(s) else {
            return;
        };
        let first_live = (self.head_k + 1).saturating_sub(s);
        let last = last_stale.min(self.head_k);
        if last < first_live {
            return;
        }
        for kk in first_live..=last {
            let pos = self.pos(kk);
            if self.slots[pos].k == kk {
                self.expire_slot(pos);
            }
        }
    }

    fn expire_slot(&mut self, pos: usize) {
        if self.slots[pos].count > 0 {
            let row = &mut self.slot_hists[pos * T_BUCKETS..(pos + 1) * T_BUCKETS];
            for (b, cell) in row.iter_mut().enumerate() {
                if *cell != 0 {
                    self.t_hist.remove_from_bucket(b, u64::from(*cell));
                    *cell = 0;
                }
            }
            let t_hist = &mut self.t_hist;
            self.overflow.retain(|o| {
                if o.slot as usize == pos {
                    t_hist.remove_from_bucket(usize::from(o.bucket), u64::from(o.wraps) << 16);
                    false
                } else {
                    true
                }
            });
        }
        self.slots[pos] = Slot::EMPTY;
    }

    #[cold]
    fn carry(&mut self, pos: usize, bucket: usize) {
        let (slot, bucket) = (pos as u32, bucket as u16);
        match self
            .overflow
            .iter_mut()
            .find(|o| o.slot == slot && o.bucket == bucket)
        {
            Some(o) => o.wraps += 1,
            None => self.overflow.push(Overflow {
                slot,
                bucket,
                wraps: 1,
            }),
        }
    }

    // ---- views for reports and rules -------------------------------------------------

    pub(crate) fn last_n(&self, now: u64) -> ScopeData<'_, u32> {
        let count = self.n_hist.count();
        ScopeData {
            hist: &self.n_hist,
            count,
            errors: self.n_errors,
            sum_us: u128::from(self.n_sum_us),
            min_max_us: None,
            values: Some(self.ring.newest(self.ring.len())),
            covered_ms: self.ring.oldest_ms().map_or(0, |t| now.saturating_sub(t)),
        }
    }

    pub(crate) fn last_t(&self, now: u64) -> ScopeData<'_, u64> {
        let (mut count, mut errors, mut sum_us) = (0u64, 0u64, 0u128);
        let (mut min_us, mut max_us) = (u32::MAX, 0u32);
        for slot in self.live_slots() {
            count += slot.count;
            errors += slot.errors;
            sum_us += slot.sum_us;
            if slot.count > 0 {
                min_us = min_us.min(slot.min_us);
                max_us = max_us.max(slot.max_us);
            }
        }
        debug_assert_eq!(count, self.t_hist.count());
        // Timestamps are monotone, so the time window is the newest `count` events: the
        // ring holds all of them exactly when it holds at least that many.
        let values = (count as usize <= self.ring.len()).then(|| self.ring.newest(count as usize));
        ScopeData {
            hist: &self.t_hist,
            count,
            errors,
            sum_us,
            min_max_us: (count > 0).then_some((min_us, max_us)),
            values,
            covered_ms: self.first_ms.map_or(0, |first| {
                now.saturating_sub(self.window_start_ms(now).max(first))
            }),
        }
    }

    /// Start of the oldest slot in the time window at `now`.
    pub(crate) fn window_start_ms(&self, now: u64) -> u64 {
        let k = now / self.slot_ms;
        k.saturating_add(1)
            .saturating_sub(u64::from(self.config.slots))
            * self.slot_ms
    }

    fn live_slots(&self) -> impl Iterator<Item = &Slot> + '_ {
        let s = u64::from(self.config.slots);
        let oldest = (self.head_k + 1).saturating_sub(s);
        self.slots
            .iter()
            .filter(move |slot| slot.k != u64::MAX && slot.k >= oldest && slot.k <= self.head_k)
    }

    /// The slot that holds absolute slot number `k`, if live.
    pub(crate) fn slot(&self, k: u64) -> Option<(usize, &Slot)> {
        let pos = self.pos(k);
        let slot = &self.slots[pos];
        (slot.k == k).then_some((pos, slot))
    }

    /// Nearest-rank quantiles of one slot's events from its compact histogram
    /// (bucket representatives, < 0.78 % relative error).
    pub(crate) fn slot_quantiles<const Q: usize>(&self, pos: usize, qs: [f64; Q]) -> [u32; Q] {
        let n = self.slots[pos].count;
        let row = &self.slot_hists[pos * T_BUCKETS..(pos + 1) * T_BUCKETS];
        let carried: Vec<Overflow> = self
            .overflow
            .iter()
            .filter(|o| o.slot as usize == pos)
            .copied()
            .collect();
        let mut out = [0u32; Q];
        let mut next = 0;
        let mut seen = 0u64;
        for (b, &cell) in row.iter().enumerate() {
            if next == Q {
                break;
            }
            let mut c = u64::from(cell);
            for o in &carried {
                if usize::from(o.bucket) == b {
                    c += u64::from(o.wraps) << 16;
                }
            }
            seen += c;
            while next < Q && rank(qs[next], n) <= seen {
                out[next] = T_LAYOUT.representative(b);
                next += 1;
            }
        }
        out
    }

    /// Saturation over the time window: (samples, sum, max).
    pub(crate) fn saturation_totals(&self) -> (u64, f64, f64) {
        self.live_slots()
            .fold((0, 0.0, f64::NEG_INFINITY), |(n, s, m), slot| {
                (n + slot.sat_count, s + slot.sat_sum, m.max(slot.sat_max))
            })
    }

    /// The latest saturation sample, if it is still inside the time window.
    pub(crate) fn current_saturation(&self, now: u64) -> Option<f64> {
        self.last_saturation
            .filter(|&(_, at)| at >= self.window_start_ms(now))
            .map(|(v, _)| v)
    }

    pub(crate) fn n_hist(&self) -> &Histogram<u32> {
        &self.n_hist
    }
}

/// Saturation samples must be finite and in `0..=1e15`: gauges count things, and the
/// bound keeps window sums finite so reports always serialise.
pub(crate) fn check_saturation(value: f64) -> Result<(), MetricsError> {
    if (0.0..=1e15).contains(&value) {
        Ok(())
    } else {
        Err(MetricsError::InvalidSaturation(value))
    }
}

/// Quantiles of one scope: one prefix-sum pass, plus one ring scan in Exact mode.
pub(crate) fn quantiles_of<C: Count>(
    d: &ScopeData<'_, C>,
    qs: &[f64],
    mode: QuantileMode,
) -> Option<Quantiles> {
    if d.count == 0 {
        return None;
    }
    // Ranks must be ascending for the single pass; remember where each came from.
    let mut order: Vec<(u64, usize)> = qs
        .iter()
        .enumerate()
        .map(|(i, &q)| (rank(q, d.count), i))
        .collect();
    order.sort_unstable();
    let ranks: Vec<u64> = order.iter().map(|&(k, _)| k).collect();
    let (sorted, exact): (Vec<u64>, bool) = match (mode, d.values) {
        (QuantileMode::Exact, Some(values)) => (
            super::exact::values_at_ranks(d.hist, &ranks, values)
                .into_iter()
                .map(u64::from)
                .collect(),
            true,
        ),
        _ => {
            let layout = d.hist.layout();
            let reps = d
                .hist
                .locate(&ranks)
                .into_iter()
                .map(|l| u64::from(layout.representative(l.bucket)))
                .collect();
            (reps, false)
        }
    };
    let mut values_us = vec![0u64; qs.len()];
    for (&(_, i), v) in order.iter().zip(sorted) {
        values_us[i] = v;
    }
    Some(Quantiles { values_us, exact })
}

/// Values `≤ t` in one scope, and whether the count is exact.
pub(crate) fn count_le_of<C: Count>(d: &ScopeData<'_, C>, t: u32) -> (u64, bool) {
    match d.values {
        Some(values) => (super::exact::count_le(d.hist, t, values), true),
        None => {
            let (lo, hi) = d.hist.count_le_bounds(u64::from(t));
            if lo == hi {
                (lo, true)
            } else {
                (super::exact::count_le_approx(d.hist, t), false)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn window(max_events: usize, window_secs: u32, slots: u32) -> ServiceWindow {
        ServiceWindow::new(WindowConfig {
            max_events,
            window_secs,
            slots,
        })
        .unwrap()
    }

    fn exact(w: &mut ServiceWindow, scope: Scope, qs: &[f64], now: u64) -> Vec<u64> {
        let q = w.quantiles_us(scope, qs, QuantileMode::Exact, now).unwrap();
        assert!(q.exact);
        q.values_us
    }

    #[test]
    fn config_validation_rejects_nonsense() {
        assert!(WindowConfig::default().validate().is_ok());
        let bad = [
            (0, 300, 60),
            (10, 0, 60),
            (10, 300, 0),
            (10, 1, 7), // 1000 ms / 7 slots is not whole milliseconds
        ];
        for (n, t, s) in bad {
            let c = WindowConfig {
                max_events: n,
                window_secs: t,
                slots: s,
            };
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn empty_window_has_no_quantiles() {
        let mut w = window(10, 10, 10);
        assert_eq!(
            w.quantiles_us(Scope::LastN, &[0.5], QuantileMode::Exact, 0),
            None
        );
        assert_eq!(
            w.quantiles_us(Scope::LastT, &[0.5], QuantileMode::Fast, 0),
            None
        );
        assert_eq!(w.count_le(Scope::LastN, 100, 0), (0, true));
    }

    #[test]
    fn one_event_is_every_quantile() {
        let mut w = window(10, 10, 10);
        w.record(1234, true, 1_000);
        for scope in [Scope::LastN, Scope::LastT] {
            assert_eq!(
                exact(&mut w, scope, &[0.0, 0.5, 0.999, 1.0], 1_000),
                vec![1234; 4]
            );
        }
    }

    #[test]
    fn hundred_values_p99_is_the_99th() {
        let mut w = window(1000, 60, 6);
        // 1..=100 ms in µs, recorded in shuffled order.
        for i in 0..100u64 {
            w.record(((i * 37) % 100 + 1) * 1000, true, 5);
        }
        let got = exact(&mut w, Scope::LastN, &[0.99, 0.5, 0.0, 1.0, 0.999], 5);
        assert_eq!(got, vec![99_000, 50_000, 1_000, 100_000, 100_000]);
        let fast = w
            .quantiles_us(Scope::LastN, &[0.99], QuantileMode::Fast, 5)
            .unwrap();
        assert!(!fast.exact);
        let err = (fast.values_us[0] as f64 - 99_000.0).abs() / 99_000.0;
        assert!(err < N_LAYOUT.relative_error_bound());
    }

    #[test]
    fn duplicates_are_counted_individually() {
        let mut w = window(100, 60, 6);
        for v in [700u64, 700, 700, 900, 900, 100_000] {
            w.record(v, true, 0);
        }
        assert_eq!(
            exact(&mut w, Scope::LastN, &[0.0, 0.5, 0.51, 0.83, 1.0], 0),
            vec![700, 700, 900, 900, 100_000]
        );
        assert_eq!(w.count_le(Scope::LastN, 700, 0), (3, true));
        assert_eq!(w.count_le(Scope::LastN, 899, 0), (3, true));
    }

    #[test]
    fn eviction_by_count_forgets_the_oldest_events() {
        let mut w = window(3, 60, 6);
        for (i, v) in [10_000u64, 20_000, 30_000, 40_000, 50_000]
            .into_iter()
            .enumerate()
        {
            w.record(v, i != 0, i as u64);
        }
        assert_eq!(
            exact(&mut w, Scope::LastN, &[0.0, 1.0], 10),
            vec![30_000, 50_000]
        );
        let d = w.last_n(10);
        assert_eq!((d.count, d.errors, d.sum_us), (3, 0, 120_000));
        // The time window still has all five, including the error.
        let d = w.last_t(10);
        assert_eq!((d.count, d.errors), (5, 1));
        assert!(
            d.values.is_none(),
            "the ring no longer holds the whole time window"
        );
        // So a threshold inside an occupied bucket is exact over the last N only; over the
        // last T the bucket of 30,000 (29,952..=30,207) is judged by its midpoint 30,079.
        assert_eq!(w.count_le(Scope::LastN, 30_001, 10), (1, true));
        assert_eq!(w.count_le(Scope::LastT, 30_001, 10), (2, false));
        assert_eq!(w.count_le(Scope::LastT, 30_207, 10), (3, true));
    }

    #[test]
    fn eviction_by_time_drops_whole_slots() {
        let mut w = window(100, 10, 10); // 1 s slots
        w.record(1_000, false, 500); // slot 0
        w.record(2_000, true, 1_500); // slot 1
        w.record(3_000, true, 9_999); // slot 9
        assert_eq!(w.last_t(9_999).count, 3);
        w.advance(10_000); // slot 10 current: slot 0 leaves
        let d = w.last_t(10_000);
        assert_eq!(
            (d.count, d.errors, d.min_max_us),
            (2, 0, Some((2_000, 3_000)))
        );
        w.advance(30_000); // everything leaves
        assert_eq!(w.last_t(30_000).count, 0);
        assert_eq!(w.t_hist.count(), 0);
        assert!(w.slot_hists.iter().all(|&c| c == 0));
        // The count window is not about time.
        assert_eq!(w.last_n(30_000).count, 3);
    }

    #[test]
    fn late_events_are_clamped_to_the_newest_time() {
        let mut w = window(100, 10, 10);
        w.record(1_000, true, 5_000);
        w.record(2_000, true, 1_000); // late: counted at 5,000
        w.advance(14_999); // slot 5 (5,000..5,999) is still the oldest live slot
        assert_eq!(w.last_t(14_999).count, 2);
        w.advance(15_000);
        assert_eq!(w.last_t(15_000).count, 0);
    }

    #[test]
    fn huge_latencies_saturate_at_u32_max() {
        let mut w = window(10, 10, 10);
        w.record(u64::MAX, true, 0);
        w.record(5, true, 0);
        assert_eq!(
            exact(&mut w, Scope::LastN, &[1.0], 0),
            vec![u64::from(u32::MAX)]
        );
        assert_eq!(
            exact(&mut w, Scope::LastT, &[1.0, 0.0], 0),
            vec![u64::from(u32::MAX), 5]
        );
    }

    #[test]
    fn slot_cells_carry_past_u16_and_expire_cleanly() {
        let mut w = window(10, 10, 10);
        for _ in 0..70_000 {
            w.record(42, true, 100);
        }
        w.record(43, true, 100);
        assert_eq!(w.overflow.len(), 1);
        assert_eq!(w.t_hist.count(), 70_001);
        let d = w.last_t(100);
        assert_eq!(d.count, 70_001);
        let (pos, _) = w.slot(0).unwrap();
        assert_eq!(w.slot_quantiles(pos, [0.5, 1.0]), [42, 43]);
        w.advance(20_000);
        assert_eq!(w.t_hist.count(), 0);
        assert!(w.overflow.is_empty());
    }

    #[test]
    fn memory_at_default_scale_fits_one_mebibyte() {
        let config = WindowConfig {
            max_events: 100_000,
            window_secs: 300,
            slots: 60,
        };
        let mut w = ServiceWindow::new(config).unwrap();
        for i in 0..250_000u64 {
            w.record(i % 90_000, i % 50 != 0, i * 3);
        }
        assert!(w.memory_bytes() <= config.memory_bound_bytes());
        assert!(
            config.memory_bound_bytes() <= 1 << 20,
            "{}",
            config.memory_bound_bytes()
        );
    }
}
