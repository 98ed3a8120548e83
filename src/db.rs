//! The SQLite database: connection pools, migrations, write transactions and time encoding.
//!
//! One writer connection serialises every write (SQLite allows one writer anyway, and a
//! single connection avoids SQLITE_BUSY between our own requests); a small read-only pool
//! serves pages concurrently thanks to WAL.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, SqliteConnection, Transaction};

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

/// The database: its pools and the bookkeeping of writes. Cheap to clone: every request's
/// state carries one, so it is one shared allocation (`DbParts`) rather than a dozen counted
/// references and a path copied per request.
#[derive(Clone, Debug)]
pub struct Db(Arc<DbParts>);

impl Deref for Db {
    type Target = DbParts;
    fn deref(&self) -> &DbParts {
        &self.0
    }
}

/// What a `Db` holds.
#[derive(Debug)]
pub struct DbParts {
    /// Exactly one connection: all writes go through it.
    pub writer: SqlitePool,
    /// Read-only connections for pages and API reads.
    pub reader: SqlitePool,
    /// Read-only connections kept for the reads on a write's path (who is calling, the
    /// incident named in the path). Under a storm of page loads every `reader` connection is
    /// busy and dozens of requests queue for one; a write that queued there too waited behind
    /// all of them before it reached the writer (see `reads_for`).
    pub urgent: SqlitePool,
    /// Counts committed write transactions of this process, so read caches can tell whether
    /// anything changed since they were filled.
    generation: Arc<AtomicU64>,
    /// Counts committed writes that changed only timeline entries (`WriteTx::commit_timeline`):
    /// only caches of timeline text (search hits) need to see those.
    timeline_generation: Arc<AtomicU64>,
    /// The earliest instant of data each recent commit changed (see `WriteTx::changes_since`),
    /// so a cache of the past can tell whether a write touched it.
    changes: Arc<ChangeLog>,
    /// Which incidents recent commits changed, for caches of one incident's data.
    incidents: Arc<IncidentStamps>,
    /// How writes have been going: counters by cause and the fault writes are failing with.
    health: Arc<WriteHealth>,
    /// The database file on disk (`None` for an in-memory database).
    path: Option<PathBuf>,
}

/// How the database is opened; `DbOptions::default()` is what the server uses unless
/// configured otherwise.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// How long a write waits for a lock held by another process before it is refused
    /// (503 with Retry-After) instead of hanging.
    pub busy_timeout: Duration,
    /// Caps the database at this many pages on the writer connection. Tests use it to make
    /// the database "full" the way a full disk does (SQLITE_FULL) without a small disk.
    pub max_page_count: Option<u64>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_page_count: None,
        }
    }
}

/// A known reason a write cannot succeed right now, which the caller can do nothing about but
/// wait or tell an operator. Each has its own answer (never `500 internal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SQLITE_FULL: the disk (or the configured page cap) has no room for the write.
    DiskFull,
    /// SQLITE_BUSY / SQLITE_LOCKED past the busy timeout, or no writer connection free in time:
    /// another process (a backup, an operator's `sqlite3`) holds the write lock.
    Busy,
    /// SQLITE_READONLY: the file, its directory or the filesystem cannot be written, or the
    /// file was moved or replaced under the running server.
    ReadOnly,
}

impl Fault {
    /// The fault behind a database error, if it is one of the known ones.
    pub fn of(err: &sqlx::Error) -> Option<Self> {
        match err {
            sqlx::Error::Database(db) => {
                // sqlx reports SQLite's extended result code; its low byte is the primary code.
                let code: i32 = db.code()?.parse().ok()?;
                match code & 0xff {
                    13 => Some(Self::DiskFull),
                    5 | 6 => Some(Self::Busy),
                    8 => Some(Self::ReadOnly),
                    _ => None,
                }
            }
            sqlx::Error::PoolTimedOut => Some(Self::Busy),
            _ => None,
        }
    }

