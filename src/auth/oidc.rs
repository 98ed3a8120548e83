//! Single sign-on with OpenID Connect (authorization code flow with PKCE, `state` and
//! `nonce`): the settings, provider discovery (lazy, retried), the redirect to the provider,
//! and the callback — code exchange, then the ID token's signature, issuer, audience, expiry
//! and nonce checked by the `openidconnect` crate — and the group → role decision. No axum:
//! `oidc_web.rs` translates these to pages.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdToken, IssuerUrl,
    LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::Role;

/// The client secret: never printed, not even by `Debug`.
#[derive(Clone)]
pub struct HiddenSecret(String);

impl std::fmt::Debug for HiddenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HiddenSecret(not shown)")
    }
}

/// `HINDSIGHT_OIDC_*`, validated at startup.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<HiddenSecret>,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    /// Group → role, in the order configured; the highest role of a user's groups wins.
    pub role_map: Vec<(String, Role)>,
    /// The role of a user in no mapped group; `None` (`deny`) refuses them.
    pub default_role: Option<Role>,
    /// Shown on the button: "Sign in with <name>".
    pub provider_name: String,
    /// `HINDSIGHT_BASE_URL` + `/auth/oidc/callback`.
    pub redirect_url: String,
    /// `HINDSIGHT_BASE_URL` + `/login`: where the provider sends people after signing out.
    pub post_logout_url: String,
}

/// A setting that cannot be used: (variable, value as shown, reason).
pub type SettingError = (&'static str, String, String);

impl OidcSettings {
    /// Reads the settings; `None` when `HINDSIGHT_OIDC_ISSUER` is not set (no single sign-on).
    pub fn from_lookup(
        get: &impl Fn(&'static str) -> Option<String>,
        base_url: &str,
    ) -> Result<Option<Self>, SettingError> {
        let Some(issuer) = get("HINDSIGHT_OIDC_ISSUER").map(|s| s.trim().to_owned()) else {
            return Ok(None);
        };
        let bad = |name: &'static str, value: &str, reason: &str| {
            (name, value.to_owned(), reason.to_owned())
        };
        let issuer_url = IssuerUrl::new(issuer.clone())
            .map_err(|_| bad("HINDSIGHT_OIDC_ISSUER", &issuer, "must be a URL"))?;
        let host = issuer_url.url().host_str().unwrap_or_default().to_owned();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) || host.is_empty() {
            return Err(bad(
                "HINDSIGHT_OIDC_ISSUER",
                &issuer,
                "must be an http(s) URL such as https://login.example.com/realms/main",
            ));
        }
        let client_id = get("HINDSIGHT_OIDC_CLIENT_ID")
            .map(|s| s.trim().to_owned())
            .ok_or_else(|| {
                bad(
                    "HINDSIGHT_OIDC_CLIENT_ID",
                    "",
                    "must be set when HINDSIGHT_OIDC_ISSUER is",
                )
            })?;
        let client_secret =
            get("HINDSIGHT_OIDC_CLIENT_SECRET").map(|s| HiddenSecret(s.trim().to_owned()));
        let scopes_raw =
            get("HINDSIGHT_OIDC_SCOPES").unwrap_or_else(|| "openid email profile".to_owned());
        let scopes: Vec<String> = scopes_raw
            .split([' ', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(bad(
                "HINDSIGHT_OIDC_SCOPES",
                &scopes_raw,
                "must include openid (e.g. \"openid email profile\")",
            ));
        }
        if let Some(odd) = scopes.iter().find(|s| {
            !s.chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        }) {
            return Err(bad(
                "HINDSIGHT_OIDC_SCOPES",
                &scopes_raw,
                &format!("{odd:?} is not a scope name"),
            ));
        }
        let groups_claim = get("HINDSIGHT_OIDC_GROUPS_CLAIM")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "groups".to_owned());
        let role_map_raw = get("HINDSIGHT_OIDC_ROLE_MAP").unwrap_or_default();
        let role_map = parse_role_map(&role_map_raw)
            .map_err(|reason| bad("HINDSIGHT_OIDC_ROLE_MAP", &role_map_raw, &reason))?;
        let default_raw = get("HINDSIGHT_OIDC_DEFAULT_ROLE").unwrap_or_else(|| "deny".to_owned());
        let default_role = match default_raw.trim() {
            "deny" => None,
            other => Some(Role::parse(other).ok_or_else(|| {
                bad(
                    "HINDSIGHT_OIDC_DEFAULT_ROLE",
                    &default_raw,
                    "must be viewer, responder, admin or deny",
                )
            })?),
        };
        if role_map.is_empty() && default_role.is_none() {
            return Err(bad(
                "HINDSIGHT_OIDC_ROLE_MAP",
                "",
                "is empty and HINDSIGHT_OIDC_DEFAULT_ROLE is deny, so nobody could sign in: map groups to roles (e.g. sre-leads:admin,engineering:responder) or set a default role",
            ));
        }
        let provider_name = get("HINDSIGHT_OIDC_PROVIDER_NAME")
            .map(|s| s.trim().to_owned())
            .unwrap_or(host);
        if provider_name.chars().count() > 60 {
            return Err(bad(
                "HINDSIGHT_OIDC_PROVIDER_NAME",
                &provider_name,
                "must be at most 60 characters",
            ));
        }
        Ok(Some(Self {
            issuer,
            client_id,
            client_secret,
            scopes,
            groups_claim,
            role_map,
            default_role,
            provider_name,
            redirect_url: format!("{base_url}/auth/oidc/callback"),
            post_logout_url: format!("{base_url}/login"),
        }))
    }

    /// The role for these groups: the highest mapped one, else the default (`None`: refused).
    pub fn role_for(&self, groups: &[String]) -> Option<Role> {
        self.role_map
            .iter()
            .filter(|(group, _)| groups.iter().any(|g| g == group))
            .map(|(_, role)| *role)
            .max()
            .or(self.default_role)
    }
}

