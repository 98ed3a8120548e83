//! Revision-diff benchmarks: what the history page's "compare" costs for an ordinary edit and
//! for the adversarial cases of two revisions whose 25,000 (over the cap) or 5,000 (under it,
//! where the deadline decides) lines all differ (Myers' worst case),
//! next to a plain line split of the same text, which any view of it costs anyway.
//!
//! Run: `cargo bench --bench revisions -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hindsight::postmortems::diff;

/// `n` numbered lines; `tag` makes every line differ from another text's.
fn lines(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| format!("{tag} line {i}: the pool was sized at {}\n", i % 7))
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("revisions");
    group.sample_size(10);
    // An ordinary edit: 500 lines, one in fifty changed.
    let old = lines(500, "same");
    let new: String = old
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i % 50 == 0 {
                format!("{l} (edited)\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    group.bench_with_input(
        BenchmarkId::new("split lines (baseline)", "edit 500"),
        &new,
        |b, t| b.iter(|| black_box(t.lines().count())),
    );
    group.bench_function(BenchmarkId::new("diff", "edit 500"), |b| {
        b.iter(|| {
            black_box(diff::lines(
                black_box(&old),
                black_box(&new),
                Instant::now() + diff::DEADLINE,
            ))
        });
    });
    // Adversarial: every one of 25,000 lines differs.
    let (a, z) = (lines(25_000, "old"), lines(25_000, "new"));
    group.bench_with_input(
        BenchmarkId::new("split lines (baseline)", "25000 differing"),
        &z,
        |b, t| b.iter(|| black_box(t.lines().count())),
    );
    group.bench_function(BenchmarkId::new("diff", "25000 differing"), |b| {
        b.iter(|| {
            black_box(diff::lines(
                black_box(&a),
                black_box(&z),
                Instant::now() + diff::DEADLINE,
            ))
        });
    });
    // Under the cap but still all different: 5,000 lines each, where the deadline decides.
    let (c, d) = (lines(5_000, "old"), lines(5_000, "new"));
    group.bench_function(BenchmarkId::new("diff", "5000 differing"), |b| {
        b.iter(|| {
            black_box(diff::lines(
                black_box(&c),
                black_box(&d),
                Instant::now() + diff::DEADLINE,
            ))
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
