//! Identifiers and instants as types: a tenant's id, a resource's id and a timestamp are
//! all strings in the database, and never interchangeable in code. Each is a SeaORM value
//! type, so entities, store and service signatures carry them down to the columns.
//!
//! Swapping them does not compile:
//!
//! ```compile_fail
//! use scimbus::domain::{ResourceId, TenantId};
//! fn find(tenant: &TenantId, id: &ResourceId) {}
//! let tenant = TenantId::generate();
//! let id = ResourceId::generate();
//! find(&id, &tenant);
//! ```
//!
//! ```
//! use scimbus::domain::{ResourceId, TenantId};
//! fn find(tenant: &TenantId, id: &ResourceId) {}
//! let tenant = TenantId::generate();
//! let id = ResourceId::generate();
//! find(&tenant, &id);
//! ```

use std::fmt;

use sea_orm::DeriveValueType;
use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            Default,
            Serialize,
            Deserialize,
            DeriveValueType,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as stored.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
                Err(sea_orm::DbErr::ConvertFromU64(stringify!($name)))
            }
        }

        impl From<&$name> for sea_orm::Value {
            fn from(value: &$name) -> Self {
                value.0.as_str().into()
            }
        }
    };
}

string_id!(
    /// A tenant's id (a UUIDv7 the service assigns; never shown in SCIM, which names
    /// tenants by slug).
    TenantId
);

string_id!(
    /// A user's or group's id (RFC 7643 §3.1 `id`: assigned by the service, a UUID).
    /// Any string a client sends as an id is one: an id no resource has is simply not
    /// found.
    ResourceId
);

impl TenantId {
    /// A new tenant's id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl ResourceId {
    /// A new resource's id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

string_id!(
    /// An instant as stored and shown: RFC 3339 in UTC with milliseconds
    /// (`2026-01-01T00:00:00.000Z`, `scim::time::format`), so that text order is time
    /// order in both databases.
    Timestamp
);

/// A timestamp is text wherever text is read (`as_deref`, `&str` parameters); the
/// reverse, text where a timestamp belongs, does not compile.
impl std::ops::Deref for Timestamp {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Timestamp {
    /// `at`, formatted.
    pub fn at(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self(crate::scim::time::format(at))
    }

    /// The instant, when the stored text is one.
    pub fn instant(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        crate::scim::time::parse(&self.0)
    }
}
