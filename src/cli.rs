//! The command line: `serve` (default), `migrate`, `user create`, `token create`, `backup`,
//! `demo`.

use std::io::{IsTerminal, Read};

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::app::{AppState, app};
use crate::auth::{self, NewUser, Role, Scope};
use crate::config::{Config, LogFormat};
use crate::db::Db;

#[derive(Debug, Parser)]
#[command(
    name = "hindsight",
    version,
    about = "Self-hosted incident and post-mortem tracker"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Write a consistent copy of the live database to PATH.
    Backup { path: String },
    /// Load realistic sample data (idempotent), or generate many incidents for load tests.
    Demo {
        /// Generate this many incidents (with timelines) instead of the sample set.
        #[arg(long)]
        incidents: Option<u64>,
        /// Timeline entries per generated incident.
        #[arg(long, default_value_t = 10)]
        entries_per_incident: u32,
        /// Action items per generated incident.
        #[arg(long, default_value_t = 3)]
        items_per_incident: u32,
        /// After loading the sample, run the server with synthetic traffic for the demo
        /// services (as `HINDSIGHT_DEMO_TRAFFIC=1`): a checkout latency spike pages a minute in.
        #[arg(long, conflicts_with = "incidents")]
        traffic: bool,
        /// With --incidents: shape the data like an organisation at scale (the storm
        /// benchmark's data): numbers in time order, most incidents closed, tens open, a few
        /// timelines of 1,200 entries, post-mortems and snapshots on the severe ones.
        #[arg(long, requires = "incidents")]
        realistic: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user. Without --password-stdin a random password is generated and printed.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "responder")]
        role: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (read from standard input) and end all their sessions; their API
    /// tokens keep working.
    SetPassword {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (the only way: never on the command line,
        /// where other users of the machine could read it).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Mark an admin break-glass: they may sign in with a password while
    /// HINDSIGHT_LOCAL_LOGIN=false (single sign-on only). --off removes the mark.
    BreakGlass {
        #[arg(long)]
        email: String,
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create an API token for a user; the token is printed once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        scope: String,
    },
}

/// Structured JSON logs by default (one object per line with the request id of its span).
pub fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}

pub type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub async fn run(cli: Cli, config: Config) -> CliResult {
    crate::db::preflight(&config.database_url)?;
    let options = crate::db::DbOptions {
        busy_timeout: config.db_busy_timeout,
        ..crate::db::DbOptions::default()
    };
    let db = Db::connect_with(&config.database_url, &options)
        .await
        .map_err(
            |e| match crate::db::explain_open_error(&config.database_url, &e) {
                Some(problem) => problem.to_string(),
                None => format!("cannot open {}: {e}", config.database_url),
            },
        )?;
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(db.clone(), config).await,
        Command::Migrate => {
            println!("migrations applied to {}", config.database_url);
            Ok(())
        }
        Command::User {
            action:
                UserAction::Create {
                    email,
                    name,
                    role,
                    password_stdin,
                },
        } => create_user(&db, &email, &name, &role, password_stdin).await,
        Command::User {
            action: UserAction::SetPassword { email, .. },
        } => set_password(&db, &email).await,
        Command::User {
            action: UserAction::BreakGlass { email, off },
        } => {
            let user = auth::sso::set_break_glass(&db, &email, !off).await?;
            if off {
                println!("{} is no longer break-glass", user.email);
            } else {
                println!(
                    "{} is break-glass: they can sign in with a password while HINDSIGHT_LOCAL_LOGIN=false (at /login?local=1)",
                    user.email
                );
            }
            Ok(())
        }
        Command::Token {
            action: TokenAction::Create { user, name, scope },
        } => create_token(&db, &user, &name, &scope).await,
        Command::Backup { path } => {
            db.backup(&path).await?;
            println!("backup written to {path}");
            Ok(())
        }
        Command::Demo {
            incidents,
            entries_per_incident,
            items_per_incident,
            traffic,
            realistic,
        } => match incidents {
            Some(n) if realistic => Ok(crate::demo::generate_realistic(
                &db,
                n,
                entries_per_incident,
                items_per_incident,
            )
            .await?),
            Some(n) => {
                Ok(crate::demo::generate(&db, n, entries_per_incident, items_per_incident).await?)
            }
            None if traffic => {
                crate::demo::load_sample(&db).await?;
                let mut config = config;
                config.demo_traffic = config.demo_traffic.or(Some(Default::default()));
                serve(db.clone(), config).await
            }
            None => Ok(crate::demo::load_sample(&db).await?),
        },
    };
    db.close().await;
    result
}