    /// Stable name: the `cause` label of the metrics and the reason of `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DiskFull => "disk_full",
            Self::Busy => "busy",
            Self::ReadOnly => "read_only",
        }
    }

    /// What a person is told (API message, page banner).
    pub fn message(self) -> &'static str {
        match self {
            Self::DiskFull => {
                "Hindsight cannot save right now: the disk holding its database is full. \
                 Nothing was saved; try again once an operator has freed space."
            }
            Self::Busy => {
                "Hindsight cannot save right now: its database is locked by another program \
                 (a backup or an open sqlite3 session). Nothing was saved; try again in a few \
                 seconds."
            }
            Self::ReadOnly => {
                "Hindsight cannot save right now: its database cannot be written (the file, its \
                 directory or the disk is read-only). Nothing was saved; an operator needs to \
                 restore write access."
            }
        }
    }

    /// Seconds a client should wait before trying again.
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Self::Busy => 5,
            Self::ReadOnly => 30,
            Self::DiskFull => 60,
        }
    }

    const ALL: [Self; 3] = [Self::DiskFull, Self::Busy, Self::ReadOnly];

    fn index(self) -> usize {
        match self {
            Self::DiskFull => 0,
            Self::Busy => 1,
            Self::ReadOnly => 2,
        }
    }
}

/// What a write's outcome tells observers (the collector's `hindsight-writes` window).
#[derive(Clone, Copy, Debug)]
pub struct WriteOutcome {
    pub ok: bool,
    pub latency: Duration,
}

type WriteObserver = Arc<dyn Fn(WriteOutcome) + Send + Sync>;

/// How writes have been going since start: committed, failed by cause, and whether they are
/// failing now (the last write failed with a known fault and none has committed since).
#[derive(Default)]
pub struct WriteHealth {
    committed: AtomicU64,
    /// Failed writes by cause: the faults in `Fault::ALL` order, then everything else.
    failed: [AtomicU64; 4],
    failing: Mutex<Option<Fault>>,
    /// When the write transaction in progress began (one at a time: one writer connection).
    open_since: Mutex<Option<Instant>>,
    /// Set while free space on the database's disk is under the warning threshold.
    disk_warning: Mutex<Option<String>>,
    observer: OnceLock<WriteObserver>,
}

impl std::fmt::Debug for WriteHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHealth")
            .field("committed", &self.committed)
            .field("failing", &self.failing)
            .finish_non_exhaustive()
    }
}

impl WriteHealth {
    fn committed(&self, latency: Duration) {
        self.committed.fetch_add(1, Ordering::Relaxed);
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(observe) = self.observer.get() {
            observe(WriteOutcome { ok: true, latency });
        }
    }

    /// A write failed; `fault` is its known cause, `None` for anything else.
    pub fn failed(&self, fault: Option<Fault>) {
        let index = fault.map_or(3, Fault::index);
        self.failed[index].fetch_add(1, Ordering::Relaxed);
        if let Some(fault) = fault {
            *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = Some(fault);
        }
        if let Some(observe) = self.observer.get() {
            observe(WriteOutcome {
                ok: false,
                latency: Duration::ZERO,
            });
        }
    }

    /// The fault the last write failed with, while no write has committed since.
    pub fn failing(&self) -> Option<Fault> {
        *self.failing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write transactions committed since start.
    pub fn committed_total(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// Failed writes since start by cause (`disk_full`, `busy`, `read_only`, `other`).
    pub fn failures_by_cause(&self) -> [(&'static str, u64); 4] {
        let n = |i: usize| self.failed[i].load(Ordering::Relaxed);
        [
            (Fault::ALL[0].as_str(), n(0)),
            (Fault::ALL[1].as_str(), n(1)),
            (Fault::ALL[2].as_str(), n(2)),
            ("other", n(3)),
        ]
    }

    /// How long the write transaction in progress has been open, if one is.
    pub fn open_for(&self) -> Option<Duration> {
        self.open_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|since| since.elapsed())
    }

    /// The low-disk warning admins see, if free space is under the threshold.
    pub fn disk_warning(&self) -> Option<String> {
        self.disk_warning
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets or clears the low-disk warning; returns whether it was set before.
    pub fn set_disk_warning(&self, warning: Option<String>) -> bool {
        let mut slot = self.disk_warning.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, warning).is_some()
    }

    /// Has every write outcome reported to `observe` (once; later calls are ignored).
    pub fn observe(&self, observe: impl Fn(WriteOutcome) + Send + Sync + 'static) {
        let _ = self.observer.set(Arc::new(observe));
    }
}

/// A write transaction, begun IMMEDIATE so it holds the write lock from its first statement.
/// Use it wherever a `&mut SqliteConnection` is expected; `commit` makes the writes durable and
/// then advances the database's generation. Dropping it rolls back.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    generation: Arc<AtomicU64>,
    timeline_generation: Arc<AtomicU64>,
    changes: Arc<ChangeLog>,
    /// The earliest instant of data this write changes, when it said (`changes_since`).
    since: Option<i64>,
    incidents: Arc<IncidentStamps>,
    /// The only incidents whose data this write changes, when it said
    /// (`changes_only_incident`); `None`: it may have changed any incident's.
    changed_incidents: Option<Vec<String>>,
    health: Arc<WriteHealth>,
    began: Instant,
    _open: OpenMark,
}

/// Marks a write transaction as open while it lives (for `/readyz`'s wedged-writer check).
struct OpenMark(Arc<WriteHealth>);

impl OpenMark {
    fn new(health: &Arc<WriteHealth>) -> Self {
        *health.open_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Self(Arc::clone(health))
    }
}

impl Drop for OpenMark {
    fn drop(&mut self) {
        *self.0.open_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl WriteTx {
    /// Commits. A failed COMMIT drops the transaction, which queues its rollback; the writer
    /// pool's release check then replaces the connection if SQLite had already rolled back on
    /// its own (see `Db::connect_with`), so the next write starts clean.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let Self {
            tx,
            generation,
            changes,
            since,
            incidents,
            changed_incidents,
            health,
            began,
            _open,
            ..
        } = self;
        tx.commit().await?;
        changes.record(&generation, since.unwrap_or(i64::MIN));
        incidents.record(changed_incidents.as_deref());
        health.committed(began.elapsed());
        Ok(())
    }

