//! Records the store returns and takes.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{ExternalId, ResourceId, Scope, TenantId, TenantSlug, Timestamp, UserName};
use crate::scim::schema::{Registry, ResourceType};

/// A tenant.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    #[serde(skip)]
    pub id: TenantId,
    pub slug: TenantSlug,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    /// When a deleted tenant's data was purged and `tenant.deleted` emitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<Timestamp>,
    /// Events up to this sequence were removed by retention.
    #[serde(skip)]
    pub events_pruned_through: i64,
    /// How many schema extensions the tenant registered (the registry cache's key).
    #[serde(skip)]
    pub schema_version: i64,
    /// The tenant's schemas: the core, plus its registered extensions once the request's
    /// authentication has loaded them.
    #[serde(skip)]
    pub registry: std::sync::Arc<crate::scim::schema::Registry>,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// An application credential as listed (never its secret): it reads the events of the
/// tenants it names, or of every tenant.
#[derive(Debug, Clone, Serialize)]
pub struct AppInfo {
    pub id: String,
    pub name: String,
    pub all_tenants: bool,
    /// The slugs it may read (empty when `all_tenants`).
    pub tenants: Vec<TenantSlug>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
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
    /// The document with case-insensitive strings folded, for filters and sorting.
    pub search: Value,
}

/// A user as stored.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub id: ResourceId,
    pub active: bool,
    pub document: Map<String, Value>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The hot columns of a group, derived from its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHot {
    pub display_name: String,
    pub external_id: Option<ExternalId>,
}

/// A group to insert or the new state of one to replace (members live in their own table).
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub hot: GroupHot,
    /// The document as stored: without id, meta and members.
    pub document: Map<String, Value>,
    /// The document with case-insensitive strings folded, for filters and sorting.
    pub search: Value,
}

/// A group as stored (without its members).
#[derive(Debug, Clone)]
pub struct StoredGroup {
    pub id: ResourceId,
    pub display_name: String,
    pub document: Map<String, Value>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The two kinds of SCIM resource: what a member is, what a list, a bulk operation, a
/// snapshot or a cursor is about, and which table holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    /// The resource type's name (`meta.resourceType`, a member's `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// From the resource type's name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "User" => Some(ResourceKind::User),
            "Group" => Some(ResourceKind::Group),
            _ => None,
        }
    }

    /// The SCIM endpoint of this kind of resource.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// From the endpoint's name (`Users`, `Groups`).
    pub fn from_endpoint(value: &str) -> Option<Self> {
        match value {
            "Users" => Some(ResourceKind::User),
            "Groups" => Some(ResourceKind::Group),
            _ => None,
        }
    }

    /// Its resource type in `registry`.
    pub fn resource_type(self, registry: &Registry) -> &ResourceType {
        match self {
            ResourceKind::User => registry.user(),
            ResourceKind::Group => registry.group(),
        }
    }

    /// The table that holds resources of this kind.
    pub fn table(self) -> &'static str {
        match self {
            ResourceKind::User => "users",
            ResourceKind::Group => "groups",
        }
    }
}

/// A member as listed: its id, kind and display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: ResourceId,
    pub member_type: ResourceKind,
    pub display: Option<String>,
}

/// A group a user belongs to, directly or through nested groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub group_id: ResourceId,
    pub display: String,
    pub direct: bool,
}
