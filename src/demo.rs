//! Sample data: a realistic set of services, people and ~40 incidents with timelines over six
//! months (`hindsight demo`), or N generated incidents for load tests (`--incidents N`).

use chrono::{DateTime, Duration, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::SqliteConnection;

use crate::action_items::db::SampleItem;
use crate::alerts::{Tier, Watched};
use crate::auth::Role;
use crate::db::{Db, new_id};
use crate::error::{AppError, AppResult};
use crate::incidents::db::SampleIncident;
use crate::metrics::{QuantileMode, Registry, WindowConfig};
use crate::postmortems::db::SamplePostmortem;
use crate::timeline::EntryKind;

const SERVICES: &[(&str, &str)] = &[
    ("checkout", "Storefront"),
    ("payments", "Payments"),
    ("search", "Discovery"),
    ("auth", "Identity"),
    ("notifications", "Platform"),
    ("api-gateway", "Platform"),
    ("inventory", "Supply"),
];

const PEOPLE: &[(&str, &str)] = &[
    ("maya.okafor@demo.hindsight", "Maya Okafor"),
    ("lucas.brandt@demo.hindsight", "Lucas Brandt"),
    ("priya.raman@demo.hindsight", "Priya Raman"),
    ("tomas.silva@demo.hindsight", "Tomás Silva"),
];

/// (title, service, category, severity, summary, customer impact)
const STORIES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "Checkout returns 502 after deploy",
        "checkout",
        "deploy",
        "sev1",
        "A release of the checkout service shipped a connection-pool setting of 2, exhausting the pool under normal load.",
        "About 30% of checkout attempts failed with an error page for 25 minutes.",
    ),
    (
        "Card payments declined by provider",
        "payments",
        "dependency",
        "sev1",
        "The card processor's EU endpoint returned `503` for a subset of BINs.",
        "Card payments from EU cards failed; customers saw *Payment declined*.",
    ),
    (
        "Search results stale",
        "search",
        "data",
        "sev3",
        "The indexer stalled on a malformed product record and stopped consuming updates.",
        "New products did not appear in search for 6 hours.",
    ),
    (
        "Login latency above 5 s",
        "auth",
        "capacity",
        "sev2",
        "Password hashing saturated CPU on two of four auth nodes after traffic doubled.",
        "Logins took 5–12 seconds; some mobile clients timed out.",
    ),
    (
        "Push notifications delayed",
        "notifications",
        "infrastructure",
        "sev3",
        "A message-queue node ran out of disk; consumers fell behind.",
        "Order-shipped notifications arrived up to 2 hours late.",
    ),
    (
        "Gateway rejects requests with large headers",
        "api-gateway",
        "config change",
        "sev2",
        "A proxy config change lowered the header size limit to 4 KiB.",
        "Users with many cookies got `431` errors on every page.",
    ),
    (
        "Stock counts negative after migration",
        "inventory",
        "code defect",
        "sev2",
        "A migration double-applied reservations for orders placed during the run.",
        "Some products showed as out of stock while available.",
    ),
    (
        "Expired TLS certificate on payments callback",
        "payments",
        "process",
        "sev1",
        "The callback endpoint's certificate expired; renewal was not automated for this host.",
        "Payment confirmations were not received; orders stayed pending.",
    ),
    (
        "Search cluster split brain",
        "search",
        "infrastructure",
        "sev2",
        "A network partition between zones left two search masters.",
        "Search returned partial results for 40 minutes.",
    ),
    (
        "Session tokens invalidated by key rotation",
        "auth",
        "config change",
        "sev2",
        "A signing key was rotated without the grace period.",
        "All users were signed out at once.",
    ),
];

