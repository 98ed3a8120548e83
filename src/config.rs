//! Settings read from the environment (and `.env`), validated once at startup.

use std::net::SocketAddr;
use std::time::Duration;

use chrono_tz::Tz;

/// Everything Hindsight can be configured with; see `.env.example` for the documentation.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    /// Public URL of this instance without a trailing slash, e.g. `https://hindsight.example.com`.
    pub base_url: String,
    pub log_format: LogFormat,
    /// Time zone pages show times in (storage is always UTC).
    pub timezone: Tz,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub session_ttl: Duration,
    /// Failed logins allowed per account and per client address within `login_window`.
    pub login_max_failures: u32,
    pub login_window: Duration,
    /// Whether `/metrics` needs a `read` token (otherwise it is open, for a scraper on a private network).
    pub metrics_require_token: bool,
    /// Collector window per service: the last N events and the last T seconds (validated).
    pub metrics_window: crate::metrics::WindowConfig,
    /// Most services the collector keeps windows for; pushes for more are refused.
    pub metrics_max_services: usize,
    /// Whether pushing events for a service not in the service list creates its window.
    pub metrics_auto_create: bool,
    /// Most events one ingest request may carry.
    pub metrics_max_batch: usize,
    /// Which OTLP spans become collector events (span kinds, optional attribute filter).
    pub otlp_rules: std::sync::Arc<crate::signals::otlp::OtlpRules>,
    /// How often alert rules are evaluated.
    pub alert_eval_interval: Duration,
    /// How Alertmanager/Grafana labels become incident fields.
    pub alert_mapping: crate::integrations::Mapping,
    /// First retry delay of an outgoing webhook (doubles per attempt).
    pub webhook_retry_base: Duration,
    /// When an incident counts as recurring: at least K others within W days before it.
    pub recurrence: crate::recurrence::Rule,
    /// A session ends after this long without a request (as well as after `session_ttl`).
    pub session_idle: Duration,
    /// Failed sign-ins allowed from one client address, whatever the accounts, per window.
    pub login_address_max_failures: u32,
    /// Failed sign-ins allowed against one account from addresses it has not signed in from
    /// lately, per window.
    pub login_account_max_failures: u32,
    /// Password verifications allowed to run at once; more sign-ins get 429 at once.
    pub login_max_concurrent: usize,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` name the client.
    pub trusted_proxies: crate::auth::proxies::TrustedProxies,
    /// A connection that has not sent a request's headers within this long is closed.
    pub header_read_timeout: Duration,
    /// How long a write waits for a lock held by another process before it is refused (503).
    pub db_busy_timeout: Duration,
    /// Below this many free bytes on the database's disk a warning is logged and shown to
    /// admins (0: never).
    pub disk_warn_bytes: u64,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    pub drain_timeout: Duration,
    /// Where outgoing webhooks may connect: public addresses, plus the non-public ranges
    /// listed in `HINDSIGHT_WEBHOOK_ALLOW_PRIVATE`.
    pub webhook_egress: crate::notifications::egress::Egress,
    /// How far ingest tokens (alert labels, metric pushes) may grow the service list.
    pub service_growth: crate::catalog::Growth,
    /// Sends inbox messages by e-mail (`HINDSIGHT_SMTP_URL` + `HINDSIGHT_MAIL_FROM`); none:
    /// the inbox is in-app only.
    pub mailer: Option<crate::inbox::mail::Mailer>,
    /// Where snapshots ask for the series of services with Prometheus queries
    /// (`HINDSIGHT_PROMETHEUS_URL` and its auth); none: such queries are noted, not run.
    pub prometheus: Option<crate::signals::prometheus::Source>,
    /// Synthetic traffic for the demo services (`HINDSIGHT_DEMO_TRAFFIC`, or `hindsight demo
    /// --traffic`), with its latency spike `HINDSIGHT_DEMO_SPIKE_AFTER_SECS` after start.
    pub demo_traffic: Option<crate::demo_traffic::Plan>,
    /// Single sign-on with OpenID Connect (`HINDSIGHT_OIDC_*`); none: passwords only.
    pub oidc: Option<crate::auth::oidc::OidcSettings>,
    /// Whether the password form is offered (`HINDSIGHT_LOCAL_LOGIN`, default true); when
    /// false only break-glass admins may sign in with a password.
    pub local_login: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A setting that is present but unusable; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