    /// Declares that this write changes only data of incidents that started at or after `at`
    /// (and alert firings that started then or later), so caches of reports on earlier
    /// periods stay valid (`ReadCache::get_or_load_until`). Several calls keep the earliest.
    /// A write that never calls it may have changed anything.
    pub fn changes_since(&mut self, at: DateTime<Utc>) {
        let at = at.timestamp_millis();
        self.since = Some(self.since.map_or(at, |s| s.min(at)));
    }

    /// Declares that, of everything a page shows about one incident, this write changes only
    /// what it shows about `incident_id` (its timeline, status, access), so cached pages of
    /// other incidents stay valid (`IncidentCache`): during a storm the writes are about one
    /// incident, and every other incident page must not be read again after each. Several
    /// calls add incidents. A write that never calls it may have changed any incident's data.
    pub fn changes_only_incident(&mut self, incident_id: &str) {
        self.changed_incidents
            .get_or_insert_with(Vec::new)
            .push(incident_id.to_owned());
    }

    /// Commits a write that changed timeline entries and nothing else a cache holds (an
    /// entry's inbox mentions are read uncached): during an incident storm most writes are
    /// timeline entries, and they must not empty the caches of reports, recurrence and counts
    /// that no timeline entry changes. Caches of timeline text watch these too
    /// (`ReadCache::with_timeline`).
    pub async fn commit_timeline(self) -> Result<(), sqlx::Error> {
        let Self {
            tx,
            timeline_generation,
            incidents,
            changed_incidents,
            health,
            began,
            ..
        } = self;
        tx.commit().await?;
        timeline_generation.fetch_add(1, Ordering::Release);
        incidents.record(changed_incidents.as_deref());
        health.committed(began.elapsed());
        Ok(())
    }

    /// Commits a write that no cached read depends on (a person's autosaved draft), leaving
    /// the generation alone: an editor saving every few seconds must not empty every cache.
    pub async fn commit_private(self) -> Result<(), sqlx::Error> {
        let Self {
            tx, health, began, ..
        } = self;
        tx.commit().await?;
        health.committed(began.elapsed());
        Ok(())
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
        Self::connect_with(url, &DbOptions::default()).await
    }

