//! Cursors of RFC 9865: opaque, base64url, sealed with HMAC-SHA256 under a key every
//! replica shares (`SCIMBUS_CURSOR_KEY`), bound to the tenant, the resource type, the
//! filter, the sort and the page size, and valid for `cursorTimeout` seconds. A cursor
//! holds the offset of the page it names.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use scim_v2::models::errors::ScimType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{ResourceKind, TenantId};
use crate::scim::error::ScimError;

type HmacSha256 = Hmac<Sha256>;

/// Seals and opens cursors.
#[derive(Clone)]
pub struct Cursors {
    key: Vec<u8>,
    /// Seconds a cursor stays valid (advertised as `cursorTimeout`).
    pub timeout_secs: u32,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursors")
            .field("timeout_secs", &self.timeout_secs)
            .finish_non_exhaustive()
    }
}

/// What a cursor is bound to besides its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorScope<'a> {
    pub tenant_id: &'a TenantId,
    pub kind: ResourceKind,
    pub filter: Option<&'a str>,
    pub sort_by: Option<&'a str>,
    pub sort_order: Option<&'a str>,
    pub count: u64,
}

impl CursorScope<'_> {
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            Some(self.tenant_id.as_str()),
            Some(self.kind.as_str()),
            self.filter,
            self.sort_by,
            self.sort_order,
        ] {
            h.update(part.unwrap_or("\u{0}").as_bytes());
            h.update([0x1f]);
        }
        h.update(self.count.to_be_bytes());
        hex::encode(&h.finalize()[..16])
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Digest of the scope.
    s: String,
    /// Offset of the page.
    o: u64,
    /// Expiry, Unix seconds.
    e: i64,
}

fn invalid(detail: &str) -> ScimError {
    ScimError::new(400, Some(ScimType::Other("invalidCursor".into())), detail)
}

impl Cursors {
    /// With the configured key, or a random one (then cursors work only on this replica,
    /// until it restarts).
    pub fn new(key: Option<&[u8]>, timeout_secs: u32) -> Self {
        let key = match key {
            Some(k) => k.to_vec(),
            None => {
                let mut k = vec![0u8; 32];
                rand::rng().fill_bytes(&mut k);
                k
            }
        };
        Self { key, timeout_secs }
    }

    fn mac(&self, data: &[u8]) -> Result<Vec<u8>, ScimError> {
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .map_err(|_| ScimError::new(500, None, "cursor key"))?;
        mac.update(data);
        Ok(mac.finalize().into_bytes().to_vec())
    }

    pub fn seal(
        &self,
        scope: &CursorScope<'_>,
        offset: u64,
        now: DateTime<Utc>,
    ) -> Result<String, ScimError> {
        let payload = Payload {
            s: scope.digest(),
            o: offset,
            e: now.timestamp() + i64::from(self.timeout_secs),
        };
        let body = serde_json::to_vec(&payload).map_err(|_| ScimError::new(500, None, "cursor"))?;
        let tag = self.mac(&body)?;
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(body),
            URL_SAFE_NO_PAD.encode(tag)
        ))
    }

    /// The offset a cursor names, if it is genuine, for this scope and not expired.
    pub fn open(
        &self,
        cursor: &str,
        scope: &CursorScope<'_>,
        now: DateTime<Utc>,
    ) -> Result<u64, ScimError> {
        let (body, tag) = cursor
            .split_once('.')
            .ok_or_else(|| invalid("the cursor is not one of ours"))?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| invalid("the cursor is not one of ours"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| invalid("the cursor is not one of ours"))?;
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .map_err(|_| ScimError::new(500, None, "cursor key"))?;
        mac.update(&body);
        mac.verify_slice(&tag)
            .map_err(|_| invalid("the cursor is not one of ours"))?;
        let payload: Payload =
            serde_json::from_slice(&body).map_err(|_| invalid("the cursor is not one of ours"))?;
        if payload.s != scope.digest() {
            return Err(invalid(
                "the cursor belongs to another query (tenant, filter, sort and count must not change)",
            ));
        }
        if payload.e <= now.timestamp() {
            return Err(ScimError::new(
                400,
                Some(ScimType::Other("expiredCursor".into())),
                "the cursor has expired",
            ));
        }
        Ok(payload.o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn scope(count: u64) -> CursorScope<'static> {
        CursorScope {
            tenant_id: Box::leak(Box::new(TenantId::from("t1"))),
            kind: ResourceKind::User,
            filter: Some("userName pr"),
            sort_by: None,
            sort_order: None,
            count,
        }
    }

    #[test]
    fn a_cursor_opens_only_for_its_own_query_before_it_expires() {
        let cursors = Cursors::new(Some(b"0123456789abcdef0123456789abcdef"), 60);
        let now = Utc::now();
        let c = cursors.seal(&scope(10), 30, now).unwrap();
        assert_eq!(cursors.open(&c, &scope(10), now).unwrap(), 30);
        let kind = |e: ScimError| e.scim_type.map(|t| t.as_str().to_owned());
        assert_eq!(
            kind(cursors.open(&c, &scope(11), now).unwrap_err()).as_deref(),
            Some("invalidCursor")
        );
        assert_eq!(
            kind(
                cursors
                    .open(&c, &scope(10), now + TimeDelta::seconds(61))
                    .unwrap_err()
            )
            .as_deref(),
            Some("expiredCursor")
        );
        let other = Cursors::new(Some(b"another-key-another-key-another!!"), 60);
        assert!(other.open(&c, &scope(10), now).is_err());
        assert!(cursors.open("garbage", &scope(10), now).is_err());
        let mut tampered = c.clone();
        tampered.insert(1, 'A');
        assert!(cursors.open(&tampered, &scope(10), now).is_err());
    }
}