impl Config {
    /// Reads the process environment (after loading `.env` if present).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds a config from any lookup function, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());

        let database_url =
            get("HINDSIGHT_DATABASE_URL").unwrap_or_else(|| "sqlite://hindsight.db".to_owned());
        if !database_url.starts_with("sqlite:") {
            return Err(invalid(
                "HINDSIGHT_DATABASE_URL",
                &database_url,
                "must start with sqlite:",
            ));
        }

        let bind_raw = get("HINDSIGHT_BIND").unwrap_or_else(|| "127.0.0.1:3000".to_owned());
        let bind: SocketAddr = bind_raw.parse().map_err(|_| {
            invalid(
                "HINDSIGHT_BIND",
                &bind_raw,
                "expected host:port, e.g. 127.0.0.1:3000",
            )
        })?;

        let base_url = match get("HINDSIGHT_BASE_URL") {
            Some(url) => {
                let trimmed = url.trim_end_matches('/').to_owned();
                if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
                    return Err(invalid(
                        "HINDSIGHT_BASE_URL",
                        &url,
                        "must start with http:// or https://",
                    ));
                }
                trimmed
            }
            None => format!("http://{bind}"),
        };

        let log_format = match get("HINDSIGHT_LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(invalid(
                    "HINDSIGHT_LOG_FORMAT",
                    other,
                    "must be json or pretty",
                ));
            }
        };

        let timezone = match get("HINDSIGHT_TIMEZONE") {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                invalid(
                    "HINDSIGHT_TIMEZONE",
                    &name,
                    "must be an IANA time zone such as Europe/Berlin or UTC",
                )
            })?,
        };

        let mailer = match get("HINDSIGHT_SMTP_URL").filter(|u| !u.trim().is_empty()) {
            None => None,
            Some(url) => {
                let from = get("HINDSIGHT_MAIL_FROM")
                    .unwrap_or_else(|| "Hindsight <hindsight@localhost>".to_owned());
                let mailer = crate::inbox::mail::Mailer::new(url.trim(), &from, &base_url);
                // The URL may hold a password: the message names the variable, not it.
                Some(mailer.map_err(|reason| {
                    let name = if reason.starts_with("the sender") {
                        "HINDSIGHT_MAIL_FROM"
                    } else {
                        "HINDSIGHT_SMTP_URL"
                    };
                    invalid(name, "(not shown)", &reason)
                })?)
            }
        };

        let oidc = crate::auth::oidc::OidcSettings::from_lookup(&get, &base_url)
            .map_err(|(name, value, reason)| invalid(name, &value, &reason))?;
        let local_login = flag(&get, "HINDSIGHT_LOCAL_LOGIN", true)?;
        if !local_login && oidc.is_none() {
            return Err(invalid(
                "HINDSIGHT_LOCAL_LOGIN",
                "false",
                "needs single sign-on (HINDSIGHT_OIDC_ISSUER and the other HINDSIGHT_OIDC_* settings); otherwise only break-glass admins could sign in",
            ));
        }

        Ok(Self {
            database_url,
            bind,
            base_url,
            log_format,
            timezone,
            max_body_bytes: number(&get, "HINDSIGHT_MAX_BODY_BYTES", 2 * 1024 * 1024, 1024)?,
            request_timeout: Duration::from_secs(number(
                &get,
                "HINDSIGHT_REQUEST_TIMEOUT_SECS",
                30,
                1,
            )?),
            session_ttl: Duration::from_secs(
                3600 * number(&get, "HINDSIGHT_SESSION_TTL_HOURS", 24 * 7, 1)?,
            ),
            login_max_failures: number(&get, "HINDSIGHT_LOGIN_MAX_FAILURES", 10, 1)?,
            login_window: Duration::from_secs(number(&get, "HINDSIGHT_LOGIN_WINDOW_SECS", 900, 1)?),
            metrics_require_token: flag(&get, "HINDSIGHT_METRICS_REQUIRE_TOKEN", false)?,
            metrics_window: window_config(&get)?,
            metrics_max_services: at_most(
                "HINDSIGHT_METRICS_MAX_SERVICES",
                number(&get, "HINDSIGHT_METRICS_MAX_SERVICES", 100, 1)?,
                10_000,
            )?,
            metrics_auto_create: flag(&get, "HINDSIGHT_METRICS_AUTO_CREATE", true)?,
            metrics_max_batch: number(&get, "HINDSIGHT_METRICS_MAX_BATCH", 10_000, 1)?,
            otlp_rules: std::sync::Arc::new(otlp_rules(&get)?),
            alert_eval_interval: Duration::from_secs(number(
                &get,
                "HINDSIGHT_ALERT_EVAL_SECS",
                10,
                1,
            )?),
            alert_mapping: alert_mapping(&get)?,
            webhook_retry_base: Duration::from_millis(number(
                &get,
                "HINDSIGHT_WEBHOOK_RETRY_BASE_MS",
                2000,
                1,
            )?),
            recurrence: crate::recurrence::Rule {
                min_others: at_most(
                    "HINDSIGHT_RECURRENCE_MIN_OTHERS",
                    number(&get, "HINDSIGHT_RECURRENCE_MIN_OTHERS", 2u32, 1)?,
                    1000,
                )?,
                window_days: at_most(
                    "HINDSIGHT_RECURRENCE_WINDOW_DAYS",
                    number(&get, "HINDSIGHT_RECURRENCE_WINDOW_DAYS", 90u32, 1)?,
                    3650,
                )?,
            },
            session_idle: Duration::from_secs(
                60 * at_most(
                    "HINDSIGHT_SESSION_IDLE_MINUTES",
                    number(&get, "HINDSIGHT_SESSION_IDLE_MINUTES", 240u64, 1)?,
                    366 * 24 * 60,
                )?,
            ),
            login_address_max_failures: number(
                &get,
                "HINDSIGHT_LOGIN_ADDRESS_MAX_FAILURES",
                50,
                1,
            )?,
            login_account_max_failures: number(
                &get,
                "HINDSIGHT_LOGIN_ACCOUNT_MAX_FAILURES",
                100,
                1,
            )?,
            login_max_concurrent: at_most(
                "HINDSIGHT_LOGIN_MAX_CONCURRENT",
                number(&get, "HINDSIGHT_LOGIN_MAX_CONCURRENT", 4usize, 1)?,
                256,
            )?,
            trusted_proxies: match get("HINDSIGHT_TRUSTED_PROXIES") {
                None => crate::auth::proxies::TrustedProxies::default(),
                Some(raw) => crate::auth::proxies::TrustedProxies::parse(&raw)
                    .map_err(|reason| invalid("HINDSIGHT_TRUSTED_PROXIES", &raw, &reason))?,
            },
            header_read_timeout: Duration::from_secs(at_most(
                "HINDSIGHT_HEADER_READ_TIMEOUT_SECS",
                number(&get, "HINDSIGHT_HEADER_READ_TIMEOUT_SECS", 10u64, 1)?,
                3600,
            )?),
            db_busy_timeout: Duration::from_millis(at_most(
                "HINDSIGHT_DB_BUSY_TIMEOUT_MS",
                number(&get, "HINDSIGHT_DB_BUSY_TIMEOUT_MS", 5000u64, 1)?,
                600_000,
            )?),
            disk_warn_bytes: number(&get, "HINDSIGHT_DISK_WARN_MB", 512u64, 0)?
                .saturating_mul(1024 * 1024),
            drain_timeout: Duration::from_secs(at_most(
                "HINDSIGHT_DRAIN_SECONDS",
                number(&get, "HINDSIGHT_DRAIN_SECONDS", 20u64, 0)?,
                3600,
            )?),
            webhook_egress: {
                let raw = get("HINDSIGHT_WEBHOOK_ALLOW_PRIVATE").unwrap_or_default();
                crate::notifications::egress::Egress {
                    allow_private: crate::notifications::egress::parse_ranges(&raw).map_err(
                        |reason| invalid("HINDSIGHT_WEBHOOK_ALLOW_PRIVATE", &raw, &reason),
                    )?,
                }
            },
            service_growth: crate::catalog::Growth {
                creates: flag(&get, "HINDSIGHT_INGEST_CREATES_SERVICES", true)?,
                max_services: at_most(
                    "HINDSIGHT_MAX_SERVICES",
                    number(&get, "HINDSIGHT_MAX_SERVICES", 500usize, 1)?,
                    100_000,
                )?,
            },
            mailer,
            prometheus: prometheus_source(&get)?,
            demo_traffic: if flag(&get, "HINDSIGHT_DEMO_TRAFFIC", false)? {
                Some(crate::demo_traffic::Plan {
                    spike_after: Duration::from_secs(at_most(
                        "HINDSIGHT_DEMO_SPIKE_AFTER_SECS",
                        number(&get, "HINDSIGHT_DEMO_SPIKE_AFTER_SECS", 60u64, 0)?,
                        86_400,
                    )?),
                    ..crate::demo_traffic::Plan::default()
                })
            } else {
                None
            },
            oidc,
            local_login,
        })
    }

    /// True when cookies must carry `Secure` (the instance is served over TLS).
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