/// `sre-leads:admin,engineering:responder` → pairs; names each bad entry.
fn parse_role_map(raw: &str) -> Result<Vec<(String, Role)>, String> {
    let mut out = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        // Group names may contain ':' (e.g. LDAP DNs); the role is after the last one.
        let Some((group, role)) = entry.rsplit_once(':') else {
            return Err(format!("{entry:?} must be group:role"));
        };
        let role = Role::parse(role.trim())
            .ok_or_else(|| format!("{entry:?}: the role must be viewer, responder or admin"))?;
        let group = group.trim();
        if group.is_empty() {
            return Err(format!("{entry:?}: the group is empty"));
        }
        out.push((group.to_owned(), role));
    }
    Ok(out)
}

/// Every claim of the ID token beyond the standard ones (the groups claim among them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    pub other: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

type GroupsIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Why the provider could not be used; each says what a person can do, never a token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("{0} cannot be reached right now")]
    Unreachable(String),
    #[error("the provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the sign-in link is invalid, expired or already used")]
    BadState,
    #[error("the provider's answer could not be trusted: {0}")]
    Untrusted(String),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpFailure(String);

/// How long a discovered configuration (and its signing keys) is used before it is fetched
/// again, and how long after a failed discovery the next attempt waits.
const FRESH_FOR: Duration = Duration::from_secs(15 * 60);
const RETRY_AFTER: Duration = Duration::from_secs(5);

enum Discovery {
    NotYet,
    Ready {
        metadata: Box<ProviderMetadataWithLogout>,
        at: Instant,
    },
    Failed {
        at: Instant,
    },
}

/// The configured provider: settings, an HTTP agent, and the discovered configuration.
pub struct Oidc {
    pub settings: OidcSettings,
    agent: ureq::Agent,
    discovery: Mutex<Discovery>,
}

