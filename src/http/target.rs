//! What every request on one resource (`/Users/{id}`, `/Groups/{id}`) carries, extracted
//! once: the context, the authenticated tenant, the id and the preconditions.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use super::error::ApiError;
use super::precondition::{Preconditions, ReadParams};
use super::response;
use crate::domain::ResourceId;
use crate::service::Context;
use crate::service::resource::ResourceView;
use crate::telemetry::Correlation;
use crate::tenancy::auth::AuthenticatedTenant;

/// A request on one resource.
pub struct Target {
    pub ctx: web::Data<Context>,
    pub auth: AuthenticatedTenant,
    /// The `{id}` of the path.
    pub id: ResourceId,
    pub conditions: Preconditions,
    /// The request's id and trace context, for the events a write records.
    pub correlation: Option<Correlation>,
}

impl Target {
    /// The correlation, for a write.
    pub fn correlation(&self) -> Option<&Correlation> {
        self.correlation.as_ref()
    }

    /// `If-Match`, for a write.
    pub fn if_match(&self) -> Option<&str> {
        self.conditions.if_match.as_deref()
    }

    /// The answer to a read of `view`: 304 when `If-None-Match` names its version, else
    /// the representation.
    pub fn read(&self, view: ResourceView, params: &ReadParams) -> HttpResponse {
        match self.conditions.not_modified(view.version, &view.etag()) {
            Some(not_modified) => not_modified,
            None => response::view(StatusCode::OK, view, &self.auth, params),
        }
    }

    /// The answer to a write that leaves `view`.
    pub fn written(&self, view: ResourceView, params: &ReadParams) -> HttpResponse {
        response::view(StatusCode::OK, view, &self.auth, params)
    }
}

impl FromRequest for Target {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = req
            .app_data::<web::Data<Context>>()
            .cloned()
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("the service context is not registered"))
            });
        let auth = AuthenticatedTenant::extract(req).into_inner();
        // Decoded as `web::Path` decodes it (`%2F` included), the tenant first.
        let id = web::Path::<(String, String)>::extract(req)
            .into_inner()
            .map(|path| ResourceId::from(path.into_inner().1))
            .map_err(|e| ApiError::internal(anyhow::anyhow!("a resource route's path: {e}")));
        ready((|| {
            Ok(Target {
                ctx: ctx?,
                auth: auth?,
                id: id?,
                conditions: Preconditions::extract(req).into_inner()?,
                correlation: Correlation::extract(req).into_inner().ok(),
            })
        })())
    }
}