/// `HINDSIGHT_PROMETHEUS_URL` with its optional bearer token or user/password, range and
/// timeout. Errors name the variable, never the secret.
fn prometheus_source(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<Option<crate::signals::prometheus::Source>, ConfigError> {
    use crate::signals::prometheus::{Auth, Source};
    let Some(url) = get("HINDSIGHT_PROMETHEUS_URL").filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    let url = url.trim().trim_end_matches('/').to_owned();
    let authority = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let Some(authority) = authority.filter(|a| !a.is_empty() && !a.contains(char::is_whitespace))
    else {
        return Err(invalid(
            "HINDSIGHT_PROMETHEUS_URL",
            &url,
            "must be an http(s) URL such as http://prometheus:9090",
        ));
    };
    if authority.contains('@') {
        return Err(invalid(
            "HINDSIGHT_PROMETHEUS_URL",
            "(not shown)",
            "must not hold credentials; use HINDSIGHT_PROMETHEUS_USER and HINDSIGHT_PROMETHEUS_PASSWORD",
        ));
    }
    let token = get("HINDSIGHT_PROMETHEUS_BEARER_TOKEN").filter(|t| !t.trim().is_empty());
    let user = get("HINDSIGHT_PROMETHEUS_USER").filter(|t| !t.trim().is_empty());
    let password = get("HINDSIGHT_PROMETHEUS_PASSWORD").filter(|t| !t.is_empty());
    let auth = match (token, user, password) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(invalid(
                "HINDSIGHT_PROMETHEUS_BEARER_TOKEN",
                "(not shown)",
                "give either a bearer token or a user and password, not both",
            ));
        }
        (Some(token), None, None) => Auth::Bearer(token.trim().to_owned()),
        (None, Some(user), Some(password)) => Auth::Basic {
            user: user.trim().to_owned(),
            password,
        },
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(invalid(
                "HINDSIGHT_PROMETHEUS_USER",
                "(not shown)",
                "HINDSIGHT_PROMETHEUS_USER and HINDSIGHT_PROMETHEUS_PASSWORD go together",
            ));
        }
        (None, None, None) => Auth::None,
    };
    let range_minutes = at_most(
        "HINDSIGHT_PROMETHEUS_RANGE_MINUTES",
        number(&get, "HINDSIGHT_PROMETHEUS_RANGE_MINUTES", 30u32, 1)?,
        24 * 60,
    )?;
    let timeout_ms = at_most(
        "HINDSIGHT_PROMETHEUS_TIMEOUT_MS",
        number(&get, "HINDSIGHT_PROMETHEUS_TIMEOUT_MS", 3000u64, 100)?,
        30_000,
    )?;
    Ok(Some(Source {
        url,
        auth,
        range_minutes,
        timeout: Duration::from_millis(timeout_ms),
    }))
}