/// A demo alert rule: (name, service, signal, threshold, tier, severity of the incident a page
/// opens).
type RuleSpec = (&'static str, &'static str, Watched, f64, Tier, &'static str);

const RULES: &[RuleSpec] = &[
    (
        "Checkout errors",
        "checkout",
        Watched::ErrorRate,
        0.05,
        Tier::Page,
        "sev1",
    ),
    (
        "Checkout slow",
        "checkout",
        Watched::P99,
        1500.0,
        Tier::Page,
        "sev2",
    ),
    (
        "Payments failing",
        "payments",
        Watched::ErrorRate,
        0.02,
        Tier::Page,
        "sev1",
    ),
    (
        "Search slow",
        "search",
        Watched::P99,
        800.0,
        Tier::Ticket,
        "sev3",
    ),
    (
        "Search errors",
        "search",
        Watched::ErrorRate,
        0.05,
        Tier::Page,
        "sev2",
    ),
    (
        "Login slow",
        "auth",
        Watched::P99,
        2000.0,
        Tier::Page,
        "sev2",
    ),
    (
        "Auth errors",
        "auth",
        Watched::ErrorRate,
        0.05,
        Tier::Page,
        "sev2",
    ),
    (
        "Notifications slow",
        "notifications",
        Watched::P95,
        3000.0,
        Tier::Ticket,
        "sev3",
    ),
    (
        "Gateway errors",
        "api-gateway",
        Watched::ErrorRate,
        0.01,
        Tier::Page,
        "sev2",
    ),
    (
        "Inventory errors",
        "inventory",
        Watched::ErrorRate,
        0.03,
        Tier::Log,
        "sev3",
    ),
];

/// What a story looked like to the collector and what its responders did and learned, in the
/// order of `STORIES`.
struct Detail {
    /// The rule (index into `RULES`) that caught it; `None` when people noticed first.
    rule: Option<usize>,
    /// Median latency (ms) and error rate while it was happening (the service's usual
    /// figures come from `BASELINE`).
    latency_ms: f64,
    error_rate: f64,
    /// How it was noticed when no rule caught it.
    noticed: &'static str,
    action: &'static str,
    mitigation: &'static str,
    root_cause: &'static str,
    items: [(&'static str, &'static str); 2],
}

/// The usual median latency (ms) of each service.
const BASELINE: &[(&str, f64)] = &[
    ("checkout", 85.0),
    ("payments", 180.0),
    ("search", 45.0),
    ("auth", 120.0),
    ("notifications", 30.0),
    ("api-gateway", 12.0),
    ("inventory", 25.0),
];

const DETAILS: &[Detail] = &[
    Detail {
        rule: Some(0),
        latency_ms: 95.0,
        error_rate: 0.30,
        noticed: "",
        action: "The errors started with the 14:02 deploy; rolling checkout back to the previous release.",
        mitigation: "Rollback complete; checkout error rate back under 0.5%.",
        root_cause: "The release changed the database pool size from 20 to 2 in the shared config file. Under normal load requests queued for a connection and timed out at the proxy (502). The canary took no traffic, so it passed.",
        items: [
            ("Alert on connection pool saturation", "detect"),
            (
                "Give the checkout canary real traffic before promotion",
                "prevent",
            ),
        ],
    },
    Detail {
        rule: Some(2),
        latency_ms: 260.0,
        error_rate: 0.18,
        noticed: "",
        action: "Declines are all EU BINs answered 503 by the processor's EU endpoint; provider ticket opened.",
        mitigation: "Routed EU card traffic to the processor's secondary region; approvals recovered.",
        root_cause: "The card processor's EU endpoint failed for a subset of BINs. Our client had no fallback region and treated 503 as a decline, so customers were told their card was declined.",
        items: [
            (
                "Fail over to the processor's secondary region automatically",
                "mitigate",
            ),
            (
                "Show a retry message instead of a decline on provider errors",
                "mitigate",
            ),
        ],
    },
    Detail {
        rule: None,
        latency_ms: 48.0,
        error_rate: 0.002,
        noticed: "A merchandiser reported that products added this morning do not appear in search.",
        action: "The indexer is stuck on one product record with a malformed price; skipping it.",
        mitigation: "Indexer consuming again; the backlog of 6 hours is draining.",
        root_cause: "A product record with a price of `NaN` made the indexer throw on every retry, and it retried the same record forever. Nothing alerted on indexing lag.",
        items: [
            ("Alert on search indexing lag over 15 minutes", "detect"),
            ("Dead-letter records the indexer cannot parse", "prevent"),
        ],
    },
    Detail {
        rule: Some(5),
        latency_ms: 5200.0,
        error_rate: 0.04,
        noticed: "",
        action: "CPU at 100% on auth-2 and auth-4 (password hashing); adding two nodes.",
        mitigation: "Four new auth nodes in rotation; login p99 back under 400 ms.",
        root_cause: "Traffic doubled after the marketing e-mail and password hashing (bcrypt cost 12) saturated CPU on two of four nodes. The autoscaler watches memory, not CPU.",
        items: [
            ("Scale auth on CPU as well as memory", "prevent"),
            ("Load-test login at twice the peak traffic", "prevent"),
        ],
    },
    Detail {
        rule: Some(7),
        latency_ms: 4100.0,
        error_rate: 0.01,
        noticed: "",
        action: "Queue node mq-3 has a full disk; consumers are 40 minutes behind. Freeing space.",
        mitigation: "Disk freed and retention shortened; consumers caught up.",
        root_cause: "Message retention was 14 days on a 100 GB disk; a week of higher volume filled it and the broker stopped accepting writes to that node's partitions.",
        items: [
            ("Alert on queue disk usage above 80%", "detect"),
            ("Size queue retention by volume, not days", "prevent"),
        ],
    },
    Detail {
        rule: Some(8),
        latency_ms: 14.0,
        error_rate: 0.12,
        noticed: "",
        action: "All errors are 431 from the edge proxy; the header limit changed in this morning's config push. Reverting it.",
        mitigation: "Header limit back to 16 KiB; 431s stopped.",
        root_cause: "A proxy config change copied from another environment lowered the header size limit to 4 KiB. Config changes to the edge are not canaried.",
        items: [
            ("Canary edge proxy config changes", "prevent"),
            (
                "Add a large-cookie request to the gateway smoke test",
                "detect",
            ),
        ],
    },
    Detail {
        rule: None,
        latency_ms: 27.0,
        error_rate: 0.004,
        noticed: "Support reported products showing out of stock that are on the shelf.",
        action: "Negative stock counts for orders placed during last night's migration; pausing the reservation job.",
        mitigation: "Reservations recomputed from orders; stock counts correct.",
        root_cause: "The migration re-applied reservations for orders placed while it ran, because it was not idempotent and the job was not paused.",
        items: [
            (
                "Backfill the records the migration double-applied",
                "repair",
            ),
            (
                "Make data migrations idempotent and test them on a copy",
                "prevent",
            ),
        ],
    },
    Detail {
        rule: Some(2),
        latency_ms: 190.0,
        error_rate: 0.35,
        noticed: "",
        action: "The callback host's TLS certificate expired at 00:00 UTC; issuing a new one by hand.",
        mitigation: "New certificate installed; the processor is retrying the missed callbacks.",
        root_cause: "The payments callback host was set up by hand before certificate renewal was automated and was never added to it.",
        items: [
            ("Automate certificate renewal for every host", "prevent"),
            ("Alert 14 days before any certificate expires", "detect"),
        ],
    },
    Detail {
        rule: Some(4),
        latency_ms: 620.0,
        error_rate: 0.15,
        noticed: "",
        action: "Two masters after the zone partition; stopping the master in zone b.",
        mitigation: "One master again; shards re-replicated and results complete.",
        root_cause: "The search cluster's minimum master count was 1, so a network partition between zones let each side elect a master.",
        items: [
            ("Set the minimum master count to a quorum", "prevent"),
            ("Write the search failover runbook", "process"),
        ],
    },
    Detail {
        rule: Some(6),
        latency_ms: 90.0,
        error_rate: 0.22,
        noticed: "",
        action: "Every session token fails validation since the key rotation at 09:00; restoring the old key as a verification key.",
        mitigation: "Old key accepted for verification again; sign-ins succeed.",
        root_cause: "The signing key was rotated without a grace period in which the old key still verifies tokens, so every session was invalid at once.",
        items: [
            ("Rotate signing keys with an overlap period", "prevent"),
            ("Write the key rotation runbook", "process"),
        ],
    },
];

/// How many days ago each of the 40 sample incidents started: spread over six months, with the
/// last six within the last two weeks so last week's review and this month have content
/// whatever the day of the week (any seven days in 1..=13 hold at least one of them).
fn days_ago(i: u32, rng: &mut Rng) -> i64 {
    match i {
        34 => 13,
        35 => 11,
        36 => 9,
        37 => 6,
        38 => 3,
        39 => 0,
        _ => 180 - i64::from(i) * 5 - rng.below(3) as i64,
    }
}

/// Loads the sample set once; a second run changes nothing.
pub async fn load_sample(db: &Db) -> AppResult<()> {
    let done = crate::auth::db::count_audit(&db.reader, "demo.load").await?;
    if done > 0 {
        println!("demo data is already loaded; nothing to do");
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    let people = ensure_people(&mut tx).await?;
    ensure_services(&mut tx).await?;
    let now = Utc::now();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let rules = insert_rules(&mut tx).await?;
    let mut number = crate::incidents::db::next_number(&mut tx).await?;
    let (mut snapshots, mut firings) = (0, 0);
    for i in 0..40u32 {
        let story = STORIES[i as usize % STORIES.len()];
        let detail = &DETAILS[i as usize % DETAILS.len()];
        let minutes = if i == 39 {
            60 + rng.below(120)
        } else {
            rng.below(600)
        };
        let started =
            now - Duration::days(days_ago(i, &mut rng)) - Duration::minutes(minutes as i64);
        // The most recent few are still open, the rest resolved or closed.
        let status = match i {
            39 => "investigating",
            38 => "identified",
            37 => "monitoring",
            _ if i % 3 == 0 => "resolved",
            _ => "closed",
        };
        let title = if i < STORIES.len() as u32 {
            story.0.to_owned()
        } else {
            format!("{} (again)", story.0)
        };
        let commander = &people[rng.below(people.len() as u64) as usize];
        let rule = detail.rule.map(|r| &rules[r]);
        let detection = match rule {
            Some(rule) => format!("Alert fired: **{}** — {}.", rule.name, rule.describe()),
            None => detail.noticed.to_owned(),
        };
        let lines = Lines {
            detection: &detection,
            action: detail.action,
            mitigation: detail.mitigation,
        };
        let (id, milestones) = insert_incident(
            &mut tx,
            number,
            &title,
            story,
            status,
            started,
            commander,
            &mut rng,
            6,
            Some(&lines),
        )
        .await?;
        insert_story_items(
            &mut tx,
            &id,
            story.1,
            started,
            &people,
            &mut rng,
            &detail.items,
        )
        .await?;
        let (detected, mitigated) = milestones;
        // The rule that caught it fired at detection and stopped at mitigation (still firing
        // while the incident is not mitigated); a page opened the incident with a snapshot.
        let trigger = match rule {
            Some(rule) => {
                firings += 1;
                let event = crate::alerts::db::insert_event(
                    &mut tx,
                    rule,
                    Some(match rule.signal {
                        Watched::ErrorRate => detail.error_rate,
                        _ => detail.latency_ms * 2.5,
                    }),
                    detected,
                )
                .await?;
                if let Some(end) = mitigated {
                    crate::alerts::db::end_event(&mut tx, &event, end).await?;
                }
                if rule.tier == Tier::Page {
                    crate::alerts::db::link_incident(&mut tx, &event, &id).await?;
                    crate::signals::Trigger::Alert
                } else {
                    crate::signals::Trigger::IncidentOpen
                }
            }
            None => crate::signals::Trigger::IncidentOpen,
        };
        let report = incident_window(story.1, detail, detected, &mut rng)?;
        crate::signals::db::insert(&mut tx, &id, story.1, trigger, &report, None, None).await?;
        if trigger == crate::signals::Trigger::Alert {
            let body = crate::signals::snapshot_note(story.1, trigger, &report);
            crate::timeline::db::insert(&mut tx, &id, detected, EntryKind::Snapshot, &body, None)
                .await?;
        }
        snapshots += 1;
        // Older incidents have their post-mortems written; the latest few are still open.
        let review = match i {
            _ if i >= 37 => None,
            34..=36 => Some("draft"),
            32 | 33 => Some("in_review"),
            _ => Some("published"),
        };
        if let Some(pm_status) = review {
            // The reviewer is a colleague: authors do not review their own post-mortem.
            let at = people.iter().position(|p| p == commander).unwrap_or(0);
            let reviewer = &people[(at + 1) % people.len()];
            let went_well = if rule.is_some() {
                "The alert paged the on-call within minutes, and the snapshot on the incident showed which signal moved and when."
            } else {
                "Once it was reported, the on-call found the cause within the hour."
            };
            let sections = Sections {
                trigger: story.4,
                root_cause: detail.root_cause,
                detection: &detection,
                resolution: detail.mitigation,
                went_well,
                detection_method: if rule.is_some() {
                    "alert"
                } else if detail.noticed.starts_with("Support") {
                    "customer_report"
                } else {
                    "employee"
                },
            };
            insert_postmortem(
                &mut tx, &id, story, &sections, pm_status, commander, reviewer, started,
            )
            .await?;
        }
        number += 1;
    }
    let noise = insert_noise(&mut tx, &rules, now, &mut rng).await?;
    crate::auth::db::audit(&mut tx, None, "demo.load", "sample data", "40 incidents").await?;
    tx.commit().await?;
    println!(
        "loaded {} services, {} people and 40 incidents with timelines, action items and post-mortems, \
         {snapshots} metric snapshots, {} alert rules and {} alert firings",
        SERVICES.len(),
        PEOPLE.len(),
        rules.len(),
        firings + noise,
    );
    Ok(())
}

/// Generates `count` incidents with `entries` timeline entries each, in batches.
pub async fn generate(db: &Db, count: u64, entries: u32, items: u32) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    let people = ensure_people(&mut tx).await?;
    ensure_services(&mut tx).await?;
    let mut number = crate::incidents::db::next_number(&mut tx).await?;
    tx.commit().await?;

    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} incidents · {per_sec} · eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let now = Utc::now();
    let mut rng = Rng(0x0dd_ba11 ^ count);
    let span_minutes = 2 * 365 * 24 * 60;
    let mut left = count;
    while left > 0 {
        let batch = left.min(2_000);
        let mut tx = db.begin_write().await?;
        for _ in 0..batch {
            let story = STORIES[rng.below(STORIES.len() as u64) as usize];
            let started = now - Duration::minutes(rng.below(span_minutes) as i64);
            let status = match rng.below(20) {
                0 => "investigating",
                1 => "identified",
                2 => "monitoring",
                3..=9 => "resolved",
                _ => "closed",
            };
            let commander = &people[rng.below(people.len() as u64) as usize];
            let (id, _) = insert_incident(
                &mut tx, number, story.0, story, status, started, commander, &mut rng, entries,
                None,
            )
            .await?;
            insert_items(&mut tx, &id, story.1, started, &people, &mut rng, items).await?;
            number += 1;
        }
        tx.commit().await?;
        bar.inc(batch);
        left -= batch;
    }
    bar.finish();
    println!(
        "generated {count} incidents with {entries} timeline entries and {items} action items each"
    );
    Ok(())
}

