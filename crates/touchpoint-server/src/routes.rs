//! The route table: every endpoint once, with the documentation the OpenAPI
//! document is built from, so the two cannot drift apart.
//!
//! To add endpoints (reports, CLV, ...): write a module with a
//! `pub(crate) fn routes() -> Vec<Route>` and add it to [`all`]. The router,
//! the OpenAPI document and its checked-in copy (`docs/openapi.json`, which a
//! test compares) follow.

use axum::routing::MethodRouter;
use axum::Router;

use crate::AppState;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key needed.
    Public,
    /// Any valid key.
    AnyKey,
    /// An ingest (write) key or an admin key, in the header or the body.
    Ingest,
    /// An admin or analyst key.
    Reader,
    /// An admin key.
    Admin,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    /// In the path.
    Path,
    /// In the query string.
    Query,
    /// A header.
    Header,
}

/// A parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Name.
    pub name: &'static str,
    /// Where.
    pub location: In,
    /// `string` or `integer`.
    pub ty: &'static str,
    /// Required.
    pub required: bool,
    /// What it is.
    pub description: &'static str,
}

/// A shorthand for a parameter.
pub const fn param(
    name: &'static str,
    location: In,
    ty: &'static str,
    required: bool,
    description: &'static str,
) -> Param {
    Param {
        name,
        location,
        ty,
        required,
        description,
    }
}

/// The documentation of one endpoint.
#[derive(Debug, Clone)]
pub struct Doc {
    /// `get`, `post`, ...
    pub method: &'static str,
    /// The path, with `{name}` segments.
    pub path: &'static str,
    /// Group (an OpenAPI tag).
    pub tag: &'static str,
    /// One line.
    pub summary: &'static str,
    /// More.
    pub description: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Parameters.
    pub params: Vec<Param>,
    /// Request body media types and a description, if it takes one.
    pub body: Option<(&'static [&'static str], &'static str)>,
    /// Media type and description of the success response.
    pub response: (&'static str, &'static str),
}

/// An endpoint: its documentation and its handler.
pub struct Route {
    /// Documentation.
    pub doc: Doc,
    /// Handler.
    pub handler: MethodRouter<AppState>,
}

/// Every endpoint, in document order.
pub fn all() -> Vec<Route> {
    let mut v = Vec::new();
    v.extend(crate::api::system_routes());
    v.extend(crate::ingest::routes());
    v.extend(crate::api::routes());
    v.extend(crate::loyalty_api::routes());
    v.extend(crate::rewards_api::routes());
    v.extend(crate::referrals_api::routes());
    v.extend(crate::promotions_api::routes());
    v.extend(crate::acquisition_api::routes());
    v.extend(crate::segments_api::routes());
    v.extend(crate::campaigns_api::routes());
    v.extend(crate::unsubscribe::routes());
    v
}

/// The documentation of every endpoint.
pub fn docs() -> Vec<Doc> {
    all().into_iter().map(|r| r.doc).collect()
}

pub(crate) fn build_router() -> Router<AppState> {
    let mut by_path: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for r in all() {
        match by_path.iter_mut().find(|(p, _)| *p == r.doc.path) {
            Some((_, m)) => {
                let merged = std::mem::take(m).merge(r.handler);
                *m = merged;
            }
            None => by_path.push((r.doc.path, r.handler)),
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (p, m)| router.route(p, m))
}
