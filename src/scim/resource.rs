//! Wire types shared by the resource endpoints: `meta`, ETags and list responses.

use serde::Serialize;
use serde_json::Value;

use super::schema::LIST_RESPONSE_URN;

/// The weak ETag of a resource version (RFC 7644 §3.14); `meta.version` carries the same.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// `GET` list response (RFC 7644 §3.4.2), of resources `R` (JSON values, or bodies that
/// write parts of themselves from rows, like a group's members).
#[derive(Debug, Serialize)]
pub struct ListResponse<R = Value> {
    pub schemas: [&'static str; 1],
    #[serde(rename = "totalResults")]
    pub total_results: u64,
    #[serde(rename = "itemsPerPage")]
    pub items_per_page: u64,
    /// Absent when paging by cursor (RFC 9865).
    #[serde(rename = "startIndex", skip_serializing_if = "Option::is_none")]
    pub start_index: Option<u64>,
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(rename = "previousCursor", skip_serializing_if = "Option::is_none")]
    pub previous_cursor: Option<String>,
    #[serde(rename = "Resources")]
    pub resources: Vec<R>,
}

impl<R> ListResponse<R> {
    pub fn new(total_results: u64, start_index: u64, resources: Vec<R>) -> Self {
        Self {
            schemas: [LIST_RESPONSE_URN],
            total_results,
            items_per_page: resources.len() as u64,
            start_index: Some(start_index),
            next_cursor: None,
            previous_cursor: None,
            resources,
        }
    }

    /// The same page with each resource turned into an `S`.
    pub fn map<S>(self, f: impl FnMut(R) -> S) -> ListResponse<S> {
        ListResponse {
            schemas: self.schemas,
            total_results: self.total_results,
            items_per_page: self.items_per_page,
            start_index: self.start_index,
            next_cursor: self.next_cursor,
            previous_cursor: self.previous_cursor,
            resources: self.resources.into_iter().map(f).collect(),
        }
    }
}

/// Paging parameters after RFC 7644 §3.4.2.4's rules: `startIndex` below 1 means 1, a
/// negative `count` means 0, and `count` is capped at the server's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub start_index: u64,
    pub count: u64,
}

impl Page {
    pub const DEFAULT_COUNT: u64 = 100;
    pub const MAX_COUNT: u64 = 1000;

    pub fn new(start_index: Option<i64>, count: Option<i64>) -> Self {
        let start_index = start_index.filter(|s| *s >= 1).unwrap_or(1) as u64;
        let count = match count {
            None => Self::DEFAULT_COUNT,
            Some(c) if c < 0 => 0,
            Some(c) => (c as u64).min(Self::MAX_COUNT),
        };
        Self { start_index, count }
    }

    pub fn offset(&self) -> u64 {
        self.start_index - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_follows_rfc_7644_3_4_2_4() {
        assert_eq!(
            Page::new(None, None),
            Page {
                start_index: 1,
                count: 100
            }
        );
        assert_eq!(
            Page::new(Some(0), Some(-3)),
            Page {
                start_index: 1,
                count: 0
            }
        );
        assert_eq!(Page::new(Some(5), Some(5000)).count, 1000);
        assert_eq!(Page::new(Some(5), None).offset(), 4);
    }
}
