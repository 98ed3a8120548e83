//! Sample data: a realistic set of services, people and ~40 incidents with timelines over six
//! months (`hindsight demo`), or N generated incidents for load tests (`--incidents N`).

use chrono::{DateTime, Duration, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::SqliteConnection;

use crate::action_items::db::SampleItem;
use crate::auth::Role;
use crate::db::{Db, new_id};
use crate::error::{AppError, AppResult};
use crate::incidents::db::SampleIncident;
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
    let mut number = crate::incidents::db::next_number(&mut tx).await?;
    for i in 0..40u32 {
        let story = STORIES[i as usize % STORIES.len()];
        let days_ago = i64::from(180 - i * 4) - rng.below(3) as i64;
        let started = now - Duration::days(days_ago) - Duration::minutes(rng.below(600) as i64);
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
        let id = insert_incident(
            &mut tx, number, &title, story, status, started, commander, &mut rng, 6,
        )
        .await?;
        insert_items(&mut tx, &id, story.1, started, &people, &mut rng, 2).await?;
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
            insert_postmortem(&mut tx, &id, story, pm_status, commander, reviewer, started).await?;
        }
        number += 1;
    }
    crate::auth::db::audit(&mut tx, None, "demo.load", "sample data", "40 incidents").await?;
    tx.commit().await?;
    println!(
        "loaded {} services, {} people and 40 incidents with timelines, action items and post-mortems",
        SERVICES.len(),
        PEOPLE.len()
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
            let id = insert_incident(
                &mut tx, number, story.0, story, status, started, commander, &mut rng, entries,
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
) -> Result<String, AppError> {
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
    Ok(id)
}

/// A post-mortem from the default template with the story's facts written in, its primary root
/// cause set to the story's category and `status` as given.
async fn insert_postmortem(
    conn: &mut SqliteConnection,
    incident_id: &str,
    story: (&str, &str, &str, &str, &str, &str),
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
            root_cause: &format!(
                "Kind of failure: {category}. Nothing in {service} or its pipeline stopped it before users saw it."
            ),
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

/// Action items of an incident: mostly closed for old incidents, open for recent ones.
async fn insert_items(
    conn: &mut SqliteConnection,
    incident_id: &str,
    service: &str,
    started: DateTime<Utc>,
    people: &[String],
    rng: &mut Rng,
    count: u32,
) -> Result<(), AppError> {
    let team = SERVICES
        .iter()
        .find(|(s, _)| *s == service)
        .map_or("", |(_, t)| *t);
    let now = Utc::now();
    let age_days = (now - started).num_days();
    for _ in 0..count {
        let (title, kind) = ITEM_TITLES[rng.below(ITEM_TITLES.len() as u64) as usize];
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
