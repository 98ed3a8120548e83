//! The SQLite database: connection pools, migrations, write transactions and time encoding.
//!
//! One writer connection serialises every write (SQLite allows one writer anyway, and a
//! single connection avoids SQLITE_BUSY between our own requests); a small read-only pool
//! serves pages concurrently thanks to WAL.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};

/// The full-text indexes (external content, keyed by their tables' rowids).
pub const FTS_TABLES: [&str; 4] = [
    "incidents_fts",
    "timeline_fts",
    "postmortem_sections_fts",
    "action_items_fts",
];

/// Migrations are compiled into the binary, so it runs from any directory. They are
/// forward-only and never edited once committed: `migrations/CHECKSUMS` lists each one's
/// SHA-384 and a test fails when a file no longer matches its line.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// SHA-384 (hex) of `migrations/0002_list_indexes_and_search.sql` as it first shipped.
///
/// History: commit 5c920a2 created migration 0002; commit 00f2791 then edited the committed
/// file, appending the `incidents_open_started` partial index. sqlx records each applied
/// migration's checksum and refuses to start (`VersionMismatch`) when a file no longer matches,
/// so every database created before 00f2791 was locked out by later binaries. Such a database
/// has this checksum for version 2 and lacks the index; `repair_first_0002_checksum` records
/// today's checksum instead, and migration 0013 creates the index the edit meant to add.
/// Only this exact old checksum is accepted: any other mismatch is still refused.
pub const MIGRATION_0002_FIRST_CHECKSUM: &str = "0dfdbccb342e2d7de57d514e1e6cc70474a2b76b5713b207a77aaa5a8b64b92bd1352ba19da7876bba01d13b5b4d4b1e";

/// Both pools; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    /// Exactly one connection: all writes go through it.
    pub writer: SqlitePool,
    /// Read-only connections for pages and API reads.
    pub reader: SqlitePool,
    /// Counts committed write transactions of this process, so read caches can tell whether
    /// anything changed since they were filled.
    generation: Arc<AtomicU64>,
}

/// A write transaction, begun IMMEDIATE so it holds the write lock from its first statement.
/// Use it wherever a `&mut SqliteConnection` is expected; `commit` makes the writes durable and
/// then advances the database's generation. Dropping it rolls back.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    generation: Arc<AtomicU64>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Commits a write that no cached read depends on (a person's autosaved draft), leaving
    /// the generation alone: an editor saving every few seconds must not empty every cache.
    pub async fn commit_private(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

impl Db {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let base = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-32000");

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        repair_first_0002_checksum(&writer).await?;
        MIGRATOR.run(&writer).await?;

        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // Readers map the file instead of copying pages in with a read call each: reports
            // and searches touch thousands of scattered pages of a large database.
            .connect_with(base.read_only(true).pragma("mmap_size", "268435456"))
            .await?;
        Ok(Self {
            writer,
            reader,
            generation: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Begins a write transaction. Callers commit; dropping it rolls back.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        Ok(WriteTx {
            tx: self.writer.begin_with("BEGIN IMMEDIATE").await?,
            generation: Arc::clone(&self.generation),
        })
    }

    /// How many write transactions this process has committed. Read it *before* a query whose
    /// result is cached: if it changed since, the cached result may be stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Writes a consistent copy of the live database to `path` (`VACUUM INTO`), then rebuilds
    /// the copy's full-text indexes. They refer to implicit rowids, which SQLite documents that
    /// VACUUM may renumber (the bundled version keeps them, but nothing promises it will).
    pub async fn backup(&self, path: &str) -> Result<(), sqlx::Error> {
        // Unchecked: VACUUM INTO is a statement sqlx's describe cannot prepare offline.
        sqlx::query("VACUUM INTO ?")
            .bind(path)
            .execute(&self.writer)
            .await?;
        let options = SqliteConnectOptions::new().filename(path);
        let mut copy = <SqliteConnection as sqlx::Connection>::connect_with(&options).await?;
        for table in FTS_TABLES {
            // Unchecked: the table name is one of our four FTS tables, formatted in.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} ({table}) VALUES ('rebuild')"
            )))
            .execute(&mut copy)
            .await?;
        }
        sqlx::Connection::close(copy).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Lets a database created before 0002 was edited (see `MIGRATION_0002_FIRST_CHECKSUM`) pass
/// sqlx's checksum validation: when `_sqlx_migrations` records version 2 with the first-shipped
/// checksum, that row gets the embedded checksum. One transaction; nothing happens on a new
/// database, a database already repaired, or one with any other checksum.
async fn repair_first_0002_checksum(writer: &SqlitePool) -> Result<(), sqlx::Error> {
    let Some(current) = MIGRATOR
        .iter()
        .find(|m| m.version == 2 && !m.migration_type.is_down_migration())
    else {
        return Ok(());
    };
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    // Unchecked (both statements): they run before the migrations, on `_sqlx_migrations`,
    // which is sqlx's own table rather than part of the schema the macros check against.
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !has_table {
        // A new database: the migrator creates the table and records today's checksums.
        return Ok(());
    }
    let repaired = sqlx::query(
        "UPDATE _sqlx_migrations SET checksum = ? WHERE version = 2 AND lower(hex(checksum)) = ?",
    )
    .bind(&*current.checksum)
    .bind(MIGRATION_0002_FIRST_CHECKSUM)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if repaired > 0 {
        tracing::info!(
            version = 2,
            old_checksum = MIGRATION_0002_FIRST_CHECKSUM,
            "repaired the recorded checksum of migration 0002 (created before commit 00f2791 \
             edited it); migration 0013 adds the index that edit introduced"
        );
    }
    Ok(())
}

/// Recently read results, reused while no write has been committed since they were read
/// (`Db::generation`) and for at most `max_age` (which bounds how long writes by another
/// process, such as `hindsight demo`, can go unseen). Bounded: it starts over when full.
#[derive(Debug)]
pub struct ReadCache<V> {
    max_age: Duration,
    entries: std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::Instant, V)>>,
    /// Misses load one at a time, so a burst of requests for a cold page runs its query once
    /// instead of once per request.
    loading: tokio::sync::Mutex<()>,
}

