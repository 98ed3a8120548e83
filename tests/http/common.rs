//! Test harness: every test gets its own app on a fresh database file, called in-process through
//! the router (no sockets), with helpers named after what a user does.

#![allow(dead_code)]

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use hindsight::auth::{Role, Scope};
use hindsight::config::Config;
use hindsight::db::Db;
use hindsight::{AppState, app};

pub const HOST: &str = "hindsight.test";
pub const ORIGIN: &str = "http://hindsight.test";
pub const PASSWORD: &str = "correct horse battery";

/// Argon2 is slow on purpose; one hash serves every test user.
static PASSWORD_HASH: LazyLock<String> = LazyLock::new(|| hindsight::auth::hash_password(PASSWORD));

pub struct TestApp {
    pub router: Router,
    pub db: Db,
    pub state: AppState,
    _dir: tempfile::TempDir,
}

/// A user with a signed-in session.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub cookie: String,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn location(&self) -> &str {
        self.header("location")
    }

    /// The session cookie a response sets, as `name=value`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    #[track_caller]
    pub fn assert_status(&self, expected: StatusCode) -> &Self {
        assert_eq!(self.status, expected, "body: {}", self.body);
        self
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// An app with extra settings, e.g. `("HINDSIGHT_LOGIN_MAX_FAILURES", "3")`.
    pub async fn spawn_with(settings: &[(&str, &str)]) -> Self {
        Self::spawn_with_db(
            settings,
            None::<fn(&std::path::Path) -> hindsight::db::DbOptions>,
        )
        .await
    }

    /// An app whose database is opened with the options `options(path)` returns (e.g. a page
    /// cap that makes it "full"); the database is created and migrated first without them.
    pub async fn spawn_with_db(
        settings: &[(&str, &str)],
        options: Option<impl FnOnce(&std::path::Path) -> hindsight::db::DbOptions>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let mut pairs: Vec<(String, String)> = vec![
            ("HINDSIGHT_DATABASE_URL".into(), url.clone()),
            ("HINDSIGHT_BASE_URL".into(), ORIGIN.into()),
        ];
        pairs.extend(
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let config = Config::from_lookup(|name| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .expect("test config");
        let db = match options {
            Some(options) => {
                Db::connect(&url).await.expect("create").close().await;
                let options = options(&dir.path().join("test.db"));
                Db::connect_with(&url, &options).await.expect("database")
            }
            None => Db::connect(&url).await.expect("database"),
        };
        let state = AppState::new(db.clone(), config);
        Self {
            router: app(state.clone()),
            db,
            state,
            _dir: dir,
        }
    }

    /// Creates a user with `role` and a live session.
    pub async fn user(&self, role: Role) -> TestUser {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.db.reader)
            .await
            .expect("count");
        let email = format!("{}{n}@example.com", role.as_str());
        let name = format!("{} {n}", capitalize(role.as_str()));
        let mut tx = self.db.begin_write().await.expect("tx");
        let user = hindsight::auth::db::insert_user(&mut tx, &email, &name, role, &PASSWORD_HASH)
            .await
            .expect("insert user");
        let secret = hindsight::auth::db::create_session(
            &mut tx,
            &user.id,
            std::time::Duration::from_secs(3600),
        )
        .await
        .expect("session");
        tx.commit().await.expect("commit");
        TestUser {
            id: user.id,
            email,
            name,
            cookie: format!("hindsight_session={secret}"),
        }
    }

    pub async fn token(&self, user: &TestUser, scope: Scope) -> String {
        let mut tx = self.db.begin_write().await.expect("tx");
        let secret = hindsight::auth::db::insert_token(&mut tx, &user.id, "test", scope)
            .await
            .expect("token");
        tx.commit().await.expect("commit");
        secret
    }

    pub async fn service(&self, name: &str, team: &str) {
        let mut tx = self.db.begin_write().await.expect("tx");
        hindsight::catalog::db::insert_service(&mut tx, name, team)
            .await
            .expect("service");
        tx.commit().await.expect("commit");
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.db.reader)
            .await
            .expect("count")
    }

    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("infallible router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, user: Option<&TestUser>) -> TestResponse {
        let mut req = Request::get(path).header(header::HOST, HOST);
        if let Some(u) = user {
            req = req.header(header::COOKIE, &u.cookie);
        }
        self.send(req.body(Body::empty()).expect("request")).await
    }

    /// A form POST as a browser on this site sends it.
    pub async fn post_form(
        &self,
        path: &str,
        user: Option<&TestUser>,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        let mut req = Request::post(path)
            .header(header::HOST, HOST)
            .header(header::ORIGIN, ORIGIN)
            .header("sec-fetch-site", "same-origin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(u) = user {
            req = req.header(header::COOKIE, &u.cookie);
        }
        let body = serde_urlencoded::to_string(fields).expect("form");
        self.send(req.body(Body::from(body)).expect("request"))
            .await
    }

    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).expect("request")).await
    }

    /// Declares an incident through the API and returns its JSON.
    pub async fn declare(&self, token: &str, body: Value) -> Value {
        let response = self
            .api(Method::POST, "/api/v1/incidents", Some(token), Some(body))
            .await;
        response.assert_status(StatusCode::CREATED);
        response.json()
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The tags of an HTML page without its text, lower-cased: what a browser would act on. Payloads
/// Markdown shows as text (`&lt;img … onerror=…&gt;`) are left out, their markup is not.
pub fn markup_only(html: &str) -> String {
    html.to_lowercase()
        .split('<')
        .skip(1)
        .map(|tag| format!("<{}>", tag.split('>').next().unwrap_or_default()))
        .collect()
}
