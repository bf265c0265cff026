//! Domain values shared by every layer: parsed newtypes (tenant slugs, user names, scopes)
//! and the records the store hands to services. Untrusted strings become these types once,
//! at the edge; after that, functions take the newtype.

mod brake;
mod ids;
mod journal;
mod names;
mod records;

pub use brake::{BrakeSettings, Threshold};
pub use ids::{ResourceId, TenantId, Timestamp};
pub use journal::{JournalEntry, JournalQuery};

pub use names::{
    ExternalId, MAX_FOLDED_NAME_BYTES, MAX_NAME_BYTES, Scope, TenantSlug, TokenName, UserName,
    check_name_length,
};
pub use records::{
    AppInfo, GroupHot, Member, Membership, NewGroup, NewUser, ResourceKind, StoredGroup,
    StoredUser, Tenant, TokenInfo, UserHot,
};
