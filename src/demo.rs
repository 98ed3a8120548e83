//! Sample data: a realistic set of services, people and ~40 incidents with timelines over six
//! months (`hindsight demo`), or N generated incidents for load tests (`--incidents N`).

use chrono::{DateTime, Duration, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::SqliteConnection;

use crate::cli::CliResult;
use crate::db::{Db, new_id, ts, ts_opt};

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
pub async fn load_sample(db: &Db) -> CliResult {
    let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'demo.load'")
        .fetch_one(&db.reader)
        .await?;
    if done > 0 {
        println!("demo data is already loaded; nothing to do");
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    let people = ensure_people(&mut tx).await?;
    ensure_services(&mut tx).await?;
    let now = Utc::now();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut number = next_number(&mut tx).await?;
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
            insert_postmortem(&mut tx, &id, story, pm_status, commander, started).await?;
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
pub async fn generate(db: &Db, count: u64, entries: u32, items: u32) -> CliResult {
    let mut tx = db.begin_write().await?;
    let people = ensure_people(&mut tx).await?;
    ensure_services(&mut tx).await?;
    let mut number = next_number(&mut tx).await?;
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

async fn next_number(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(number), 0) + 1 FROM incidents")
        .fetch_one(conn)
        .await
}

/// Demo people exist with an unusable password: they author data but cannot sign in.
async fn ensure_people(conn: &mut SqliteConnection) -> Result<Vec<String>, sqlx::Error> {
    let now = ts(Utc::now());
    let mut ids = Vec::new();
    for (i, (email, name)) in PEOPLE.iter().enumerate() {
        sqlx::query(
            "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
             VALUES (?, ?, ?, 'responder', '!demo-no-login', ?, ?) ON CONFLICT (email) DO NOTHING",
        )
        .bind(format!("00000000-0000-7000-8000-00000000000{i}"))
        .bind(email)
        .bind(name)
        .bind(&now)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
        let id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = ?")
            .bind(email)
            .fetch_one(&mut *conn)
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn ensure_services(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    for (name, team) in SERVICES {
        sqlx::query(
            "INSERT INTO services (name, team, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(team)
        .bind(ts(Utc::now()))
        .execute(&mut *conn)
        .await?;
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
) -> Result<String, sqlx::Error> {
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
    sqlx::query(
        "INSERT INTO incidents (id, number, title, summary, customer_impact, severity, status,
            service, category, team, commander_id, started_at, detected_at, acknowledged_at,
            mitigated_at, resolved_at, closed_at, exclude_from_metrics, version, created_by,
            created_at, updated_by, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(number)
    .bind(title)
    .bind(summary)
    .bind(impact)
    .bind(severity)
    .bind(status)
    .bind(service)
    .bind(category)
    .bind(team)
    .bind(commander)
    .bind(ts(started))
    .bind(ts(detected))
    .bind(ts(acknowledged))
    .bind(ts_opt(reached("monitoring").then_some(mitigated)))
    .bind(ts_opt(reached("resolved").then_some(resolved)))
    .bind(ts_opt(reached("closed").then_some(closed)))
    .bind(commander)
    .bind(ts(detected))
    .bind(commander)
    .bind(ts(detected))
    .execute(&mut *conn)
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
    let now = ts(Utc::now());
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
        sqlx::query(
            "INSERT INTO timeline_entries (id, incident_id, occurred_at, kind, body, author_id,
                created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
        )
        .bind(new_id())
        .bind(&id)
        .bind(ts(at))
        .bind(kind)
        .bind(body)
        .bind(commander)
        .bind(&now)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
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
    started: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (_, service, category, _, summary, impact) = story;
    let id = new_id();
    let written = started + Duration::days(2);
    let template: (String, String) = sqlx::query_as(
        "SELECT id, name FROM postmortem_templates ORDER BY is_default DESC, created_at LIMIT 1",
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO postmortems (id, incident_id, status, template_id, template_name,
            detection_method, version, author_id, created_at, updated_by, updated_at, published_at)
         VALUES (?, ?, ?, ?, ?, 'alert', 2, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(incident_id)
    .bind(status)
    .bind(&template.0)
    .bind(&template.1)
    .bind(author)
    .bind(ts(started + Duration::days(1)))
    .bind(author)
    .bind(ts(written))
    .bind(ts_opt((status == "published").then_some(written)))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO postmortem_sections (postmortem_id, position, key, title, help, required, body)
         SELECT ?, position, key, title, help, required, CASE key
             WHEN 'summary' THEN ? WHEN 'impact' THEN ?
             WHEN 'trigger' THEN 'A change reached production without a check that would have caught it.'
             WHEN 'root_cause' THEN ?
             WHEN 'detection' THEN 'The error-rate alert paged the on-call within minutes.'
             WHEN 'resolution' THEN 'Rolled back, then fixed forward once the cause was understood.'
             WHEN 'went_well' THEN 'Paging and the rollback tooling worked as designed.'
             ELSE '' END
         FROM postmortem_template_sections WHERE template_id = ?",
    )
    .bind(&id)
    .bind(summary)
    .bind(impact)
    .bind(format!(
        "Kind of failure: {category}. Nothing in {service} or its pipeline stopped it before users saw it."
    ))
    .bind(&template.0)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO root_causes (id, postmortem_id, incident_id, category, description, is_primary,
            position) VALUES (?, ?, ?, ?, ?, 1, 0)",
    )
    .bind(new_id())
    .bind(&id)
    .bind(incident_id)
    .bind(category)
    .bind(format!("{category} on {service}"))
    .execute(&mut *conn)
    .await?;
    for version in [1, 2] {
        sqlx::query(
            "INSERT INTO postmortem_revisions (postmortem_id, version, author_id, created_at,
                changed, content)
             SELECT ?, ?, ?, ?, ?, json_object('sections', json_group_array(json_object(
                 'key', key, 'title', title, 'help', help, 'required', json(CASE required WHEN 1 THEN 'true' ELSE 'false' END),
                 'body', CASE WHEN ? = 1 THEN '' ELSE body END)),
                 'root_causes', json(CASE WHEN ? = 1 THEN '[]' ELSE json_array(json_object('category', ?, 'description', ?, 'primary', json('true'))) END),
                 'detection_method', CASE WHEN ? = 1 THEN '' ELSE 'alert' END,
                 'no_action_items_reason', '')
             FROM (SELECT * FROM postmortem_sections WHERE postmortem_id = ? ORDER BY position)",
        )
        .bind(&id)
        .bind(version)
        .bind(author)
        .bind(ts(started + Duration::days(version)))
        .bind(if version == 1 { "Started" } else { "Summary, Impact, Trigger, Root cause, Detection, Resolution, What went well, Root causes, Detection method" })
        .bind(version)
        .bind(version)
        .bind(category)
        .bind(format!("{category} on {service}"))
        .bind(version)
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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
) -> Result<(), sqlx::Error> {
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
            .then(|| ts((created + Duration::days(1 + rng.below(30) as i64)).min(now)));
        let owner =
            (rng.below(8) > 0).then(|| people[rng.below(people.len() as u64) as usize].clone());
        let priority = ["p1", "p2", "p2", "p3"][rng.below(4) as usize];
        sqlx::query(
            "INSERT INTO action_items (id, incident_id, title, description, owner_id, team, kind,
                priority, status, wont_do_reason, due_on, external_url, completed_at, completed_by,
                version, created_by, created_at, updated_at)
             VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, '', ?, ?, 1, ?, ?, ?)",
        )
        .bind(new_id())
        .bind(incident_id)
        .bind(title)
        .bind(&owner)
        .bind(team)
        .bind(kind)
        .bind(priority)
        .bind(status)
        .bind(if status == "wont_do" {
            "Superseded by the platform migration"
        } else {
            ""
        })
        .bind(due.to_string())
        .bind(&completed)
        .bind(completed.as_ref().and(owner.as_ref()))
        .bind(&owner)
        .bind(ts(created))
        .bind(ts(created))
        .execute(&mut *conn)
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