/// How many incidents of a realistic data set are still open (the most recent days').
const REALISTIC_OPEN: u64 = 40;
/// Incidents of a realistic data set with a major incident's timeline, and its length.
const REALISTIC_LONG: u64 = 5;
const REALISTIC_LONG_ENTRIES: u32 = 1_200;

/// `count` incidents shaped like an organisation at scale, for the storm benchmark: numbers
/// follow start times over four years (a steady weekly density per team), every incident older
/// than two weeks is closed (a few only resolved), about `REALISTIC_OPEN` of the last three
/// days are open, the middle incident, the newest open sev1 and a few others carry 1,200
/// timeline entries, closed sev1s have published post-mortems (recent ones drafts or in
/// review), and recent sev1s a metrics snapshot.
pub async fn generate_realistic(db: &Db, count: u64, entries: u32, items: u32) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    let people = ensure_people(&mut tx).await?;
    ensure_services(&mut tx).await?;
    let first = crate::incidents::db::next_number(&mut tx).await?;
    tx.commit().await?;

    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} incidents · {per_sec} · eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let now = Utc::now();
    let mut rng = Rng(0x5708_ba11 ^ count);
    let span_minutes: u64 = 4 * 365 * 24 * 60;
    let step = span_minutes as f64 / count.max(1) as f64;
    // Of the incidents of the last three days, this share is still open.
    let recent = (count as f64 * (3.0 * 24.0 * 60.0) / span_minutes as f64).max(1.0);
    let open_share = (REALISTIC_OPEN as f64 / recent).min(1.0);
    let long: Vec<u64> = (0..REALISTIC_LONG)
        .map(|k| match k {
            0 => count / 2,
            _ => count * k / REALISTIC_LONG,
        })
        .collect();
    let mut long_open_sev1 = false;
    let (mut postmortems, mut snapshots, mut open) = (0u64, 0u64, 0u64);
    let mut done = 0u64;
    while done < count {
        let batch = (count - done).min(2_000);
        let mut tx = db.begin_write().await?;
        for i in done..done + batch {
            let story = STORIES[rng.below(STORIES.len() as u64) as usize];
            let detail =
                &DETAILS[STORIES.iter().position(|s| s.0 == story.0).unwrap_or(0) % DETAILS.len()];
            let back =
                ((count - i) as f64 * step) as i64 - rng.below(step.max(1.0) as u64) as i64 / 2;
            let started = now - Duration::minutes(back.max(5));
            let age_days = (now - started).num_days();
            let status = if age_days < 3 && (rng.below(10_000) as f64) < open_share * 10_000.0 {
                open += 1;
                ["investigating", "identified", "identified", "monitoring"][rng.below(4) as usize]
            } else if age_days < 14 {
                if rng.below(2) == 0 {
                    "resolved"
                } else {
                    "closed"
                }
            } else if rng.below(100) < 3 {
                "resolved"
            } else {
                "closed"
            };
            let severity = story.3;
            let open_now = !matches!(status, "resolved" | "closed");
            let is_long = long.contains(&i) || (open_now && severity == "sev1" && !long_open_sev1);
            if is_long && open_now {
                long_open_sev1 = true;
            }
            let commander = &people[rng.below(people.len() as u64) as usize];
            let n = if is_long {
                REALISTIC_LONG_ENTRIES
            } else {
                entries
            };
            let number = first + i as i64;
            let (id, (detected, _)) = insert_incident(
                &mut tx, number, story.0, story, status, started, commander, &mut rng, n, None,
            )
            .await?;
            insert_items(&mut tx, &id, story.1, started, &people, &mut rng, items).await?;
            if severity == "sev1" && (age_days < 90 || is_long) {
                let report = incident_window(story.1, detail, detected, &mut rng)?;
                let trigger = crate::signals::Trigger::IncidentOpen;
                crate::signals::db::insert(&mut tx, &id, story.1, trigger, &report, None, None)
                    .await?;
                snapshots += 1;
            }
            if severity == "sev1" && !open_now {
                let pm_status = match age_days {
                    0..=6 => "draft",
                    7..=13 => "in_review",
                    _ => "published",
                };
                let at = people.iter().position(|p| p == commander).unwrap_or(0);
                let reviewer = &people[(at + 1) % people.len()];
                let sections = Sections {
                    trigger: story.4,
                    root_cause: detail.root_cause,
                    detection: "The alert paged the on-call.",
                    resolution: detail.mitigation,
                    went_well: "The on-call found the cause within the hour.",
                    detection_method: "alert",
                };
                insert_postmortem(
                    &mut tx, &id, story, &sections, pm_status, commander, reviewer, started,
                )
                .await?;
                postmortems += 1;
            }
        }
        tx.commit().await?;
        bar.inc(batch);
        done += batch;
    }
    bar.finish();
    println!(
        "generated {count} incidents over four years ({open} open; {entries} timeline entries \
         each, {REALISTIC_LONG_ENTRIES} on the long ones; {items} action items each), \
         {postmortems} post-mortems and {snapshots} snapshots"
    );
    Ok(())
}