fn invalid(name: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError {
        name,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn number<T>(
    get: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: T,
    min: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let Some(raw) = get(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<T>() {
        Ok(v) if v >= min => Ok(v),
        _ => Err(invalid(
            name,
            &raw,
            &format!("must be a whole number ≥ {min}"),
        )),
    }
}

fn at_most<T: PartialOrd + std::fmt::Display>(
    name: &'static str,
    value: T,
    max: T,
) -> Result<T, ConfigError> {
    if value > max {
        Err(invalid(
            name,
            &value.to_string(),
            &format!("must be at most {max}"),
        ))
    } else {
        Ok(value)
    }
}

/// The collector's window from its two settings; the slot count is the largest up to 60 that
/// splits the window into whole milliseconds.
fn window_config(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<crate::metrics::WindowConfig, ConfigError> {
    let events = at_most(
        "HINDSIGHT_METRICS_WINDOW_EVENTS",
        number(get, "HINDSIGHT_METRICS_WINDOW_EVENTS", 10_000usize, 10)?,
        10_000_000,
    )?;
    let secs = at_most(
        "HINDSIGHT_METRICS_WINDOW_SECS",
        number(get, "HINDSIGHT_METRICS_WINDOW_SECS", 300u32, 10)?,
        86_400,
    )?;
    let millis = u64::from(secs) * 1000;
    let slots = (1..=60u32)
        .rev()
        .find(|s| millis.is_multiple_of(u64::from(*s)))
        .unwrap_or(1);
    let config = crate::metrics::WindowConfig {
        max_events: events,
        window_secs: secs,
        slots,
    };
    config.validate().map_err(|e| {
        invalid(
            "HINDSIGHT_METRICS_WINDOW_EVENTS",
            &events.to_string(),
            &e.to_string(),
        )
    })?;
    Ok(config)
}

fn alert_mapping(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<crate::integrations::Mapping, ConfigError> {
    let map_raw = get("HINDSIGHT_ALERT_SEVERITY_MAP")
        .unwrap_or_else(|| crate::integrations::DEFAULT_SEVERITY_MAP.to_owned());
    let severities = crate::integrations::parse_severity_map(&map_raw)
        .map_err(|reason| invalid("HINDSIGHT_ALERT_SEVERITY_MAP", &map_raw, &reason))?;
    Ok(crate::integrations::Mapping {
        severities,
        service_label: get("HINDSIGHT_ALERT_SERVICE_LABEL").unwrap_or_else(|| "service".to_owned()),
        resolve_to_monitoring: flag(get, "HINDSIGHT_ALERT_RESOLVE_TO_MONITORING", true)?,
    })
}

fn otlp_rules(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<crate::signals::otlp::OtlpRules, ConfigError> {
    let kinds = get("HINDSIGHT_OTLP_SPAN_KINDS").unwrap_or_else(|| "server,consumer".into());
    let filter = get("HINDSIGHT_OTLP_ATTRIBUTE_FILTER").unwrap_or_default();
    crate::signals::otlp::OtlpRules::parse(&kinds, "")
        .map_err(|reason| invalid("HINDSIGHT_OTLP_SPAN_KINDS", &kinds, &reason))?;
    crate::signals::otlp::OtlpRules::parse(&kinds, &filter)
        .map_err(|reason| invalid("HINDSIGHT_OTLP_ATTRIBUTE_FILTER", &filter, &reason))
}

fn flag(
    get: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(invalid(name, other, "must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_need_no_environment() {
        let cfg = config(&[]).expect("defaults are valid");
        assert_eq!(cfg.database_url, "sqlite://hindsight.db");
        assert_eq!(cfg.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(cfg.base_url, "http://127.0.0.1:3000");
        assert!(!cfg.secure_cookies());
        assert_eq!(
            (cfg.recurrence.min_others, cfg.recurrence.window_days),
            (2, 90)
        );
    }

    #[test]
    fn a_bad_setting_names_the_variable() {
        let err = config(&[("HINDSIGHT_BIND", "nonsense")]).expect_err("must fail");
        assert!(err.to_string().contains("HINDSIGHT_BIND"), "{err}");
        let err = config(&[("HINDSIGHT_TIMEZONE", "Mars/Olympus")]).expect_err("must fail");
        assert!(err.to_string().contains("HINDSIGHT_TIMEZONE"), "{err}");
        let err = config(&[("HINDSIGHT_RECURRENCE_WINDOW_DAYS", "0")]).expect_err("must fail");
        assert!(
            err.to_string().contains("HINDSIGHT_RECURRENCE_WINDOW_DAYS"),
            "{err}"
        );
        let err = config(&[("HINDSIGHT_RECURRENCE_MIN_OTHERS", "two")]).expect_err("must fail");
        assert!(
            err.to_string().contains("HINDSIGHT_RECURRENCE_MIN_OTHERS"),
            "{err}"
        );
        let err = config(&[("HINDSIGHT_MAX_BODY_BYTES", "-5")]).expect_err("must fail");
        assert!(
            err.to_string().contains("HINDSIGHT_MAX_BODY_BYTES"),
            "{err}"
        );
    }

    #[test]
    fn webhook_ranges_and_service_growth_are_read_and_checked() {
        let cfg = config(&[
            ("HINDSIGHT_WEBHOOK_ALLOW_PRIVATE", "10.0.0.0/8, fd00::/8"),
            ("HINDSIGHT_INGEST_CREATES_SERVICES", "false"),
            ("HINDSIGHT_MAX_SERVICES", "40"),
        ])
        .expect("valid");
        assert_eq!(cfg.webhook_egress.allow_private.len(), 2);
        assert!(!cfg.service_growth.creates);
        assert_eq!(cfg.service_growth.max_services, 40);
        let defaults = config(&[]).expect("valid");
        assert!(defaults.webhook_egress.allow_private.is_empty());
        assert!(defaults.service_growth.creates);
        let err = config(&[("HINDSIGHT_WEBHOOK_ALLOW_PRIVATE", "10.0.0.0/40")]).expect_err("bad");
        assert!(
            err.to_string().contains("HINDSIGHT_WEBHOOK_ALLOW_PRIVATE"),
            "{err}"
        );
        let err = config(&[("HINDSIGHT_MAX_SERVICES", "0")]).expect_err("bad");
        assert!(err.to_string().contains("HINDSIGHT_MAX_SERVICES"), "{err}");
    }

    #[test]
    fn https_base_url_turns_on_secure_cookies() {
        let cfg = config(&[("HINDSIGHT_BASE_URL", "https://hs.example.com/")]).expect("valid");
        assert_eq!(cfg.base_url, "https://hs.example.com");
        assert!(cfg.secure_cookies());
    }

    #[test]
    fn trusted_proxies_and_session_idle_are_read_and_checked() {
        let cfg = config(&[
            ("HINDSIGHT_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ("HINDSIGHT_SESSION_IDLE_MINUTES", "30"),
        ])
        .expect("valid");
        assert!(cfg.trusted_proxies.trusts("10.1.2.3".parse().expect("ip")));
        assert_eq!(cfg.session_idle, Duration::from_secs(1800));
        let defaults = config(&[]).expect("valid");
        assert!(
            defaults.trusted_proxies.is_empty(),
            "no proxy is trusted by default"
        );
        assert_eq!(defaults.session_idle, Duration::from_secs(4 * 3600));
        let err = config(&[("HINDSIGHT_TRUSTED_PROXIES", "10.0.0.1/8")]).expect_err("host bits");
        assert!(
            err.to_string().contains("HINDSIGHT_TRUSTED_PROXIES"),
            "{err}"
        );
        let err = config(&[("HINDSIGHT_SESSION_IDLE_MINUTES", "99999999999999999")])
            .expect_err("no overflow");
        assert!(
            err.to_string().contains("HINDSIGHT_SESSION_IDLE_MINUTES"),
            "{err}"
        );
        let err =
            config(&[("HINDSIGHT_HEADER_READ_TIMEOUT_SECS", "99999999999")]).expect_err("bounded");
        assert!(
            err.to_string()
                .contains("HINDSIGHT_HEADER_READ_TIMEOUT_SECS"),
            "{err}"
        );
        let err = config(&[("HINDSIGHT_LOGIN_MAX_CONCURRENT", "0")]).expect_err("at least one");
        assert!(
            err.to_string().contains("HINDSIGHT_LOGIN_MAX_CONCURRENT"),
            "{err}"
        );
    }

    #[test]
    fn prometheus_settings_are_checked_and_never_echo_the_secret() {
        assert!(config(&[]).expect("valid").prometheus.is_none());
        let ok = config(&[
            ("HINDSIGHT_PROMETHEUS_URL", "http://127.0.0.1:9090/"),
            ("HINDSIGHT_PROMETHEUS_BEARER_TOKEN", "tok-hunter2"),
        ])
        .expect("valid")
        .prometheus
        .expect("configured");
        assert_eq!(ok.url, "http://127.0.0.1:9090");
        assert_eq!(ok.range_minutes, 30);
        assert_eq!(ok.timeout, Duration::from_secs(3));
        for bad in [
            vec![("HINDSIGHT_PROMETHEUS_URL", "prometheus:9090")],
            vec![("HINDSIGHT_PROMETHEUS_URL", "http://u:hunter2@prom:9090")],
            vec![
                ("HINDSIGHT_PROMETHEUS_URL", "http://prom:9090"),
                ("HINDSIGHT_PROMETHEUS_BEARER_TOKEN", "hunter2"),
                ("HINDSIGHT_PROMETHEUS_PASSWORD", "hunter2"),
            ],
            vec![
                ("HINDSIGHT_PROMETHEUS_URL", "http://prom:9090"),
                ("HINDSIGHT_PROMETHEUS_PASSWORD", "hunter2"),
            ],
            vec![
                ("HINDSIGHT_PROMETHEUS_URL", "http://prom:9090"),
                ("HINDSIGHT_PROMETHEUS_RANGE_MINUTES", "0"),
            ],
        ] {
            let text = config(&bad).expect_err("must fail").to_string();
            assert!(text.contains("HINDSIGHT_PROMETHEUS_"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn a_bad_smtp_url_or_sender_stops_startup_naming_the_variable_not_the_password() {
        let err =
            config(&[("HINDSIGHT_SMTP_URL", "gopher://user:hunter2@mail")]).expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("HINDSIGHT_SMTP_URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let err = config(&[
            ("HINDSIGHT_SMTP_URL", "smtp://127.0.0.1:25"),
            ("HINDSIGHT_MAIL_FROM", "not an address"),
        ])
        .expect_err("must fail");
        assert!(err.to_string().contains("HINDSIGHT_MAIL_FROM"), "{err}");
        let ok = config(&[("HINDSIGHT_SMTP_URL", "smtp://127.0.0.1:25")]).expect("valid");
        assert!(ok.mailer.is_some());
        assert!(config(&[]).expect("valid").mailer.is_none());
    }
}