    /// `connect` with explicit options.
    pub async fn connect_with(url: &str, options: &DbOptions) -> Result<Self, sqlx::Error> {
        let base = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-32000");
        let path = {
            let file = base.get_filename();
            (!file.as_os_str().is_empty() && file != Path::new(":memory:"))
                .then(|| file.to_path_buf())
        };
        let mut writer_options = base.clone().create_if_missing(true);
        if let Some(pages) = options.max_page_count {
            writer_options = writer_options.pragma("max_page_count", pages.to_string());
        }

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // A write waits for the writer connection at most a little longer than for a lock
            // held by another process; past that it is refused as busy rather than left hanging.
            .acquire_timeout(options.busy_timeout + Duration::from_secs(5))
            // The writer heals itself: after a failed statement, COMMIT or ROLLBACK (a full
            // disk, an I/O error) SQLite may already have rolled the transaction back, so the
            // rollback sqlx queues on drop fails and sqlx still counts a transaction open; every
            // later BEGIN on that connection would then fail (`InvalidSavePointStatement`).
            // The ping runs after that queued rollback; a connection still in a transaction is
            // closed instead of returned, and the pool opens a fresh one for the next write.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    conn.ping().await?;
                    let clean = !conn.is_in_transaction();
                    if !clean {
                        tracing::warn!(
                            "the writer connection was left inside a failed transaction; \
                             replacing it"
                        );
                    }
                    Ok(clean)
                })
            })
            .connect_with(writer_options)
            .await?;
        repair_first_0002_checksum(&writer).await?;
        MIGRATOR.run(&writer).await?;

        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // Readers map the file instead of copying pages in with a read call each: reports
            // and searches touch thousands of scattered pages of a large database.
            .connect_with(
                base.clone()
                    .read_only(true)
                    .pragma("mmap_size", "268435456"),
            )
            .await?;
        let urgent = SqlitePoolOptions::new()
            .max_connections(2)
            .min_connections(1)
            .acquire_timeout(options.busy_timeout + Duration::from_secs(5))
            .connect_with(base.read_only(true).pragma("mmap_size", "268435456"))
            .await?;
        Ok(Self(Arc::new(DbParts {
            writer,
            reader,
            urgent,
            generation: Arc::new(AtomicU64::new(0)),
            timeline_generation: Arc::new(AtomicU64::new(0)),
            changes: Arc::new(ChangeLog::default()),
            incidents: Arc::new(IncidentStamps::default()),
            health: Arc::new(WriteHealth::default()),
            path,
        })))
    }

    /// Begins a write transaction. Callers commit; dropping it rolls back.
    ///
    /// A BEGIN that fails for any reason other than a lock held elsewhere leaves the connection
    /// in a state nobody can vouch for, so it is closed and the pool opens a fresh one.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let tx = match self.writer.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(err) if matches!(Fault::of(&err), Some(Fault::Busy)) => return Err(err),
            Err(err) => {
                tracing::warn!(error = %err, "BEGIN failed on the writer connection; replacing it");
                if let Ok(conn) = self.writer.acquire().await {
                    let _ = conn.close().await;
                }
                self.writer.begin_with("BEGIN IMMEDIATE").await?
            }
        };
        Ok(WriteTx {
            tx,
            generation: Arc::clone(&self.generation),
            timeline_generation: Arc::clone(&self.timeline_generation),
            changes: Arc::clone(&self.changes),
            since: None,
            incidents: Arc::clone(&self.incidents),
            changed_incidents: None,
            began: Instant::now(),
            _open: OpenMark::new(&self.health),
            health: Arc::clone(&self.health),
        })
    }

    /// The pool for a request's own reads: `urgent` when the request writes (its reads must
    /// not wait behind page loads queued for `reader`), `reader` otherwise.
    pub fn reads_for(&self, writing: bool) -> &SqlitePool {
        if writing { &self.urgent } else { &self.reader }
    }

    /// How writes have been going (counters, the current fault).
    pub fn health(&self) -> &WriteHealth {
        &self.health
    }

    /// The database file, when it is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Free bytes (for an unprivileged process) on the filesystem holding the database.
    pub fn disk_free_bytes(&self) -> Option<u64> {
        let dir = self.path()?.parent()?;
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let stat = rustix::fs::statvfs(dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// Tries one real write (a row of its own, committed), so `/readyz` can tell whether a
    /// fault has passed without waiting for someone's write to find out.
    pub async fn probe_write(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let at = ts(Utc::now());
        sqlx::query!(
            "INSERT INTO write_probe (id, at) VALUES (1, ?)
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
            at
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Copies the whole write-ahead log into the database file and empties it, so a stopped
    /// server leaves one self-contained file behind.
    pub async fn checkpoint(&self) -> Result<(), sqlx::Error> {
        // Unchecked: a PRAGMA, which sqlx's describe cannot prepare offline.
        let (busy, log, checkpointed): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.writer)
                .await?;
        if busy != 0 {
            tracing::warn!(
                log,
                checkpointed,
                "WAL checkpoint could not finish: a reader held it back"
            );
        }
        Ok(())
    }

    /// How many write transactions this process has committed. Read it *before* a query whose
    /// result is cached: if it changed since, the cached result may be stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `generation` plus the timeline-only writes (`WriteTx::commit_timeline`): changes when
    /// anything at all was committed. Both only grow, so their sum does too.
    pub fn generation_with_timeline(&self) -> u64 {
        self.generation()
            .wrapping_add(self.timeline_generation.load(Ordering::Acquire))
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
        // Before the writer: the last connection to close checkpoints the WAL into the file,
        // which an open reader would hold back.
        self.urgent.close().await;
        self.writer.close().await;
    }
}

/// Why the database cannot be opened, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum OpenProblem {
    #[error(
        "cannot write to {path}: {cause}. Hindsight needs read and write permission on the \
         database file (and write permission on its directory); give the user running Hindsight \
         that permission (chown/chmod) or mount the disk read-write"
    )]
    File { path: String, cause: String },
    #[error(
        "cannot create files in {dir}, the directory holding the database: {cause}. SQLite \
         creates {file}-wal and {file}-shm beside the database, so the user running Hindsight \
         needs write permission on this directory (chown/chmod), and the disk must be mounted \
         read-write"
    )]
    Directory {
        dir: String,
        file: String,
        cause: String,
    },
    #[error(
        "the database file {path} is damaged ({what}); Hindsight will not start on it. Restore \
         it: stop Hindsight, move {path} and any {path}-wal and {path}-shm aside, then copy your \
         latest `hindsight backup` copy to {path} (or run `litestream restore -o {path} \
         <replica-url>` if you replicate with Litestream) and start Hindsight again. \
         `sqlite3 {path} .recover` may rescue what the damaged file still holds"
    )]
    Damaged { path: String, what: String },
}