impl<V: Clone> ReadCache<V> {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self, key: &str, generation: u64, now: std::time::Instant) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(g, at, _)| *g == generation && now.duration_since(*at) < self.max_age)
            .map(|(_, _, value)| value.clone())
    }

    /// The cached value for `key`, or `load()`'s, which is then kept.
    pub async fn get_or_load<F, Fut, E>(&self, db: &Db, key: String, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        // Read before loading: a write committed meanwhile makes the entry stale at once.
        let generation = db.generation();
        let now = std::time::Instant::now();
        if let Some(value) = self.fresh(&key, generation, now) {
            return Ok(value);
        }
        let _one_at_a_time = self.loading.lock().await;
        // Someone may have loaded it while this request waited.
        let generation = db.generation();
        let now = std::time::Instant::now();
        if let Some(value) = self.fresh(&key, generation, now) {
            return Ok(value);
        }
        let value = load().await?;
        self.keep(key, generation, now, value.clone());
        Ok(value)
    }

    /// Whether `key` would be served from memory right now.
    pub fn is_fresh(&self, db: &Db, key: &str) -> bool {
        self.fresh(key, db.generation(), std::time::Instant::now())
            .is_some()
    }

    /// Loads `key` again whether or not the cached value is fresh (a background refresher
    /// keeping a popular page warm).
    pub async fn reload<F, Fut, E>(&self, db: &Db, key: String, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let _one_at_a_time = self.loading.lock().await;
        let generation = db.generation();
        let now = std::time::Instant::now();
        let value = load().await?;
        self.keep(key, generation, now, value.clone());
        Ok(value)
    }

    fn keep(&self, key: String, generation: u64, at: std::time::Instant, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= 512 {
            entries.clear();
        }
        entries.insert(key, (generation, at, value));
    }
}

/// The one text encoding of instants we store: UTC, millisecond precision, fixed width, so
/// text order is time order.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `ts` for optional instants.
pub fn ts_opt(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(ts)
}

/// A fresh time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when the error is a UNIQUE or PRIMARY KEY violation (turned into a 409 or field error).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_sort_as_text_in_time_order() {
        let a = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("valid");
        let b = a + chrono::Duration::milliseconds(7);
        let c = a + chrono::Duration::days(400);
        assert_eq!(ts(a), "2026-01-02T03:04:05.000Z");
        assert!(ts(a) < ts(b) && ts(b) < ts(c));
    }
}
