//! Hindsight running in-process on 127.0.0.1:0 with a fresh database in a temporary folder,
//! plus helpers that put people, services and incidents in it directly.

use std::net::SocketAddr;

use hindsight::auth::{Role, Scope, User};
use hindsight::config::Config;
use hindsight::db::Db;

/// A running server; it stops (runtime dropped) and its database is deleted when dropped.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`, as the browser reaches it.
    pub(crate) address: String,
    db: Db,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub(crate) fn spawn() -> Self {
        Self::spawn_with(|_| Vec::new())
    }

    /// A server with extra settings, which may depend on its own address (`base_url`).
    pub(crate) fn spawn_with(extra: impl Fn(&str) -> Vec<(&'static str, String)>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("hindsight.db").display());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (db, address) = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let addr = listener.local_addr().expect("local address");
            let base_url = format!("http://{addr}");
            let (bind, db_url) = (addr.to_string(), url.clone());
            let extra = extra(&base_url);
            let config = Config::from_lookup(|key| match key {
                "HINDSIGHT_DATABASE_URL" => Some(db_url.clone()),
                "HINDSIGHT_BIND" => Some(bind.clone()),
                "HINDSIGHT_BASE_URL" => Some(base_url.clone()),
                _ => extra
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone()),
            })
            .expect("test config");
            let db = Db::connect(&url).await.expect("open the test database");
            let router = hindsight::app(hindsight::AppState::new(db.clone(), config));
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
                .expect("server runs");
            });
            (db, base_url)
        });
        Self {
            address,
            db,
            runtime,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Creates an account that can sign in with `password`.
    pub(crate) fn add_user(&self, email: &str, name: &str, role: Role, password: &str) -> User {
        let hash = hindsight::auth::hash_password(password);
        self.runtime.block_on(async {
            let mut tx = self.db.begin_write().await.expect("write transaction");
            let user = hindsight::auth::db::insert_user(&mut tx, email, name, role, &hash)
                .await
                .expect("insert user");
            tx.commit().await.expect("commit user");
            user
        })
    }

    pub(crate) fn add_service(&self, name: &str, team: &str) {
        self.runtime.block_on(async {
            let mut tx = self.db.begin_write().await.expect("write transaction");
            hindsight::catalog::db::insert_service(&mut tx, name, team)
                .await
                .expect("insert service");
            tx.commit().await.expect("commit service");
        });
    }

    /// Declares an incident as `by` would from a script: through the documented JSON API with
    /// a write token. Returns its number (`INC-1`).
    pub(crate) fn declare(&self, by: &User, title: &str, service: &str) -> String {
        self.declare_with(
            by,
            serde_json::json!({
                "title": title,
                "severity": "sev2",
                "service": service,
                "category": "deploy",
            }),
        )
    }

    /// Declares an incident with this JSON body (e.g. a `started_at` in the past).
    pub(crate) fn declare_with(&self, by: &User, body: serde_json::Value) -> String {
        let token = self.runtime.block_on(async {
            let mut tx = self.db.begin_write().await.expect("write transaction");
            let token =
                hindsight::auth::db::insert_token(&mut tx, &by.id, "browser test", Scope::Write)
                    .await
                    .expect("insert token");
            tx.commit().await.expect("commit token");
            token
        });
        let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
        let mut response = agent
            .post(self.url("/api/v1/incidents"))
            .header("Authorization", format!("Bearer {token}"))
            .send_json(body)
            .expect("POST /api/v1/incidents answers 201");
        let body: serde_json::Value = response.body_mut().read_json().expect("incident JSON");
        body["number"]
            .as_str()
            .unwrap_or_else(|| panic!("no number in {body}"))
            .to_owned()
    }
}