/// Checks, before anything opens it, that the database file at `url` can be written and looks
/// like an intact SQLite database, so a read-only file or directory or a damaged file stops
/// startup with a message naming the path instead of a raw SQLite error (or a server that
/// starts but can never save).
pub fn preflight(url: &str) -> Result<(), OpenProblem> {
    let Ok(options) = SqliteConnectOptions::from_str(url) else {
        return Ok(()); // sqlx reports a malformed URL itself
    };
    let path = options.get_filename();
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    let shown = path.display().to_string();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let describe = |e: &std::io::Error| match e.raw_os_error() {
        Some(13) | Some(1) => format!("permission denied ({e})"),
        Some(30) => format!("read-only file system ({e})"),
        _ => e.to_string(),
    };
    if dir.exists() {
        let probe = dir.join(format!(".hindsight-write-check-{}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) => {
                return Err(OpenProblem::Directory {
                    dir: dir.display().to_string(),
                    file: path
                        .file_name()
                        .map_or_else(|| shown.clone(), |f| f.to_string_lossy().into_owned()),
                    cause: describe(&e),
                });
            }
        }
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // created on first start
    };
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        return Err(OpenProblem::File {
            path: shown,
            cause: describe(&e),
        });
    }
    if meta.len() == 0 {
        return Ok(()); // an empty file becomes a new database
    }
    let damaged = |what: String| OpenProblem::Damaged {
        path: shown.clone(),
        what,
    };
    let mut header = [0u8; 100];
    let read =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header));
    if read.is_err() {
        return Err(damaged(format!(
            "it is {} bytes long, shorter than a SQLite header",
            meta.len()
        )));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(damaged("it does not start with a SQLite header".to_owned()));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => {
            return Err(damaged(format!(
                "its header names an impossible page size {n}"
            )));
        }
    };
    // The in-header page count is valid when its change counter matches (SQLite ≥ 3.7.0).
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    if header[24..28] == header[92..96] && pages > 0 && meta.len() < pages * page_size {
        return Err(damaged(format!(
            "it is truncated: {} bytes, but its header says {} pages of {page_size} bytes",
            meta.len(),
            pages
        )));
    }
    Ok(())
}

