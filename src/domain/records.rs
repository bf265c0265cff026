//! Records the store returns and takes.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{ExternalId, Scope, TenantSlug, UserName};

/// A tenant.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    #[serde(skip)]
    pub id: String,
    pub slug: TenantSlug,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// The hot columns of a user, derived from its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHot {
    pub user_name: UserName,
    pub external_id: Option<ExternalId>,
    pub active: bool,
    pub display_name: Option<String>,
}

/// A user to insert or the new state of one to replace.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub hot: UserHot,
    /// The document as stored: without id, meta, groups and password.
    pub document: Map<String, Value>,
}

/// A user as stored.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub id: String,
    pub active: bool,
    pub document: Map<String, Value>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}
