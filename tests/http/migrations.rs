//! Migrations: committed files never change (`migrations/CHECKSUMS`), and a database created
//! before migration 0002 was edited in place still opens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha384};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use hindsight::db::{Db, MIGRATION_0002_FIRST_CHECKSUM, MIGRATOR};

const RULE: &str = "a committed migration is never edited; add a new migration instead";

fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// The version sqlx reads from a migration file name (`0002_x.sql` → 2).
fn version_of(name: &str) -> Option<i64> {
    name.split_once('_')?.0.parse().ok()
}

/// Everything that disagrees between the migration files (name, bytes), the `CHECKSUMS` text
/// (`sha384sum` format: hex, two spaces, file name) and the migrations embedded in the binary
/// (version, checksum). Empty when all three agree.
fn checksum_problems(
    files: &[(String, Vec<u8>)],
    listed: &str,
    embedded: &[(i64, Vec<u8>)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut lines = BTreeMap::new();
    for (n, line) in listed.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((sum, name)) = line.split_once("  ") else {
            problems.push(format!(
                "CHECKSUMS line {} is not `<sha384 hex>  <file name>`: {line}",
                n + 1
            ));
            continue;
        };
        if lines.insert(name.to_owned(), sum.to_owned()).is_some() {
            problems.push(format!("CHECKSUMS lists {name} twice"));
        }
    }
    let actual: BTreeMap<&str, String> = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), hex(&Sha384::digest(bytes))))
        .collect();

    for (name, sum) in &lines {
        match actual.get(name.as_str()) {
            None => problems.push(format!(
                "{name} is in CHECKSUMS but not in migrations/: a shipped migration was deleted \
                 or renamed; restore it"
            )),
            Some(now) if now != sum => problems.push(format!(
                "{name} was edited: its SHA-384 is {now}, CHECKSUMS says {sum}; restore the file"
            )),
            Some(_) => {}
        }
    }
    for (name, sum) in &actual {
        if !lines.contains_key(*name) {
            problems.push(format!(
                "{name} has no line in CHECKSUMS; once it is final, add this line to \
                 migrations/CHECKSUMS:\n{sum}  {name}"
            ));
        }
    }
    // What the binary runs, not only what is on disk.
    for (version, checksum) in embedded {
        let line = lines
            .iter()
            .find(|(name, _)| version_of(name) == Some(*version));
        match line {
            None => problems.push(format!(
                "the binary embeds migration {version}, which has no line in CHECKSUMS"
            )),
            Some((name, sum)) if *sum != hex(checksum) => problems.push(format!(
                "the binary embeds migration {version} with checksum {}, CHECKSUMS says {sum} \
                 for {name}",
                hex(checksum)
            )),
            Some(_) => {}
        }
    }
    problems
}

fn committed_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(migrations_dir()).expect("migrations directory") {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 file name")
            .to_owned();
        if name.ends_with(".sql") {
            files.push((name, std::fs::read(&path).expect("migration file")));
        }
    }
    files.sort();
    files
}

fn embedded() -> Vec<(i64, Vec<u8>)> {
    MIGRATOR
        .iter()
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect()
}

#[test]
fn committed_migrations_match_their_checksums() {
    let listed =
        std::fs::read_to_string(migrations_dir().join("CHECKSUMS")).expect("migrations/CHECKSUMS");
    let files = committed_files();
    assert!(!files.is_empty(), "no migration files found");
    let problems = checksum_problems(&files, &listed, &embedded());
    assert!(
        problems.is_empty(),
        "migrations/ does not match migrations/CHECKSUMS: {RULE}.\n{}",
        problems.join("\n")
    );
}

fn one_file() -> (Vec<(String, Vec<u8>)>, String) {
    let bytes = b"CREATE TABLE t (x);\n".to_vec();
    let line = format!("{}  0001_t.sql\n", hex(&Sha384::digest(&bytes)));
    (vec![("0001_t.sql".to_owned(), bytes)], line)
}

#[test]
fn the_checksum_guard_passes_when_files_and_lines_agree() {
    let (files, listed) = one_file();
    assert_eq!(
        checksum_problems(&files, &listed, &[]),
        Vec::<String>::new()
    );
}

#[test]
fn the_checksum_guard_flags_an_edited_migration() {
    let (mut files, listed) = one_file();
    files[0].1.extend_from_slice(b"CREATE INDEX i ON t (x);\n");
    let problems = checksum_problems(&files, &listed, &[]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("0001_t.sql was edited"),
        "{problems:?}"
    );
}