/// Words for an error `Db::connect` met that preflight could not foresee (damage deeper in the
/// file, a permission SQLite itself was refused), or `None` for any other error.
pub fn explain_open_error(url: &str, err: &sqlx::Error) -> Option<OpenProblem> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let code: i32 = db.code()?.parse().ok()?;
    let path = SqliteConnectOptions::from_str(url)
        .map(|o| o.get_filename().display().to_string())
        .unwrap_or_else(|_| url.to_owned());
    match code & 0xff {
        11 | 26 => Some(OpenProblem::Damaged {
            path,
            what: db.message().to_owned(),
        }),
        8 | 14 | 3 => Some(OpenProblem::File {
            path,
            cause: db.message().to_owned(),
        }),
        _ => None,
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

/// The last commits with the earliest instant of data each changed (ms; `i64::MIN`: may have
/// changed anything), newest last.
#[derive(Debug, Default)]
struct ChangeLog {
    recent: std::sync::Mutex<std::collections::VecDeque<(u64, i64)>>,
}

/// How many commits the change log remembers; a cache entry older than that is reloaded.
const CHANGE_LOG_LEN: usize = 4096;

impl ChangeLog {
    /// Advances the generation and remembers what the commit changed, under one lock so the
    /// log and the generation never disagree for a reader holding it.
    fn record(&self, generation: &AtomicU64, since: i64) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let g = generation.fetch_add(1, Ordering::AcqRel) + 1;
        if recent.len() >= CHANGE_LOG_LEN {
            recent.pop_front();
        }
        recent.push_back((g, since));
    }

    /// Whether every commit after `generation` up to `now` changed only data later than
    /// `horizon` (ms): then a result read at `generation` about data up to `horizon` holds.
    fn untouched(&self, generation: u64, now: u64, horizon: i64) -> bool {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let newer = recent.iter().filter(|(g, _)| *g > generation && *g <= now);
        let mut seen = 0u64;
        for (_, since) in newer {
            if *since <= horizon {
                return false;
            }
            seen += 1;
        }
        // Every commit in between must still be in the log.
        seen == now.saturating_sub(generation)
    }
}

/// Which incidents recent commits changed: each commit takes the next stamp and records it
/// for the incidents it declared (`WriteTx::changes_only_incident`), or for every incident
/// when it declared none.
#[derive(Debug, Default)]
struct IncidentStamps {
    /// The last stamp given out; read without the lock by a reader about to load.
    clock: AtomicU64,
    stamps: Mutex<Stamps>,
}

#[derive(Debug, Default)]
struct Stamps {
    /// The last commit that may have changed any incident.
    everything: u64,
    /// The last commit of each incident changed since `everything` by a declared write.
    incidents: std::collections::HashMap<String, u64>,
}

impl IncidentStamps {
    fn record(&self, changed: Option<&[String]>) {
        let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        // Taken under the lock, so a reader that saw this stamp also sees where it went.
        let stamp = self.clock.fetch_add(1, Ordering::AcqRel) + 1;
        match changed {
            Some(ids) => {
                for id in ids {
                    stamps.incidents.insert(id.clone(), stamp);
                }
            }
            None => {
                stamps.everything = stamp;
                // Older than `everything`, these say nothing more.
                stamps.incidents.clear();
            }
        }
    }

    /// The stamp to keep with data about to be read.
    fn now(&self) -> u64 {
        self.clock.load(Ordering::Acquire)
    }

    /// Whether data of `incident_id` read after stamp `at` was taken is still current.
    fn unchanged_since(&self, incident_id: &str, at: u64) -> bool {
        let stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        stamps.everything <= at && stamps.incidents.get(incident_id).is_none_or(|s| *s <= at)
    }
}

/// Data of one incident (what its page shows the same to everyone), reused until a write that
/// may have changed that incident is committed (`WriteTx::changes_only_incident`) and for at
/// most `max_age` (writes by another process). Holds at most `capacity` incidents: it starts
/// over when full.
#[derive(Debug)]
pub struct IncidentCache<V> {
    max_age: Duration,
    capacity: usize,
    entries: Mutex<std::collections::HashMap<String, (u64, Instant, V)>>,
    /// A burst of requests for an incident just written to loads it once: misses of the same
    /// incident wait for one another (by a hash of the id, so different incidents rarely do).
    loading: [tokio::sync::Mutex<()>; 16],
}

impl<V: Clone> IncidentCache<V> {
    pub fn new(max_age: Duration, capacity: usize) -> Self {
        Self {
            max_age,
            capacity,
            entries: Mutex::new(std::collections::HashMap::new()),
            loading: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
        }
    }

