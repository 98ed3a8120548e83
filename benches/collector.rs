//! Collector benchmarks: recording, quantile queries and snapshots, side by side with
//! hdrhistogram, DDSketch and a plain VecDeque + sort.
//!
//! Run: `cargo bench --bench collector -- --warm-up-time 1 --measurement-time 2`

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hindsight::metrics::{QuantileMode, Registry, Scope, ServiceWindow, WindowConfig};
use sketches_ddsketch::{Config as DdConfig, DDSketch};

/// Latencies drawn once: log-normal around 20 ms (σ = 1), like real request latency.
fn latencies(n: usize) -> Vec<u64> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        // xorshift64*: plenty for benchmark data, and no extra dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (uniform().max(1e-12), uniform());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (20_000.0 * z.exp()) as u64
        })
        .collect()
}

const DATA: usize = 1 << 20;
const MASK: usize = DATA - 1;
/// The budget case from the design: N = 100k, T = 300 s, 60 slots.
const BIG: WindowConfig = WindowConfig {
    max_events: 100_000,
    window_secs: 300,
    slots: 60,
};

/// Ten events per millisecond, so slots rotate as they would at 10k requests/s.
fn at(i: u64) -> u64 {
    1_700_000_000_000 + i / 10
}

fn filled(config: WindowConfig, data: &[u64], n: usize) -> ServiceWindow {
    let mut w = ServiceWindow::new(config).expect("valid config");
    for (i, &v) in data.iter().take(n).enumerate() {
        w.record(v, i % 100 != 0, at(i as u64));
    }
    w
}

fn record(c: &mut Criterion) {
    let data = Arc::new(latencies(DATA));
    let mut g = c.benchmark_group("record");

    {
        let mut w = filled(BIG, &data, 200_000);
        eprintln!(
            "memory: window N=100k T=300s S=60 holds {} B (bound {} B, 1 MiB = {} B)",
            w.memory_bytes(),
            BIG.memory_bound_bytes(),
            1 << 20
        );
        let mut i = 200_000u64;
        g.bench_function("window (1 thread)", |b| {
            b.iter(|| {
                let v = data[i as usize & MASK];
                w.record(black_box(v), v < 300_000, at(i));
                i += 1;
            })
        });
    }

    {
        let r = Registry::new(BIG, 16).expect("valid config");
        let mut i = 0u64;
        g.bench_function("registry (1 thread)", |b| {
            b.iter(|| {
                let v = data[i as usize & MASK];
                r.record("api", black_box(v), true, at(i))
                    .expect("known service");
                i += 1;
            })
        });
    }

    // Two threads record into the same service. Reported time = wall time / records
    // from both threads, i.e. the cost per record at full two-thread throughput.
    for handle in [false, true] {
        let r = Arc::new(Registry::new(BIG, 16).expect("valid config"));
        let name = if handle {
            "window handle (2 threads, same service)"
        } else {
            "registry (2 threads, same service)"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..2u64 {
                        let r = Arc::clone(&r);
                        let data = Arc::clone(&data);
                        s.spawn(move || {
                            let w = r.window("api").expect("service");
                            for i in 0..iters {
                                let v = data[(i * 2 + t) as usize & MASK];
                                if handle {
                                    let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
                                    w.record(v, true, at(i));
                                } else {
                                    r.record("api", v, true, at(i)).expect("known service");
                                }
                            }
                        });
                    }
                });
                start.elapsed() / 2
            })
        });
    }

    {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, u64::from(u32::MAX), 2)
            .expect("valid bounds");
        let mut i = 0usize;
        g.bench_function("hdrhistogram record (sigfig 2, no removal)", |b| {
            b.iter(|| {
                h.saturating_record(black_box(data[i & MASK]));
                i += 1;
            })
        });
    }
    {
        let mut d = DDSketch::new(DdConfig::defaults());
        let mut i = 0usize;
        g.bench_function("ddsketch add (no removal)", |b| {
            b.iter(|| {
                d.add(black_box(data[i & MASK] as f64));
                i += 1;
            })
        });
    }
    {
        let mut q: VecDeque<u64> = VecDeque::with_capacity(BIG.max_events);
        let mut i = 0usize;
        g.bench_function("vecdeque push + pop at 100k", |b| {
            b.iter(|| {
                if q.len() == BIG.max_events {
                    q.pop_front();
                }
                q.push_back(black_box(data[i & MASK]));
                i += 1;
            })
        });
    }
    g.finish();
}

fn query(c: &mut Criterion) {
    let data = latencies(DATA);
    let qs = [0.5, 0.95, 0.99];
    let mut g = c.benchmark_group("query p50/p95/p99");
    for n in [1_000usize, 10_000, 100_000] {
        let config = WindowConfig {
            max_events: n,
            ..BIG
        };
        // Twice N events, so the ring has wrapped and evicted.
        let mut w = filled(config, &data, 2 * n);
        let now = at(2 * n as u64);
        let ring: VecDeque<u32> = data[n..2 * n].iter().map(|&v| v as u32).collect();
        let mut hdr = hdrhistogram::Histogram::<u64>::new_with_bounds(1, u64::from(u32::MAX), 2)
            .expect("bounds");
        for &v in &data[n..2 * n] {
            hdr.saturating_record(v);
        }

        g.bench_with_input(BenchmarkId::new("fast (histogram)", n), &n, |b, _| {
            b.iter(|| w.quantiles_us(Scope::LastN, black_box(&qs), QuantileMode::Fast, now))
        });
        g.bench_with_input(
            BenchmarkId::new("exact (histogram + ring scan)", n),
            &n,
            |b, _| {
                b.iter(|| w.quantiles_us(Scope::LastN, black_box(&qs), QuantileMode::Exact, now))
            },
        );
        g.bench_with_input(BenchmarkId::new("copy + sort VecDeque", n), &n, |b, _| {
            b.iter(|| {
                let mut v: Vec<u32> = black_box(&ring).iter().copied().collect();
                v.sort_unstable();
                qs.map(|q| v[hindsight::metrics::rank(q, n as u64) as usize - 1])
            })
        });
        g.bench_with_input(
            BenchmarkId::new("hdrhistogram value_at_quantile", n),
            &n,
            |b, _| b.iter(|| qs.map(|q| black_box(&hdr).value_at_quantile(q))),
        );
        g.bench_with_input(BenchmarkId::new("fast, time window", n), &n, |b, _| {
            b.iter(|| w.quantiles_us(Scope::LastT, black_box(&qs), QuantileMode::Fast, now))
        });
    }
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    let data = latencies(DATA);
    let mut g = c.benchmark_group("snapshot (report + serde_json)");
    for n in [10_000usize, 100_000] {
        let config = WindowConfig {
            max_events: n,
            ..BIG
        };
        let mut w = filled(config, &data, 2 * n);
        let now = at(2 * n as u64);
        for mode in [QuantileMode::Fast, QuantileMode::Exact] {
            g.bench_with_input(BenchmarkId::new(format!("{mode:?}"), n), &n, |b, _| {
                b.iter(|| {
                    let report = w.report(now, mode);
                    serde_json::to_string(&report).expect("serialisable")
                })
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = record, query, snapshot
}
criterion_main!(benches);
