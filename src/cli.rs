//! The command line: `serve` (default), `migrate`, `user create`, `token create`, `backup`,
//! `demo`.

use std::io::Read;
use std::net::SocketAddr;

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
    let db = Db::connect(&config.database_url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", config.database_url))?;
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
        } => match incidents {
            Some(n) => {
                Ok(crate::demo::generate(&db, n, entries_per_incident, items_per_incident).await?)
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
        eprintln!(
            "\n  No users yet. Create the first admin here (one-time link, 24 hours):\n  {link}\n"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on HINDSIGHT_BIND={}: {e}", config.bind))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, base_url = %config.base_url, "Hindsight is listening");
    let eval_every = config.alert_eval_interval;
    let state = AppState::new(db, config);
    tokio::spawn(crate::alerts::run(
        state.db.clone(),
        state.signals.clone(),
        state.alert_evaluator.clone(),
        eval_every,
    ));
    tokio::spawn(crate::notifications::run(
        state.db.clone(),
        state.config.base_url.clone(),
        state.config.webhook_retry_base,
        state.config.webhook_egress.clone(),
    ));
    tokio::spawn(crate::reports::keep_weekly_warm(
        axum::extract::FromRef::from_ref(&state),
        std::time::Duration::from_secs(2),
    ));
    let router = app(state);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("stopped");
    Ok(())
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
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf)?;
        (buf.trim_end_matches(['\n', '\r']).to_owned(), false)
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