    fn fresh(&self, db: &Db, incident_id: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, read, value) = entries.get(incident_id)?;
        (read.elapsed() < self.max_age && db.incidents.unchanged_since(incident_id, *at))
            .then(|| value.clone())
    }

    /// The cached data of `incident_id`, or `load()`'s, which is then kept.
    pub async fn get_or_load<F, Fut, E>(&self, db: &Db, incident_id: &str, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.fresh(db, incident_id) {
            return Ok(value);
        }
        let slot = incident_id.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        }) % self.loading.len();
        let _one_at_a_time = self.loading[slot].lock().await;
        if let Some(value) = self.fresh(db, incident_id) {
            return Ok(value);
        }
        // Taken before reading: a write committed meanwhile makes the entry stale at once.
        let at = db.incidents.now();
        let read = Instant::now();
        let value = load().await?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(incident_id) {
            entries.clear();
        }
        entries.insert(incident_id.to_owned(), (at, read, value.clone()));
        Ok(value)
    }
}

/// Recently read results, reused while no write has been committed since they were read
/// (`Db::generation`) and for at most `max_age` (which bounds how long writes by another
/// process, such as `hindsight demo`, can go unseen). Bounded: it starts over when full.
#[derive(Debug)]
pub struct ReadCache<V> {
    max_age: Duration,
    /// Also emptied by timeline-only writes (a cache of timeline text).
    with_timeline: bool,
    entries: std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::Instant, V)>>,
    /// Misses load one at a time, so a burst of requests for a cold page runs its query once
    /// instead of once per request.
    loading: tokio::sync::Mutex<()>,
}

impl<V: Clone> ReadCache<V> {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            with_timeline: false,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// A cache of results that read timeline entries: every committed write empties it.
    pub fn with_timeline(max_age: Duration) -> Self {
        Self {
            with_timeline: true,
            ..Self::new(max_age)
        }
    }

