//! The request journal's values (DESIGN 20): an entry as `http::journal` captures it and
//! the store keeps it, and what a listing asks for.

use super::{TenantId, Timestamp};

/// One journaled request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JournalEntry {
    pub id: String,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub at: Timestamp,
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub status: i32,
    #[serde(rename = "scimType", skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    #[serde(rename = "durationMs")]
    pub duration_ms: i64,
    #[serde(rename = "requestId")]
    pub request_id: String,
    /// The name of the token the request came with.
    #[serde(rename = "tokenName")]
    pub token_name: String,
    /// The resource the request was about (`Users/{id}`, `Groups/{id}`), when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The redacted request body (JSON text), or a note saying why it is not kept.
    #[serde(rename = "requestBody", skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(rename = "responseBody", skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

/// What a listing of a tenant's journal asks for.
#[derive(Debug, Default, Clone)]
pub struct JournalQuery<'a> {
    /// Only the entry with this id.
    pub id: Option<&'a str>,
    /// Entries older than this entry id (the previous page's last).
    pub before: Option<&'a str>,
    /// Entries at or after this instant.
    pub since: Option<&'a str>,
    /// Status from (inclusive) and to (exclusive), e.g. 400 and 500 for `4xx`.
    pub status: Option<(i32, i32)>,
    pub method: Option<&'a str>,
    pub limit: u64,
}