async fn serve(db: Db, config: Config) -> CliResult {
    if let Some(secret) = auth::open_setup_link(&db).await? {
        let link = format!("{}/setup/{secret}", config.base_url);
        // The one-time link is meant to be read from the log by whoever started the server.
        tracing::warn!(setup_link = %link, "no users yet: open the setup link to create the first admin (valid 24 hours, once)");
        // The banner is for a person at a terminal; a log collector reading the stream gets
        // only the structured line above (with the link), so every line stays parseable.
        if setup_banner_wanted(config.log_format, std::io::stderr().is_terminal()) {
            eprintln!(
                "\n  No users yet. Create the first admin here (one-time link, 24 hours):\n  {link}\n"
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on HINDSIGHT_BIND={}: {e}", config.bind))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, base_url = %config.base_url, "Hindsight is listening");
    let eval_every = config.alert_eval_interval;
    let drain = config.drain_timeout;
    let state = AppState::new(db, config);
    if let Some(oidc) = state.oidc.clone() {
        // Discovery in the background: a provider that is down must not stop Hindsight from
        // starting; sign-in retries it.
        tokio::task::spawn_blocking(move || oidc.warm_up());
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let alerts = tokio::spawn(crate::alerts::run(
        state.db.clone(),
        state.signals.clone(),
        state.alert_evaluator.clone(),
        eval_every,
        stop.clone(),
    ));
    let outbox = tokio::spawn(crate::notifications::run(
        state.db.clone(),
        state.config.base_url.clone(),
        state.config.webhook_retry_base,
        state.config.webhook_egress.clone(),
        stop.clone(),
    ));
    // Inbox messages by e-mail, when mail is configured.
    let mail = tokio::spawn({
        let (db, mailer, stop) = (state.db.clone(), state.config.mailer.clone(), stop.clone());
        async move {
            if let Some(mailer) = mailer {
                crate::inbox::mail::run(db, mailer, stop).await;
            }
        }
    });
    // The weekly review delivered on schedule (e-mail and webhook): stops between rounds.
    let reviews = tokio::spawn(crate::review_delivery::run(
        axum::extract::FromRef::from_ref(&state),
        stop.clone(),
    ));
    // Read-only (it builds a cached page): aborted at shutdown, nothing to finish.
    let warmer = tokio::spawn(crate::reports::keep_weekly_warm(
        axum::extract::FromRef::from_ref(&state),
        std::time::Duration::from_secs(2),
    ));
    let header_read_timeout = state.config.header_read_timeout;
    let disk = tokio::spawn(watch_disk(
        state.db.clone(),
        state.config.disk_warn_bytes,
        stop.clone(),
    ));
    // Demo traffic (off unless asked for): stops with the other loops.
    let traffic = tokio::spawn({
        let (signals, plan, stop) = (
            state.signals.clone(),
            state.config.demo_traffic,
            stop.clone(),
        );
        async move {
            if let Some(plan) = plan {
                crate::demo_traffic::run(signals, plan, stop).await;
            }
        }
    });
    let draining = std::sync::Arc::clone(&state.draining);
    let db = state.db.clone();
    let router = app(state);
    let (drain_tx, mut drain_rx) = tokio::sync::watch::channel(false);
    // The server (`crate::server`: header-read timeout, peer addresses) stops accepting when
    // the drain starts; the timeout below bounds how long in-flight requests may take.
    let mut server = tokio::spawn(crate::server::serve(
        listener,
        router,
        header_read_timeout,
        async move {
            let _ = drain_rx.wait_for(|d| *d).await;
        },
    ));
    tokio::select! {
        result = &mut server => {
            // The server stopped on its own (an accept error): stop the rest and report it.
            let _ = stop_tx.send(true);
            warmer.abort();
            result??;
            return Ok(());
        }
        () = shutdown_signal() => {}
    }

    // Shutdown: refuse new requests (503), let the in-flight ones finish within the drain
    // timeout, stop the background loops between rounds, then checkpoint the WAL into the
    // database file so the stopped server leaves one complete file behind.
    tracing::info!(
        drain_secs = drain.as_secs(),
        "shutting down: finishing requests in flight"
    );
    draining.store(true, std::sync::atomic::Ordering::Release);
    let _ = drain_tx.send(true);
    match tokio::time::timeout(drain, &mut server).await {
        Ok(result) => result??,
        Err(_) => {
            tracing::warn!(
                drain_secs = drain.as_secs(),
                "requests still running after the drain timeout were cut off (their writes \
                 were rolled back, never half-done)"
            );
            server.abort();
        }
    }
    let _ = stop_tx.send(true);
    warmer.abort();
    for (name, task) in [
        ("alert evaluation", alerts),
        ("outbox delivery", outbox),
        ("disk watch", disk),
        ("inbox mail", mail),
        ("demo traffic", traffic),
        ("weekly review delivery", reviews),
    ] {
        if tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .is_err()
        {
            tracing::warn!(task = name, "a background task did not stop in time");
        }
    }
    match db.checkpoint().await {
        Ok(()) => tracing::info!("WAL checkpointed"),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint at shutdown failed"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Whether to print the human setup banner: on a terminal always; on a pipe or file only when
/// the log is not JSON (a JSON stream must hold nothing but JSON lines).
fn setup_banner_wanted(format: LogFormat, terminal: bool) -> bool {
    terminal || format == LogFormat::Pretty
}

/// Checks the free space of the database's filesystem every 30 seconds: under `warn_bytes` it
/// logs a warning (again every 10 minutes while it lasts) and admins see a banner.
async fn watch_disk(db: Db, warn_bytes: u64, mut stop: tokio::sync::watch::Receiver<bool>) {
    if warn_bytes == 0 {
        return;
    }
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(30));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_logged: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        check_disk(&db, warn_bytes, &mut last_logged);
    }
}

/// One check of `watch_disk` (also run at startup by it, on its first tick).
pub fn check_disk(db: &Db, warn_bytes: u64, last_logged: &mut Option<std::time::Instant>) {
    let Some(free) = db.disk_free_bytes() else {
        return;
    };
    if free < warn_bytes {
        let mb = |b: u64| b / (1024 * 1024);
        let message = format!(
            "Low disk space: {} MB free on the disk holding the database (warning below {} MB, \
             HINDSIGHT_DISK_WARN_MB). When it is full, nothing can be saved.",
            mb(free),
            mb(warn_bytes)
        );
        let due = last_logged.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(600));
        if due {
            tracing::warn!(free_bytes = free, warn_bytes, "{message}");
            *last_logged = Some(std::time::Instant::now());
        }
        db.health().set_disk_warning(Some(message));
    } else if db.health().set_disk_warning(None) {
        tracing::info!(
            free_bytes = free,
            "disk space is back above the warning threshold"
        );
        *last_logged = None;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn create_user(
    db: &Db,
    email: &str,
    name: &str,
    role: &str,
    password_stdin: bool,
) -> CliResult {
    let (password, generated) = if password_stdin {
        (read_password()?, false)
    } else {
        (auth::random_secret("", 12)?, true)
    };
    let new_user = NewUser::parse(email, name, role, &password)?;
    let user = auth::create_user(db, auth::By::CommandLine, &new_user).await?;
    println!("created {} ({}) as {}", user.name, user.email, user.role);
    if generated {
        println!("password (shown once): {}", new_user.password);
    }
    Ok(())
}

/// Reads a password from standard input: one line, at most a little more than the longest
/// password allowed (so the rules, not the memory, refuse a huge input).
fn read_password() -> Result<String, std::io::Error> {
    let mut buf = String::new();
    let limit = u64::try_from(auth::passwords::MAX_PASSWORD_BYTES + 3).unwrap_or(u64::MAX);
    std::io::stdin().take(limit).read_to_string(&mut buf)?;
    Ok(buf.trim_end_matches(['\n', '\r']).to_owned())
}

async fn set_password(db: &Db, email: &str) -> CliResult {
    let password = read_password()?;
    let (user, ended) = auth::account::set_password(db, email, &password).await?;
    println!(
        "password set for {} ({}); {ended} sessions ended, API tokens unchanged",
        user.name, user.email
    );
    Ok(())
}

async fn create_token(db: &Db, email: &str, name: &str, scope: &str) -> CliResult {
    let scope = Scope::parse(scope).ok_or_else(|| format!("--scope {}", Scope::field_error()))?;
    let user = auth::db::find_user_by_email(&db.reader, email)
        .await?
        .ok_or_else(|| format!("no user has the email {email}"))?;
    if scope == Scope::Write && user.role < Role::Responder {
        eprintln!("note: {email} is a viewer, so this write token can only read");
    }
    let secret = auth::issue_token(db, auth::By::CommandLine, &user, name, scope).await?;
    println!("{secret}");
    Ok(())
}