/// A sign-in on its way to the provider: the URL to send the browser to, and what is kept
/// on the server until it comes back.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who the provider says signed in (claims verified).
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// The raw ID token, kept for `id_token_hint` at sign-out.
    pub id_token: String,
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            // The oauth2 crate's advice: never follow redirects (no SSRF through them).
            .max_redirects(0)
            .build()
            .into();
        Self {
            settings,
            agent,
            discovery: Mutex::new(Discovery::NotYet),
        }
    }

    /// True when the last discovery attempt failed (the login page says so).
    pub fn looks_unreachable(&self) -> bool {
        self.discovery
            .lock()
            .is_ok_and(|d| matches!(*d, Discovery::Failed { .. }))
    }

    /// The provider's configuration: cached for [`FRESH_FOR`]; fetched (blocking, so call
    /// from `spawn_blocking`) when missing or stale, at most every [`RETRY_AFTER`] after a
    /// failure. A stale one is still used when fetching fails.
    fn metadata(&self) -> Result<ProviderMetadataWithLogout, OidcError> {
        let unreachable = || OidcError::Unreachable(self.settings.provider_name.clone());
        {
            let guard = self.discovery.lock().map_err(|_| unreachable())?;
            match &*guard {
                Discovery::Ready { metadata, at } if at.elapsed() < FRESH_FOR => {
                    return Ok((**metadata).clone());
                }
                Discovery::Failed { at } if at.elapsed() < RETRY_AFTER => {
                    return Err(unreachable());
                }
                _ => {}
            }
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|_| unreachable())?;
        let client = |req| http_call(&self.agent, req);
        let found = ProviderMetadataWithLogout::discover(&issuer, &client);
        let mut guard = self.discovery.lock().map_err(|_| unreachable())?;
        match found {
            Ok(metadata) => {
                *guard = Discovery::Ready {
                    metadata: Box::new(metadata.clone()),
                    at: Instant::now(),
                };
                Ok(metadata)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.settings.issuer, error = %e, "OpenID Connect discovery failed");
                if let Discovery::Ready { metadata, .. } = &*guard {
                    return Ok((**metadata).clone());
                }
                *guard = Discovery::Failed { at: Instant::now() };
                Err(unreachable())
            }
        }
    }

    /// Runs discovery now (at startup), so the first person to sign in does not wait for it
    /// and a provider that is down is logged early. Never fails: sign-in retries later.
    pub fn warm_up(&self) {
        if self.metadata().is_ok() {
            tracing::info!(issuer = %self.settings.issuer, "OpenID Connect provider discovered");
        }
    }

    fn client(
        &self,
        metadata: ProviderMetadataWithLogout,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
            .map_err(|e| OidcError::Untrusted(format!("redirect URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.0.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's authorization URL with a fresh state, nonce and PKCE challenge
    /// (blocking: may run discovery).
    pub fn start(&self) -> Result<Started, OidcError> {
        let client = self.client(self.metadata()?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token: signature
    /// against the provider's keys, issuer, audience, expiry and nonce (blocking).
    pub fn finish(
        &self,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Identity, OidcError> {
        let client = self.client(self.metadata()?)?;
        let http = |req| http_call(&self.agent, req);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Untrusted(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request(&http)
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    OidcError::Refused(r.error().to_string())
                }
                openidconnect::RequestTokenError::Request(_) => {
                    OidcError::Unreachable(self.settings.provider_name.clone())
                }
                other => OidcError::Untrusted(format!("token endpoint: {other}")),
            })?;
        let raw = response
            .id_token()
            .ok_or_else(|| OidcError::Untrusted("no ID token in the answer".into()))?
            .to_string();
        // Read again with every claim kept (the groups claim's name is configured).
        let token: GroupsIdToken = raw
            .parse()
            .map_err(|e| OidcError::Untrusted(format!("ID token: {e}")))?;
        let verifier = client.id_token_verifier();
        let claims = token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .map_err(|e| OidcError::Untrusted(e.to_string()))?;
        let groups = match claims
            .additional_claims()
            .other
            .get(&self.settings.groups_claim)
        {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()));
        Ok(Identity {
            issuer: claims.issuer().as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            name,
            groups,
            id_token: raw,
        })
    }

    /// Where to send the browser to end the provider's session too, when the provider has
    /// an end-session endpoint (blocking: may run discovery).
    pub fn end_session_url(&self, id_token: Option<&str>) -> Option<String> {
        let metadata = self.metadata().ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.settings.client_id.clone()));
        if let Ok(url) = PostLogoutRedirectUrl::new(self.settings.post_logout_url.clone()) {
            request = request.set_post_logout_redirect_uri(url);
        }
        if let Some(token) = id_token.and_then(|t| t.parse::<GroupsIdToken>().ok()) {
            request = request.set_id_token_hint(&token);
        }
        Some(request.http_get_url().to_string())
    }
}

/// Most bytes read from the provider in one answer.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// One HTTP exchange with the provider through ureq (blocking).
fn http_call(
    agent: &ureq::Agent,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpFailure> {
    let (parts, body) = request.into_parts();
    let answer = if body.is_empty() && parts.method == http::Method::GET {
        agent.run(http::Request::from_parts(parts, ()))
    } else {
        agent.run(http::Request::from_parts(parts, body))
    };
    let mut answer = answer.map_err(|e| HttpFailure(e.to_string()))?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| HttpFailure(e.to_string()))?;
    let mut response = http::Response::new(bytes);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&'static str, &str)]) -> Result<Option<OidcSettings>, SettingError> {
        let vars: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        OidcSettings::from_lookup(&|name| vars.get(name).cloned(), "https://hs.example.com")
    }

    #[test]
    fn highest_mapped_role_wins_and_deny_refuses() {
        let s = settings(&[
            (
                "HINDSIGHT_OIDC_ISSUER",
                "https://login.example.com/realms/main",
            ),
            ("HINDSIGHT_OIDC_CLIENT_ID", "hindsight"),
            (
                "HINDSIGHT_OIDC_ROLE_MAP",
                "engineering:responder, sre-leads:admin,all:viewer",
            ),
        ])
        .expect("valid")
        .expect("configured");
        let g = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(s.role_for(&g(&["all", "sre-leads"])), Some(Role::Admin));
        assert_eq!(s.role_for(&g(&["engineering"])), Some(Role::Responder));
        assert_eq!(s.role_for(&g(&["marketing"])), None, "default is deny");
        assert_eq!(s.provider_name, "login.example.com");
        assert_eq!(s.redirect_url, "https://hs.example.com/auth/oidc/callback");
        assert_eq!(s.scopes, ["openid", "email", "profile"]);
    }

    #[test]
    fn bad_settings_name_their_variable_and_hide_the_secret() {
        let base = [
            ("HINDSIGHT_OIDC_ISSUER", "https://login.example.com"),
            ("HINDSIGHT_OIDC_CLIENT_ID", "hindsight"),
            ("HINDSIGHT_OIDC_CLIENT_SECRET", "s3cr3t-value"),
        ];
        let with = |extra: (&'static str, &str)| {
            let mut v = base.to_vec();
            v.push(extra);
            settings(&v).expect_err("invalid").0
        };
        assert_eq!(
            with(("HINDSIGHT_OIDC_ROLE_MAP", "engineering")),
            "HINDSIGHT_OIDC_ROLE_MAP"
        );
        assert_eq!(
            with(("HINDSIGHT_OIDC_ROLE_MAP", "eng:root")),
            "HINDSIGHT_OIDC_ROLE_MAP"
        );
        assert_eq!(
            with(("HINDSIGHT_OIDC_DEFAULT_ROLE", "boss")),
            "HINDSIGHT_OIDC_DEFAULT_ROLE"
        );
        assert_eq!(
            with(("HINDSIGHT_OIDC_SCOPES", "email")),
            "HINDSIGHT_OIDC_SCOPES"
        );
        assert_eq!(
            settings(&[("HINDSIGHT_OIDC_ISSUER", "https://x.example.com")])
                .expect_err("no client id")
                .0,
            "HINDSIGHT_OIDC_CLIENT_ID"
        );
        let ok = settings(&[
            base[0],
            base[1],
            base[2],
            ("HINDSIGHT_OIDC_DEFAULT_ROLE", "viewer"),
        ])
        .expect("valid")
        .expect("configured");
        assert!(
            !format!("{ok:?}").contains("s3cr3t"),
            "Debug hides the secret"
        );
        assert!(settings(&[]).expect("valid").is_none());
    }
}
