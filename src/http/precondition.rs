//! `If-Match` and `If-None-Match` (RFC 7644 §3.14, compared weakly) and the `attributes`
//! / `excludedAttributes` query parameters as far as they decide what is read.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::ApiError;
use crate::scim::projection::{self, Projection};
use crate::service::etag_matches;
use crate::service::groups::Members;

#[derive(Debug, Default)]
pub struct Preconditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

impl Preconditions {
    /// A `304 Not Modified` when `If-None-Match` names the current version.
    pub fn not_modified(&self, version: i64, etag: &str) -> Option<HttpResponse> {
        self.if_none_match
            .as_deref()
            .filter(|h| etag_matches(h, version))
            .map(|_| {
                HttpResponse::NotModified()
                    .insert_header((header::ETAG, etag))
                    .finish()
            })
    }
}

impl FromRequest for Preconditions {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let get = |name| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        ready(Ok(Preconditions {
            if_match: get(header::IF_MATCH),
            if_none_match: get(header::IF_NONE_MATCH),
        }))
    }
}

/// List and read parameters; any other query parameter is ignored (Entra appends its own).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReadParams {
    pub filter: Option<String>,
    #[serde(rename = "startIndex")]
    pub start_index: Option<String>,
    pub count: Option<String>,
    #[serde(default, deserialize_with = "attributes")]
    pub attributes: Option<String>,
    #[serde(
        rename = "excludedAttributes",
        default,
        deserialize_with = "excluded_attributes"
    )]
    pub excluded_attributes: Option<String>,
    #[serde(rename = "sortBy")]
    pub sort_by: Option<String>,
    #[serde(rename = "sortOrder")]
    pub sort_order: Option<String>,
    /// RFC 9865: present (even empty) asks for cursor paging.
    pub cursor: Option<String>,
}

/// `attributes`, refused when it names more than [`projection::MAX_NAMES`] attributes.
fn attributes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    names("attributes", d)
}

/// `excludedAttributes`, refused like `attributes`.
fn excluded_attributes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    names("excludedAttributes", d)
}

fn names<'de, D: serde::Deserializer<'de>>(
    parameter: &str,
    d: D,
) -> Result<Option<String>, D::Error> {
    let list = Option::<String>::deserialize(d)?;
    if let Some(list) = &list {
        projection::check_names(parameter, list).map_err(|e| serde::de::Error::custom(e.detail))?;
    }
    Ok(list)
}

impl ReadParams {
    /// The list query of these parameters.
    pub fn query(&self) -> crate::service::ListQuery {
        crate::service::ListQuery {
            filter: self.filter.clone(),
            sort_by: self.sort_by.clone(),
            sort_order: self.sort_order.clone(),
        }
    }

    /// `attributes` / `excludedAttributes`.
    pub fn projection(&self) -> Projection {
        Projection::new(
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }

    /// Whether group members are wanted in the response (never read otherwise).
    pub fn members(&self) -> Members {
        if self.projection().wants("members") {
            Members::Include
        } else {
            Members::Exclude
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_left_out_when_excluded_or_not_asked_for() {
        let params = |attributes: Option<&str>, excluded: Option<&str>| ReadParams {
            attributes: attributes.map(str::to_owned),
            excluded_attributes: excluded.map(str::to_owned),
            ..Default::default()
        };
        assert_eq!(params(None, None).members(), Members::Include);
        assert_eq!(params(None, Some("members")).members(), Members::Exclude);
        assert_eq!(
            params(
                None,
                Some("urn:ietf:params:scim:schemas:core:2.0:Group:members")
            )
            .members(),
            Members::Exclude
        );
        assert_eq!(
            params(Some("displayName"), None).members(),
            Members::Exclude
        );
        assert_eq!(
            params(Some("displayName, Members"), None).members(),
            Members::Include
        );
    }
}
