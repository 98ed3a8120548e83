//! The command line, run as the real binary: setup commands, backup, demo, bad settings.

use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("hindsight.db")
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hindsight"))
            .args(args)
            .current_dir(self.dir.path())
            .env(
                "HINDSIGHT_DATABASE_URL",
                format!("sqlite://{}", self.db_path().display()),
            )
            .env("HINDSIGHT_LOG_FORMAT", "pretty")
            .env_remove("HINDSIGHT_BIND")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hindsight runs");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("finishes")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn migrate_creates_the_database_and_user_and_token_commands_work() {
    let cli = Cli::new();
    let out = cli.run(&["migrate"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(cli.db_path().exists());

    let out = cli.run(
        &[
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--name",
            "Ada",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created Ada (ada@example.com) as admin"));
    assert!(
        !stdout(&out).contains("a long enough password"),
        "the password is not echoed"
    );

    let generated = cli.run(
        &[
            "user",
            "create",
            "--email",
            "bo@example.com",
            "--name",
            "Bo",
        ],
        None,
    );
    assert!(generated.status.success());
    assert!(stdout(&generated).contains("password (shown once): "));

    let duplicate = cli.run(
        &[
            "user",
            "create",
            "--email",
            "ADA@example.com",
            "--name",
            "Ada 2",
        ],
        None,
    );
    assert!(!duplicate.status.success());
    assert!(
        stderr(&duplicate).contains("already used"),
        "{}",
        stderr(&duplicate)
    );

    let weak = cli.run(
        &[
            "user",
            "create",
            "--email",
            "cy@example.com",
            "--name",
            "Cy",
            "--password-stdin",
        ],
        Some("short"),
    );
    assert!(!weak.status.success());
    assert!(stderr(&weak).contains("password"));

    let token = cli.run(
        &[
            "token",
            "create",
            "--user",
            "ada@example.com",
            "--name",
            "ci",
            "--scope",
            "write",
        ],
        None,
    );
    assert!(token.status.success(), "{}", stderr(&token));
    let secret = stdout(&token).trim().to_owned();
    assert!(secret.starts_with("hs_") && secret.len() == 67, "{secret}");

    let bad_scope = cli.run(
        &[
            "token",
            "create",
            "--user",
            "ada@example.com",
            "--name",
            "x",
            "--scope",
            "root",
        ],
        None,
    );
    assert!(!bad_scope.status.success());
    assert!(stderr(&bad_scope).contains("--scope"));
}

#[test]
fn demo_loads_sample_data_once_and_backup_copies_it() {
    let cli = Cli::new();
    let first = cli.run(&["demo"], None);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("40 incidents"));
    let second = cli.run(&["demo"], None);
    assert!(stdout(&second).contains("already loaded"));

    let generated = cli.run(
        &["demo", "--incidents", "25", "--entries-per-incident", "3"],
        None,
    );
    assert!(generated.status.success(), "{}", stderr(&generated));

    // A deleted entry leaves a gap in the rowids, which VACUUM is allowed to close up.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let db = hindsight::db::Db::connect(&format!("sqlite://{}", cli.db_path().display()))
            .await
            .expect("opens");
        let mut tx = db.begin_write().await.expect("tx");
        sqlx::query(
            "DELETE FROM timeline_entries WHERE rowid = (SELECT MIN(rowid) FROM timeline_entries)",
        )
        .execute(&mut *tx)
        .await
        .expect("delete");
        tx.commit().await.expect("commit");
        db.close().await;
    });

    let copy = cli.dir.path().join("copy.db");
    let out = cli.run(&["backup", copy.to_str().expect("path")], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let restored = Cli {
        dir: tempfile::tempdir().expect("dir"),
    };
    std::fs::copy(&copy, restored.db_path()).expect("copy");
    // The copy is a complete database: it opens, migrates (nothing to do) and holds the data,
    // and its full-text indexes point at the right rows.
    let (incidents, entries, integrity) = rt.block_on(async {
        let db = hindsight::db::Db::connect(&format!("sqlite://{}", restored.db_path().display()))
            .await
            .expect("opens");
        let incidents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM incidents")
            .fetch_one(&db.reader)
            .await
            .expect("count");
        let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM timeline_entries")
            .fetch_one(&db.reader)
            .await
            .expect("count");
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&db.reader)
            .await
            .expect("check");
        for table in hindsight::db::FTS_TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)"
            )))
            .execute(&db.writer)
            .await
            .unwrap_or_else(|e| panic!("{table} matches its table in the copy: {e}"));
        }
        (incidents, entries, integrity)
    });
    assert_eq!(incidents, 65);
    assert!(entries >= 40 * 4 + 25 * 3, "{entries}");
    assert_eq!(integrity, "ok");
}

#[test]
fn a_bad_setting_stops_startup_with_a_message_naming_it() {
    let cli = Cli::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hindsight"));
    let out = cmd
        .arg("serve")
        .current_dir(cli.dir.path())
        .env("HINDSIGHT_BIND", "not-an-address")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("HINDSIGHT_BIND"), "{}", stderr(&out));
    assert!(
        !cli.db_path().exists(),
        "nothing is created before the settings are valid"
    );
}
