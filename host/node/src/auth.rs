//! Bearer API keys. A key is `bsk_` and 64 hex digits of OS randomness; the
//! store keeps only its SHA-256, so a leaked database leaks no key. Keys
//! have a role: `client` (submit and read its own jobs) or `operator`
//! (everything, including approving modules). Each key is rate limited.

use axum::http::{HeaderMap, StatusCode};

use crate::blobs::sha256_hex;
use crate::state::{rate_limited, ApiError, AppState};
use crate::store::{Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Client,
    Operator,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "client" => Some(Role::Client),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Operator => "operator",
        }
    }
}

/// Who made a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: String,
    pub name: String,
    pub role: Role,
}

/// Creates a key and returns it: the only time the plain key exists.
pub async fn create_key(store: &Store, name: &str, role: Role) -> Result<(String, String), StoreError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| StoreError::Db(sqlx::Error::Protocol(format!("no OS randomness: {e}"))))?;
    let key = format!("bsk_{}", hex::encode(raw));
    let id = store.insert_key(name, role.as_str(), &sha256_hex(key.as_bytes())).await?;
    Ok((id, key))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// Authenticates the request and checks that its key has role `need`
/// (operators may do what clients may) and is within its rate limit.
pub async fn caller(s: &AppState, headers: &HeaderMap, need: Role) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        s.metrics.http_rejections.with_label_values(&["401"]).inc();
        return Err(unauthorized("an API key is required: Authorization: Bearer <key>"));
    };
    let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        s.metrics.http_rejections.with_label_values(&["401"]).inc();
        return Err(unauthorized("the Authorization header must be `Bearer <key>`"));
    };
    let Some(key) = s.store.key_by_hash(&sha256_hex(token.as_bytes())).await? else {
        s.metrics.http_rejections.with_label_values(&["401"]).inc();
        return Err(unauthorized("unknown or revoked API key"));
    };
    let role = Role::parse(&key.role).unwrap_or(Role::Client);
    if role < need {
        s.metrics.http_rejections.with_label_values(&["403"]).inc();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs an {} key; `{}` is a {} key", need.as_str(), key.name, role.as_str()),
        ));
    }
    if let Some(wait) = rate_limited(s, &key.id) {
        s.metrics.http_rejections.with_label_values(&["429"]).inc();
        return Err(ApiError {
            retry_after: Some(wait),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("key `{}` is over its request rate", key.name),
            )
        });
    }
    Ok(Caller { key_id: key.id, name: key.name, role })
}
