//! API keys: created once, shown once, stored as a hash.
//!
//! A key is `tp_` followed by 32 random bytes (64 hex digits, 256 bits of
//! entropy). Only its SHA-256 hash is stored: with that much entropy a hash
//! needs no secret and no slow KDF to resist brute force, a leaked database
//! does not leak usable keys, and no server secret has to be kept and rotated.
//! Keys are looked up by hash; the server compares the hashes again in
//! constant time.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::Val;
use crate::{now_ms, Store, StoreError};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// The read-only API.
    Analyst,
    /// The tracking endpoints only (a Segment "write key").
    Ingest,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Ingest => "ingest",
        }
    }
    /// Parse a stored or typed name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "analyst" => Some(Role::Analyst),
            "ingest" => Some(Role::Ingest),
            _ => None,
        }
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Public id: the first 8 hex digits of the key, shown in listings.
    pub key_id: String,
    /// The role.
    pub role: Role,
    /// A label.
    pub name: Option<String>,
    /// The tracking source (channel) events sent with this key belong to.
    pub source: Option<String>,
    /// Created at, UTC milliseconds.
    pub created_at: i64,
    /// Revoked at, UTC milliseconds.
    pub revoked_at: Option<i64>,
    /// SHA-256 of the key, hex.
    #[serde(skip)]
    pub key_hash: String,
}

/// A key just created: the secret is in `key` and nowhere else.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    /// The full key; show it once.
    pub key: String,
    /// What is stored.
    #[serde(flatten)]
    pub info: ApiKey,
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[usize::from(b >> 4)] as char);
        s.push(D[usize::from(b & 15)] as char);
    }
    s
}

/// SHA-256 of a presented key, hex: what is stored and looked up.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

const COLS: &str = "key_id, key_hash, role, name, source, created_at, revoked_at";

fn decode(r: crate::RowRef<'_>) -> Result<ApiKey, StoreError> {
    let role = r.text(2)?;
    Ok(ApiKey {
        key_id: r.text(0)?,
        key_hash: r.text(1)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown key role {role:?}")))?,
        name: r.opt_text(3)?,
        source: r.opt_text(4)?,
        created_at: r.i64(5)?,
        revoked_at: r.opt_i64(6)?,
    })
}

impl Store {
    /// Create a key. `source` (a channel name) is where its events go.
    pub async fn create_key(
        &self,
        role: Role,
        name: Option<&str>,
        source: Option<&str>,
    ) -> Result<CreatedKey, StoreError> {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let secret = hex(&raw);
        let key = format!("tp_{secret}");
        let info = ApiKey {
            key_id: secret[..8].to_string(),
            key_hash: hash_key(&key),
            role,
            name: name.map(str::to_string),
            source: source.map(str::to_string),
            created_at: now_ms(),
            revoked_at: None,
        };
        let mut tx = self.begin().await?;
        tx.conn()
            .exec(
                &format!("INSERT INTO api_keys ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
                &[
                    info.key_id.clone().into(),
                    info.key_hash.clone().into(),
                    role.as_str().into(),
                    info.name.clone().into(),
                    info.source.clone().into(),
                    info.created_at.into(),
                    Val::OI(None),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(CreatedKey { key, info })
    }

    /// Every key, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                &format!("SELECT {COLS} FROM api_keys ORDER BY created_at, key_id"),
                &[],
                decode,
            )
            .await
    }

    /// The key with this hash, revoked or not.
    pub async fn key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch_opt(
                &format!("SELECT {COLS} FROM api_keys WHERE key_hash = $1"),
                &[key_hash.into()],
                decode,
            )
            .await
    }

    /// Revoke a key by its id; false when there is no such active key.
    pub async fn revoke_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = tx
            .conn()
            .exec(
                "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
                &[now_ms().into(), key_id.into()],
            )
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}
