//! Post-mortem writing benchmarks: the writing checks (blameless language, secrets, personal
//! data) against rendering the same Markdown, which every page view does anyway, so their cost
//! reads as a ratio to it. The checks run with the names compiled beforehand, as a page does
//! (once per request, then every section); compiling the names is measured on its own.
//!
//! The adversarial case is text an author (or a paste) can produce on purpose: a known first
//! name repeated with hyphens, one long "word" full of name matches, which once made the
//! negation look-behind rescan the whole prefix for every match.
//!
//! Run: `cargo bench --bench writing -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hindsight::markdown;
use hindsight::writing::{self, People};

/// A realistic section: prose with lists, code, a link, a few flagged phrases and one secret.
const PARAGRAPH: &str = "At 14:03 the deploy of **checkout 2.41** rolled out to 30% of hosts. \
The connection pool was sized at 2, so requests queued behind the payment call and the \
health check failed to detect it because it only probes `/healthz`. The on-call engineer \
should have been paged sooner: the alert waited 10 minutes. See the [dashboard](https://grafana.example.com/d/abc) \
and the runbook.\n\n- Rolled back at 14:26\n- Error rate back under 1% at 14:31\n- A token \
ghp_abcdefghijklmnopqrstuvwxyz0123456789 was pasted in the channel and rotated\n\n\
```\nERROR pool exhausted (size=2, waiting=318)\n```\n\n";

const PEOPLE: &[&str] = &[
    "Maya Okafor",
    "Lucas Brandt",
    "Priya Raman",
    "Tomás Silva",
    "Ada Lovelace",
    "Grace Hopper",
];

fn text(bytes: usize) -> String {
    PARAGRAPH.repeat(bytes / PARAGRAPH.len() + 1)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("writing");
    group.bench_function("people (build once)", |b| {
        b.iter(|| black_box(People::new(black_box(PEOPLE))));
    });
    let people = People::new(PEOPLE);
    let nobody = People::default();
    for size in [1_000usize, 8_000, 50_000] {
        let body = text(size);
        group.bench_with_input(
            BenchmarkId::new("render (baseline)", size),
            &body,
            |b, t| {
                b.iter(|| black_box(markdown::render(t)));
            },
        );
        group.bench_with_input(BenchmarkId::new("checks", size), &body, |b, t| {
            b.iter(|| black_box(writing::check(t, &people)));
        });
        group.bench_with_input(
            BenchmarkId::new("checks, no people", size),
            &body,
            |b, t| {
                b.iter(|| black_box(writing::check(t, &nobody)));
            },
        );
    }
    // 50 KB of "Maya-Maya-…": ~10,000 name matches in one hyphenated word.
    let adversarial = "Maya-".repeat(10_000);
    group.bench_with_input(
        BenchmarkId::new("render (baseline), adversarial names", adversarial.len()),
        &adversarial,
        |b, t| {
            b.iter(|| black_box(markdown::render(t)));
        },
    );
    group.bench_with_input(
        BenchmarkId::new("checks, adversarial names", adversarial.len()),
        &adversarial,
        |b, t| {
            b.iter(|| black_box(writing::check(t, &people)));
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