#[test]
fn the_checksum_guard_flags_a_deleted_or_renamed_migration() {
    let (mut files, listed) = one_file();
    files[0].0 = "0001_renamed.sql".to_owned();
    let problems = checksum_problems(&files, &listed, &[]);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("0001_t.sql is in CHECKSUMS but not in migrations/")),
        "{problems:?}"
    );
}

#[test]
fn the_checksum_guard_prints_the_line_to_add_for_a_new_migration() {
    let (mut files, listed) = one_file();
    let bytes = b"CREATE TABLE u (y);\n".to_vec();
    let expected_line = format!("{}  0002_u.sql", hex(&Sha384::digest(&bytes)));
    files.push(("0002_u.sql".to_owned(), bytes));
    let problems = checksum_problems(&files, &listed, &[]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].ends_with(&format!("\n{expected_line}")),
        "{problems:?}"
    );
}

#[test]
fn the_checksum_guard_checks_what_the_binary_embeds() {
    let (files, listed) = one_file();
    let problems = checksum_problems(&files, &listed, &[(1, vec![0; 48]), (2, vec![0; 48])]);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("embeds migration 1 with checksum"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("embeds migration 2, which has no line"),
        "{problems:?}"
    );
}

#[test]
fn the_first_0002_checksum_is_the_file_as_5c920a2_shipped_it() {
    // 00f2791 appended exactly these lines to 0002; without them the file is as first shipped.
    const APPENDED: &str = "
-- \"Open\" incidents (not resolved or closed) are the list people look at most; a partial index
-- keeps that view a straight index read whether few or many incidents are open.
CREATE INDEX incidents_open_started ON incidents (started_at DESC, number DESC)
    WHERE status IN ('investigating', 'identified', 'monitoring');
";
    let now = std::fs::read_to_string(migrations_dir().join("0002_list_indexes_and_search.sql"))
        .expect("0002");
    let first = now
        .strip_suffix(APPENDED)
        .expect("0002 ends with the appended index");
    assert_eq!(
        hex(&Sha384::digest(first.as_bytes())),
        MIGRATION_0002_FIRST_CHECKSUM
    );
}

// --- databases created before the 0002 edit ---

struct TempDb {
    dir: tempfile::TempDir,
}

impl TempDb {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("hindsight.db")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }

    async fn raw(&self) -> SqliteConnection {
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(self.path()))
            .await
            .expect("raw connection")
    }

    async fn checksum(&self, version: i64) -> Option<String> {
        let mut conn = self.raw().await;
        let sum: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut conn)
                .await
                .expect("read checksum");
        conn.close().await.expect("close");
        sum.map(|s| hex(&s))
    }

    /// Every schema object and its SQL, sorted, without the migration bookkeeping.
    async fn schema(&self) -> Vec<(String, String, Option<String>)> {
        let mut conn = self.raw().await;
        let rows = sqlx::query_as(
            "SELECT type, name, sql FROM sqlite_master
             WHERE name <> '_sqlx_migrations' ORDER BY type, name",
        )
        .fetch_all(&mut conn)
        .await
        .expect("schema");
        conn.close().await.expect("close");
        rows
    }
}

fn current_checksum(version: i64) -> String {
    let migration = MIGRATOR
        .iter()
        .find(|m| m.version == version)
        .expect("embedded migration");
    hex(&migration.checksum)
}

async fn fresh_schema() -> Vec<(String, String, Option<String>)> {
    let db = TempDb::new();
    Db::connect(&db.url()).await.expect("fresh").close().await;
    db.schema().await
}

/// A database as 5c920a2's binary left it, simulated from today's: migration 0002 recorded
/// with its first checksum, without the index the edit added, and 0013 not yet applied.
async fn database_from_before_the_0002_edit() -> TempDb {
    let db = TempDb::new();
    Db::connect(&db.url()).await.expect("create").close().await;
    let mut conn = db.raw().await;
    for sql in [
        "DROP INDEX incidents_open_started",
        "DELETE FROM _sqlx_migrations WHERE version = 13",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
    sqlx::query("UPDATE _sqlx_migrations SET checksum = ? WHERE version = 2")
        .bind(unhex(MIGRATION_0002_FIRST_CHECKSUM))
        .execute(&mut conn)
        .await
        .expect("old checksum");
    conn.close().await.expect("close");
    db
}

#[tokio::test]
async fn a_database_from_before_the_0002_edit_opens_and_gets_the_open_index() {
    let db = database_from_before_the_0002_edit().await;
    assert_eq!(
        db.checksum(2).await.as_deref(),
        Some(MIGRATION_0002_FIRST_CHECKSUM)
    );

    let opened = Db::connect(&db.url())
        .await
        .expect("a database from before the 0002 edit opens");
    // The index pages rely on (`INDEXED BY`) is there again and usable.
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM incidents INDEXED BY incidents_open_started
         WHERE status IN ('investigating', 'identified', 'monitoring')",
    )
    .fetch_one(&opened.reader)
    .await
    .expect("query through the open-incidents index");
    assert_eq!(open, 0);
    opened.close().await;

    assert_eq!(db.checksum(2).await, Some(current_checksum(2)));
    assert_eq!(db.checksum(13).await, Some(current_checksum(13)));
    // Same schema, index definition included, as a database created today.
    assert_eq!(db.schema().await, fresh_schema().await);

    // Opening again changes nothing.
    Db::connect(&db.url()).await.expect("reopen").close().await;
    assert_eq!(db.checksum(2).await, Some(current_checksum(2)));
}