    /// The write counter this cache's entries are checked against.
    fn generation(&self, db: &Db) -> u64 {
        if self.with_timeline {
            db.generation_with_timeline()
        } else {
            db.generation()
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
        let generation = self.generation(db);
        let now = std::time::Instant::now();
        if let Some(value) = self.fresh(&key, generation, now) {
            return Ok(value);
        }
        let _one_at_a_time = self.loading.lock().await;
        // Someone may have loaded it while this request waited.
        let generation = self.generation(db);
        let now = std::time::Instant::now();
        if let Some(value) = self.fresh(&key, generation, now) {
            return Ok(value);
        }
        let value = load().await?;
        self.keep(key, generation, now, value.clone());
        Ok(value)
    }

    /// `get_or_load` for a result about data up to `horizon` (a past week's review): a value
    /// read before later writes is still served when every one of them declared that it
    /// changed only later data (`WriteTx::changes_since`), such as the timeline, status and
    /// alerts of today's incident during a storm.
    pub async fn get_or_load_until<F, Fut, E>(
        &self,
        db: &Db,
        key: String,
        horizon: DateTime<Utc>,
        load: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let horizon = horizon.timestamp_millis();
        let now = std::time::Instant::now();
        if let Some(value) = self.fresh_until(db, &key, horizon, now) {
            return Ok(value);
        }
        let _one_at_a_time = self.loading.lock().await;
        let generation = self.generation(db);
        let now = std::time::Instant::now();
        if let Some(value) = self.fresh_until(db, &key, horizon, now) {
            return Ok(value);
        }
        let value = load().await?;
        self.keep(key, generation, now, value.clone());
        Ok(value)
    }

    fn fresh_until(&self, db: &Db, key: &str, horizon: i64, now: std::time::Instant) -> Option<V> {
        let current = self.generation(db);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (g, at, value) = entries.get_mut(key)?;
        if now.duration_since(*at) >= self.max_age {
            return None;
        }
        if *g == current {
            return Some(value.clone());
        }
        // Timeline-only writes are not in the change log; such a cache does not use horizons.
        if self.with_timeline || !db.changes.untouched(*g, current, horizon) {
            return None;
        }
        // Still valid at the current generation: later checks start from here.
        *g = current;
        Some(value.clone())
    }

    /// Whether `get_or_load_until` would serve `key` from memory right now.
    pub fn is_fresh_until(&self, db: &Db, key: &str, horizon: DateTime<Utc>) -> bool {
        self.fresh_until(
            db,
            key,
            horizon.timestamp_millis(),
            std::time::Instant::now(),
        )
        .is_some()
    }

    /// Whether `key` would be served from memory right now.
    pub fn is_fresh(&self, db: &Db, key: &str) -> bool {
        self.fresh(key, self.generation(db), std::time::Instant::now())
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
        let generation = self.generation(db);
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

    /// An incident's cached page data survives writes about other incidents and is read again
    /// after a write about it or one that did not say which incident it changed.
    #[tokio::test]
    async fn incident_data_is_read_again_only_after_writes_that_may_have_changed_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("h.db").display());
        let db = Db::connect(&url).await.expect("database");
        let cache: IncidentCache<u32> = IncidentCache::new(Duration::from_secs(600), 8);
        let loads = std::sync::atomic::AtomicU32::new(0);
        let get = |id: &'static str| {
            let (db, cache, loads) = (&db, &cache, &loads);
            async move {
                cache
                    .get_or_load(db, id, || async {
                        Ok::<_, ()>(loads.fetch_add(1, Ordering::SeqCst) + 1)
                    })
                    .await
                    .expect("load")
            }
        };
        let write = |about: Option<&'static str>| {
            let db = &db;
            async move {
                let mut tx = db.begin_write().await.expect("begin");
                if let Some(id) = about {
                    tx.changes_only_incident(id);
                }
                tx.commit().await.expect("commit");
            }
        };
        assert_eq!(get("a").await, 1);
        assert_eq!(get("b").await, 2);
        assert_eq!(get("a").await, 1, "nothing written: served from memory");
        write(Some("b")).await;
        assert_eq!(get("a").await, 1, "a write about b leaves a alone");
        assert_eq!(get("b").await, 3, "b is read again");
        assert_eq!(get("b").await, 3);
        write(None).await;
        assert_eq!(
            get("a").await,
            4,
            "a write that did not say: everything again"
        );
        assert_eq!(get("b").await, 5);
        // A timeline-only commit counts too.
        let mut tx = db.begin_write().await.expect("begin");
        tx.changes_only_incident("a");
        tx.commit_timeline().await.expect("commit");
        assert_eq!(get("a").await, 6);
        assert_eq!(get("b").await, 5);
        // Full: it starts over rather than grow.
        for id in ["c", "d", "e", "f", "g", "h", "i", "j"] {
            get(id).await;
        }
        assert!(cache.entries.lock().expect("lock").len() <= 8);
    }

    /// A past week's review stays cached through a storm's writes about today's incident, and
    /// is read again after a write about its own week or one that does not say what it changed.
    #[tokio::test]
    async fn a_result_about_the_past_survives_writes_about_later_data_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("h.db").display());
        let db = Db::connect(&url).await.expect("database");
        let cache: ReadCache<u32> = ReadCache::new(Duration::from_secs(600));
        let loads = std::sync::atomic::AtomicU32::new(0);
        let week_end = Utc
            .with_ymd_and_hms(2026, 11, 23, 0, 0, 0)
            .single()
            .expect("valid");
        let get = || {
            cache.get_or_load_until(&db, "2026-W47".into(), week_end, || async {
                Ok::<_, ()>(loads.fetch_add(1, Ordering::SeqCst) + 1)
            })
        };
        assert_eq!(get().await, Ok(1));

        // Today's incident: a status change, an alert, a timeline entry.
        let mut tx = db.begin_write().await.expect("begin");
        tx.changes_since(week_end + chrono::Duration::days(7));
        tx.commit().await.expect("commit");
        let tx = db.begin_write().await.expect("begin");
        tx.commit_timeline().await.expect("commit");
        assert_eq!(
            get().await,
            Ok(1),
            "writes about later data leave it cached"
        );

        // A correction to an incident of that week.
        let mut tx = db.begin_write().await.expect("begin");
        tx.changes_since(week_end - chrono::Duration::days(2));
        tx.changes_since(week_end + chrono::Duration::days(2));
        tx.commit().await.expect("commit");
        assert_eq!(get().await, Ok(2), "a write about its week reloads it");

        // A write that did not say what it changed may have changed anything.
        db.begin_write()
            .await
            .expect("begin")
            .commit()
            .await
            .expect("commit");
        assert_eq!(get().await, Ok(3));
        assert_eq!(get().await, Ok(3));
    }

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