/// Demo people exist with an unusable password: they author data but cannot sign in.
async fn ensure_people(conn: &mut SqliteConnection) -> Result<Vec<String>, AppError> {
    let mut ids = Vec::new();
    for (i, (email, name)) in PEOPLE.iter().enumerate() {
        let id = crate::auth::db::ensure_user(
            conn,
            &format!("00000000-0000-7000-8000-00000000000{i}"),
            email,
            name,
            Role::Responder,
            "!demo-no-login",
        )
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn ensure_services(conn: &mut SqliteConnection) -> Result<(), AppError> {
    for (name, team) in SERVICES {
        crate::catalog::db::ensure_service(conn, name, team).await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_incident(
    conn: &mut SqliteConnection,
    number: i64,
    title: &str,
    story: (&str, &str, &str, &str, &str, &str),
    status: &str,
    started: DateTime<Utc>,
    commander: &str,
    rng: &mut Rng,
    entries: u32,
    lines: Option<&Lines<'_>>,
) -> Result<(String, (DateTime<Utc>, Option<DateTime<Utc>>)), AppError> {
    let (_, service, category, severity, summary, impact) = story;
    let team = SERVICES
        .iter()
        .find(|(s, _)| *s == service)
        .map_or("", |(_, t)| *t);
    let detected = started + Duration::minutes(1 + rng.below(20) as i64);
    let acknowledged = detected + Duration::minutes(1 + rng.below(10) as i64);
    let mitigated = acknowledged + Duration::minutes(5 + rng.below(90) as i64);
    let resolved = mitigated + Duration::minutes(5 + rng.below(120) as i64);
    let closed = resolved + Duration::days(1 + rng.below(10) as i64);
    let reached = |s: &str| -> bool {
        let order = [
            "investigating",
            "identified",
            "monitoring",
            "resolved",
            "closed",
        ];
        order.iter().position(|x| *x == status) >= order.iter().position(|x| *x == s)
    };
    let id = new_id();
    crate::incidents::db::insert_sample(
        conn,
        &SampleIncident {
            id: &id,
            number,
            title,
            summary,
            impact,
            severity,
            status,
            service,
            category,
            team,
            commander,
            started_at: started,
            detected_at: detected,
            acknowledged_at: acknowledged,
            mitigated_at: reached("monitoring").then_some(mitigated),
            resolved_at: reached("resolved").then_some(resolved),
            closed_at: reached("closed").then_some(closed),
        },
    )
    .await?;

    let script: [(&str, &str, DateTime<Utc>, bool); 6] = [
        (
            "detection",
            "Alert fired: error rate above threshold on **{service}**.",
            detected,
            true,
        ),
        (
            "escalation",
            "Paged the {team} on-call; incident channel opened.",
            acknowledged,
            true,
        ),
        (
            "action",
            "Checked recent deploys and config changes; rolling back the latest release.",
            acknowledged + Duration::minutes(3),
            true,
        ),
        (
            "communication",
            "Status page updated: *investigating elevated errors*.",
            acknowledged + Duration::minutes(5),
            true,
        ),
        (
            "mitigation",
            "Rollback complete; error rate back under 1%.",
            mitigated,
            reached("monitoring"),
        ),
        (
            "resolution",
            "No errors for 30 minutes; resolving. Follow-ups go to the post-mortem.",
            resolved,
            reached("resolved"),
        ),
    ];
    let mut script = script;
    if let Some(lines) = lines {
        script[0].1 = lines.detection;
        script[2].1 = lines.action;
        script[4].1 = lines.mitigation;
    }
    for n in 0..entries {
        let (kind, body, at, applies) = script[n as usize % script.len()];
        if !applies && n < 6 {
            continue;
        }
        let at = if n < 6 {
            at
        } else {
            acknowledged + Duration::minutes(i64::from(n) * 2)
        };
        let body = body.replace("{service}", service).replace("{team}", team);
        let kind = EntryKind::parse(kind)
            .ok_or_else(|| AppError::Internal(format!("unknown timeline kind {kind}")))?;
        crate::timeline::db::insert(conn, &id, at, kind, &body, Some(commander)).await?;
    }
    Ok((id, (detected, reached("monitoring").then_some(mitigated))))
}

/// Post-mortem sections of a sample story.
struct Sections<'a> {
    trigger: &'a str,
    root_cause: &'a str,
    detection: &'a str,
    resolution: &'a str,
    went_well: &'a str,
    detection_method: &'a str,
}

/// Timeline lines of a sample story that replace the generic ones.
struct Lines<'a> {
    detection: &'a str,
    action: &'a str,
    mitigation: &'a str,
}

/// A post-mortem from the default template with the story's facts written in, its primary root
/// cause set to the story's category and `status` as given.
#[allow(clippy::too_many_arguments)]
async fn insert_postmortem(
    conn: &mut SqliteConnection,
    incident_id: &str,
    story: (&str, &str, &str, &str, &str, &str),
    sections: &Sections<'_>,
    status: &str,
    author: &str,
    reviewer: &str,
    started: DateTime<Utc>,
) -> Result<(), AppError> {
    let (_, service, category, _, summary, impact) = story;
    crate::postmortems::db::insert_sample(
        conn,
        &SamplePostmortem {
            incident_id,
            status,
            author_id: author,
            started_at: started,
            summary,
            impact,
            root_cause: sections.root_cause,
            trigger: sections.trigger,
            detection: sections.detection,
            resolution: sections.resolution,
            went_well: sections.went_well,
            detection_method: sections.detection_method,
            category,
            cause_description: &format!("{category} on {service}"),
            reviewer_id: reviewer,
        },
    )
    .await
}

const ITEM_TITLES: &[(&str, &str)] = &[
    ("Add a canary stage to the deploy pipeline", "prevent"),
    ("Alert on connection pool saturation", "detect"),
    ("Write the failover runbook", "process"),
    ("Automate certificate renewal for every host", "prevent"),
    (
        "Add a circuit breaker around the provider client",
        "mitigate",
    ),
    ("Backfill the records the migration skipped", "repair"),
    ("Load-test the new capacity limits", "prevent"),
];

/// Action items of an incident with titles drawn from `ITEM_TITLES` (generated data).
async fn insert_items(
    conn: &mut SqliteConnection,
    incident_id: &str,
    service: &str,
    started: DateTime<Utc>,
    people: &[String],
    rng: &mut Rng,
    count: u32,
) -> Result<(), AppError> {
    let titles: Vec<(&str, &str)> = (0..count)
        .map(|_| ITEM_TITLES[rng.below(ITEM_TITLES.len() as u64) as usize])
        .collect();
    insert_items_titled(conn, incident_id, service, started, people, rng, &titles).await
}

/// Action items with the given titles and kinds: mostly closed for old incidents, open for
/// recent ones.
async fn insert_items_titled(
    conn: &mut SqliteConnection,
    incident_id: &str,
    service: &str,
    started: DateTime<Utc>,
    people: &[String],
    rng: &mut Rng,
    titles: &[(&str, &str)],
) -> Result<(), AppError> {
    let team = SERVICES
        .iter()
        .find(|(s, _)| *s == service)
        .map_or("", |(_, t)| *t);
    let now = Utc::now();
    let age_days = (now - started).num_days();
    for &(title, kind) in titles {
        let created = started + Duration::hours(2 + rng.below(72) as i64);
        let due = (created + Duration::days(7 + rng.below(40) as i64)).date_naive();
        let status = match (age_days, rng.below(10)) {
            (a, r) if a > 60 && r < 8 => "done",
            (_, 0) => "wont_do",
            (_, 1..=3) => "in_progress",
            (a, r) if a > 14 && r < 6 => "done",
            _ => "open",
        };
        let completed = matches!(status, "done" | "wont_do")
            .then(|| (created + Duration::days(1 + rng.below(30) as i64)).min(now));
        let owner =
            (rng.below(8) > 0).then(|| people[rng.below(people.len() as u64) as usize].clone());
        let priority = ["p1", "p2", "p2", "p3"][rng.below(4) as usize];
        crate::action_items::db::insert_sample(
            conn,
            &SampleItem {
                incident_id,
                title,
                owner_id: owner.as_deref(),
                team,
                kind,
                priority,
                status,
                wont_do_reason: if status == "wont_do" {
                    "Superseded by the platform migration"
                } else {
                    ""
                },
                due_on: due,
                completed_at: completed,
                completed_by: completed.and(owner.as_deref()),
                created_by: owner.as_deref(),
                created_at: created,
            },
        )
        .await?;
    }
    Ok(())
}

/// The demo alert rules, as stored.
async fn insert_rules(
    conn: &mut SqliteConnection,
) -> Result<Vec<crate::alerts::AlertRule>, AppError> {
    let mut rules = Vec::new();
    for (name, service, watched, threshold, tier, severity) in RULES {
        let values = crate::alerts::RuleValues {
            name: (*name).to_owned(),
            service: (*service).to_owned(),
            watched: *watched,
            threshold: *threshold,
            min_samples: 20,
            for_secs: 60,
            tier: *tier,
            page_severity: crate::incidents::Severity::parse(severity)
                .ok_or_else(|| AppError::Internal(format!("unknown severity {severity}")))?,
            enabled: true,
        };
        let id = crate::alerts::db::insert_rule(conn, &values).await?;
        let rule = crate::alerts::db::find_rule(&mut *conn, &id)
            .await?
            .ok_or_else(|| AppError::Internal("demo rule vanished".into()))?;
        rules.push(rule);
    }
    Ok(rules)
}

/// Ticket and log rules also fire without an incident: short blips a few times a week over
/// the last eight weeks, which is what the alerts page's noise figures are about.
async fn insert_noise(
    conn: &mut SqliteConnection,
    rules: &[crate::alerts::AlertRule],
    now: DateTime<Utc>,
    rng: &mut Rng,
) -> Result<usize, AppError> {
    let mut firings = 0;
    for rule in rules.iter().filter(|r| r.tier != Tier::Page) {
        for week in 0..8i64 {
            for _ in 0..1 + rng.below(3) {
                let at = now
                    - Duration::weeks(week)
                    - Duration::minutes(30 + rng.below(7 * 24 * 60 - 60) as i64);
                let value = match rule.signal {
                    Watched::ErrorRate => rule.threshold * 1.4,
                    _ => rule.threshold * 1.2,
                };
                let event = crate::alerts::db::insert_event(conn, rule, Some(value), at).await?;
                let end = at + Duration::minutes(2 + rng.below(25) as i64);
                crate::alerts::db::end_event(conn, &event, end.min(now)).await?;
                firings += 1;
            }
        }
    }
    Ok(firings)
}

/// The action items of a sample story (written by its post-mortem): open or in progress for
/// recent incidents, mostly done for old ones.
async fn insert_story_items(
    conn: &mut SqliteConnection,
    incident_id: &str,
    service: &str,
    started: DateTime<Utc>,
    people: &[String],
    rng: &mut Rng,
    items: &[(&str, &str)],
) -> Result<(), AppError> {
    insert_items_titled(conn, incident_id, service, started, people, rng, items).await
}

/// A latency in µs around `median_ms`: a rough log-normal (the sum of three uniforms
/// approximates a normal), so the window has a realistic tail.
fn latency_us(median_ms: f64, rng: &mut Rng) -> u64 {
    let u = |rng: &mut Rng| rng.below(1_000_000) as f64 / 1_000_000.0;
    let z = (u(rng) + u(rng) + u(rng) - 1.5) * 2.0;
    (median_ms * 1000.0 * (0.45 * z).exp()).round() as u64
}

/// The window a service's collector held when the incident was detected: five minutes of
/// traffic at its usual rate, usual for the first three and with the story's latency and
/// errors for the last two, frozen the way the app freezes a live window (exact mode).
fn incident_window(
    service: &str,
    detail: &Detail,
    detected: DateTime<Utc>,
    rng: &mut Rng,
) -> Result<crate::metrics::WindowReport, AppError> {
    let internal = |e: crate::metrics::MetricsError| AppError::Internal(e.to_string());
    let registry = Registry::new(WindowConfig::default(), 1).map_err(internal)?;
    let end = u64::try_from(detected.timestamp_millis()).unwrap_or(0);
    let base = BASELINE
        .iter()
        .find(|(s, _)| *s == service)
        .map_or(50.0, |(_, ms)| *ms);
    // 20 requests a second for 300 s, 6,000 events (under the default N of 10,000).
    let events: Vec<crate::metrics::Event> = (0..6_000u64)
        .map(|k| {
            let at_ms = end - 300_000 + k * 50;
            let during = k >= 3_600;
            let (median, error_rate) = if during {
                (detail.latency_ms, detail.error_rate)
            } else {
                (base, 0.002)
            };
            crate::metrics::Event {
                latency_us: latency_us(median, rng),
                ok: (rng.below(100_000) as f64) >= error_rate * 100_000.0,
                at_ms,
            }
        })
        .collect();
    registry.record_batch(service, &events).map_err(internal)?;
    for k in 0..30u64 {
        let busy = if k >= 18 { 0.85 } else { 0.35 };
        let value = busy + rng.below(100) as f64 / 1000.0;
        registry
            .record_saturation(service, value, end - 300_000 + k * 10_000)
            .map_err(internal)?;
    }
    registry
        .report(service, end, QuantileMode::Exact)
        .map_err(internal)
}

/// A small deterministic generator (xorshift64*): sample data is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}