#[tokio::test]
async fn a_new_database_records_todays_checksums_and_the_open_index_once() {
    let db = TempDb::new();
    Db::connect(&db.url()).await.expect("create").close().await;
    for migration in MIGRATOR.iter() {
        assert_eq!(
            db.checksum(migration.version).await,
            Some(hex(&migration.checksum))
        );
    }
    let indexes = db
        .schema()
        .await
        .into_iter()
        .filter(|(_, name, _)| name == "incidents_open_started")
        .count();
    assert_eq!(indexes, 1);
}

#[tokio::test]
async fn any_other_changed_0002_checksum_is_still_refused() {
    let db = TempDb::new();
    Db::connect(&db.url()).await.expect("create").close().await;
    let mut conn = db.raw().await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = ? WHERE version = 2")
        .bind(vec![7u8; 48])
        .execute(&mut conn)
        .await
        .expect("unknown checksum");
    conn.close().await.expect("close");

    let err = Db::connect(&db.url())
        .await
        .expect_err("an unknown checksum is not repaired");
    assert!(
        matches!(
            &err,
            sqlx::Error::Migrate(e) if matches!(**e, sqlx::migrate::MigrateError::VersionMismatch(2))
        ),
        "expected a version mismatch for migration 2: {err}"
    );
    assert_eq!(db.checksum(2).await, Some(hex(&[7u8; 48])));
}

/// A database written by the real binary of commit 5c920a2, made with that commit's own
/// commands: `hindsight migrate`; `hindsight user create --email old@example.test --name
/// "Old Admin" --role admin --password-stdin`; `hindsight token create --user
/// old@example.test --name fixture --scope write`; then, under `hindsight serve`, `POST
/// /api/v1/services` {"name":"checkout"} and two `POST /api/v1/incidents` (one investigating,
/// one resolved, summary "Payments failing for some customers"). Tests use a copy.
const FIXTURE_5C920A2: &str = "tests/http/fixtures/hindsight-5c920a2.sqlite3";

#[tokio::test]
async fn the_database_5c920a2_created_opens_with_its_data() {
    let db = TempDb::new();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE_5C920A2),
        db.path(),
    )
    .expect("copy the fixture");
    assert_eq!(
        db.checksum(2).await.as_deref(),
        Some(MIGRATION_0002_FIRST_CHECKSUM)
    );

    // Without the repair, sqlx refuses it: this is the database the 0002 edit locked out.
    let mut conn = db.raw().await;
    let refused = MIGRATOR
        .run(&mut conn)
        .await
        .expect_err("sqlx alone refuses the first 0002 checksum");
    assert!(
        matches!(refused, sqlx::migrate::MigrateError::VersionMismatch(2)),
        "{refused}"
    );
    conn.close().await.expect("close");

    let opened = Db::connect(&db.url())
        .await
        .expect("the database 5c920a2 created opens");
    let open: Vec<String> = sqlx::query_scalar(
        "SELECT title FROM incidents INDEXED BY incidents_open_started
         WHERE status IN ('investigating', 'identified', 'monitoring')",
    )
    .fetch_all(&opened.reader)
    .await
    .expect("query through the open-incidents index");
    assert_eq!(open, ["Checkout errors (investigating)"]);
    let found: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM incidents_fts WHERE incidents_fts MATCH ?")
            .bind("payments")
            .fetch_one(&opened.reader)
            .await
            .expect("full-text search");
    assert_eq!(found, 2);
    opened.close().await;

    let applied: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    for version in applied {
        assert_eq!(db.checksum(version).await, Some(current_checksum(version)));
    }
    assert_eq!(db.schema().await, fresh_schema().await);
}
