//! The API's errors: one enum, a closed table of codes and statuses, one JSON
//! shape `{"code": "...", "message": "..."}` for every endpoint.
//!
//! Policy (as in crates.io's error module): handlers return [`ApiError`];
//! errors a client caused say what to do; server errors answer a generic
//! message and log the whole cause chain, so internals never reach a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use touchpoint_store::import::ImportError;
use touchpoint_store::StoreError;

/// Every error the API answers.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (or not the JSON expected).
    #[error("{0}")]
    InvalidJson(String),
    /// A parameter or field has a wrong value.
    #[error("{0}")]
    InvalidRequest(String),
    /// An uploaded file is not in the format named.
    #[error("{0}")]
    InvalidFile(String),
    /// No key, or an unknown or revoked key.
    #[error("{0}")]
    Unauthorized(String),
    /// The key's role may not use this endpoint.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on this path.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// The body or an event is over the size limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many requests in flight; retry after the given seconds.
    #[error("the server is busy; retry after {retry_after} s")]
    Overloaded {
        /// Seconds.
        retry_after: u64,
    },
    /// The server is shutting down.
    #[error("the server is shutting down; retry shortly")]
    ShuttingDown,
    /// An Idempotency-Key was reused with a different request (any write endpoint).
    #[error("{0}")]
    IdempotencyKeyMismatch(String),
    /// A spend asks for more points than are available.
    #[error("{0}")]
    InsufficientPoints(String),
    /// The packaging code was claimed already.
    #[error("this code was claimed already")]
    CodeAlreadyClaimed,
    /// No such packaging code (or its batch was voided or expired).
    #[error("unknown code; check it and try again")]
    UnknownCode,
    /// Not a code, or a mistyped one (its check character does not match).
    #[error("{0}")]
    InvalidCode(String),
    /// Too many wrong codes in the last 60 minutes; retry after the given seconds.
    #[error("too many wrong codes; retry after {retry_after} s")]
    TooManyAttempts {
        /// Seconds.
        retry_after: u64,
    },
    /// A coupon gives nothing for this member and basket; the refusal says why.
    #[error("{0}")]
    Coupon(touchpoint_core::coupons::Refusal),
    /// One of the codes of a promotions evaluation gives nothing: which
    /// code, and why (the same codes as [`ApiError::Coupon`]).
    #[error("coupon {code}: {refusal}")]
    CouponCode {
        /// The code.
        code: String,
        /// Why.
        refusal: touchpoint_core::coupons::Refusal,
    },
    /// The reward has no stock left.
    #[error("this reward is out of stock")]
    OutOfStock,
    /// The reward cannot be redeemed on this channel or now.
    #[error("{0}")]
    RewardUnavailable(String),
    /// The member reached the reward's limit per member.
    #[error("{0}")]
    RewardLimitReached(String),
    /// The hold was captured, released or lapsed.
    #[error("{0}")]
    HoldNotActive(String),
    /// A saved segment of this name exists.
    #[error("{0}")]
    SegmentExists(String),
    /// An expression of the segment language does not parse; the body adds
    /// `line`, `column` and `suggestion`.
    #[error("expression {0}")]
    InvalidExpression(touchpoint_core::segments::ParseError),
    /// No member has this invite code.
    #[error("{0}")]
    UnknownInviteCode(String),
    /// The attribution was refused (recorded with its reason); the body
    /// adds `reason` and `attribution`.
    #[error("{message}")]
    ReferralRefused {
        /// `self_referral`, `not_new`, `already_attributed`.
        reason: String,
        /// What happened.
        message: String,
        /// The attribution as recorded.
        attribution: Box<touchpoint_store::referrals::Attribution>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is the server's fault.
    #[error("{0}")]
    Internal(String),
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::File { .. } => ApiError::InvalidFile(e.to_string()),
            ImportError::Store(s) => ApiError::Store(s),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    /// The closed table: (code, status) of each error.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::InvalidJson(_) => ("invalid_json", StatusCode::BAD_REQUEST),
            ApiError::InvalidRequest(_) => ("invalid_request", StatusCode::BAD_REQUEST),
            ApiError::InvalidFile(_) => ("invalid_file", StatusCode::BAD_REQUEST),
            ApiError::Unauthorized(_) => ("unauthorized", StatusCode::UNAUTHORIZED),
            ApiError::Forbidden(_) => ("forbidden", StatusCode::FORBIDDEN),
            ApiError::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
            ApiError::MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            ApiError::PayloadTooLarge(_) => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::Overloaded { .. } => ("overloaded", StatusCode::TOO_MANY_REQUESTS),
            ApiError::ShuttingDown => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::IdempotencyKeyMismatch(_) => {
                ("idempotency_key_mismatch", StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::InsufficientPoints(_) => ("insufficient_points", StatusCode::CONFLICT),
            ApiError::CodeAlreadyClaimed => ("code_already_claimed", StatusCode::CONFLICT),
            ApiError::UnknownCode => ("unknown_code", StatusCode::NOT_FOUND),
            ApiError::InvalidCode(_) => ("invalid_code", StatusCode::BAD_REQUEST),
            ApiError::TooManyAttempts { .. } => {
                ("too_many_attempts", StatusCode::TOO_MANY_REQUESTS)
            }
            ApiError::Coupon(r) | ApiError::CouponCode { refusal: r, .. } => {
                use touchpoint_core::coupons::Refusal;
                let status = match r {
                    Refusal::UnknownCode => StatusCode::NOT_FOUND,
                    Refusal::AlreadyRedeemed | Refusal::LimitReached { .. } => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                (r.code(), status)
            }
            ApiError::OutOfStock => ("out_of_stock", StatusCode::CONFLICT),
            ApiError::RewardUnavailable(_) => {
                ("reward_unavailable", StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::RewardLimitReached(_) => ("reward_limit_reached", StatusCode::CONFLICT),
            ApiError::HoldNotActive(_) => ("hold_not_active", StatusCode::CONFLICT),
            ApiError::SegmentExists(_) => ("segment_exists", StatusCode::CONFLICT),
            ApiError::InvalidExpression(_) => {
                ("invalid_expression", StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::UnknownInviteCode(_) => ("unknown_invite_code", StatusCode::NOT_FOUND),
            ApiError::ReferralRefused { .. } => ("referral_refused", StatusCode::CONFLICT),
            ApiError::Store(_) | ApiError::Internal(_) => {
                ("internal", StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

/// Every code the API can answer, with its status, for the documentation.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "invalid_json",
        400,
        "the body is not valid JSON, or not the JSON object expected",
    ),
    (
        "invalid_request",
        400,
        "a parameter or field has a wrong value; the message names it and the accepted form",
    ),
    (
        "invalid_file",
        400,
        "an uploaded file is not in the format named",
    ),
    ("unauthorized", 401, "no key, or an unknown or revoked key"),
    ("forbidden", 403, "the key's role may not use this endpoint"),
    ("not_found", 404, "no such resource or path"),
    (
        "method_not_allowed",
        405,
        "the method is not allowed on this path",
    ),
    (
        "payload_too_large",
        413,
        "the body or one event is over the size limit",
    ),
    (
        "overloaded",
        429,
        "too many requests in flight; retry after the Retry-After header's seconds",
    ),
    (
        "idempotency_key_mismatch",
        422,
        "an Idempotency-Key was reused with a different request (method, path or body); use a new key for a new request",
    ),
    (
        "insufficient_points",
        409,
        "a spend or adjustment asks for more points than are available",
    ),
    ("code_already_claimed", 409, "the packaging code was claimed already"),
    ("unknown_code", 404, "no such packaging code (or its batch was voided or expired)"),
    (
        "invalid_code",
        400,
        "not a code, or a mistyped one (its check character does not match)",
    ),
    (
        "too_many_attempts",
        429,
        "too many wrong codes in the last 60 minutes for this person or client; retry after the Retry-After header's seconds",
    ),
    ("unknown_coupon", 404, "no coupon has this code"),
    (
        "coupon_not_yet_valid",
        422,
        "the coupon's validity window has not started",
    ),
    ("coupon_expired", 422, "the coupon's validity window has ended"),
    (
        "coupon_wrong_member",
        422,
        "the coupon is bound to another member",
    ),
    (
        "coupon_out_of_scope",
        422,
        "the channel, or no line of the basket, is in the coupon's scope (channels, brands, categories, SKUs)",
    ),
    (
        "coupon_below_minimum_spend",
        422,
        "the eligible amount is below the coupon's minimum spend",
    ),
    (
        "coupon_limit_reached",
        409,
        "a public code's total limit or limit per member is used up",
    ),
    (
        "coupon_already_redeemed",
        409,
        "the single-use coupon was redeemed already",
    ),
    ("out_of_stock", 409, "the reward has no stock left"),
    (
        "reward_unavailable",
        422,
        "the reward cannot be redeemed on this channel, or not now",
    ),
    (
        "reward_limit_reached",
        409,
        "the member redeemed this reward as often as it allows",
    ),
    (
        "hold_not_active",
        409,
        "the hold was captured, released or lapsed already",
    ),
    (
        "segment_exists",
        409,
        "a saved segment has this name; choose another name",
    ),
    (
        "invalid_expression",
        422,
        "the segment expression does not parse; the body adds `line`, `column` (from 1) and `suggestion` (the name probably meant, or null)",
    ),
    ("unknown_invite_code", 404, "no member has this invite code"),
    (
        "referral_refused",
        409,
        "the attribution was refused and recorded so: the body adds `reason` (`self_referral`: the friend is the advocate or shares or is linked to one of the advocate's identifiers; `not_new`: the friend was known before; `already_attributed`: the friend came with another code first) and `attribution`",
    ),
    ("internal", 500, "the server failed; the log has the cause"),
    ("unavailable", 503, "the server is shutting down; retry"),
];

/// The error body.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// A code from the closed table.
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

/// The error and its cause chain, for the log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %chain(&self), "request failed");
            "internal error; the server log has the details".to_string()
        } else {
            self.to_string()
        };
        let mut resp = match &self {
            // The one shape, with the position of the mistake added.
            ApiError::InvalidExpression(e) => (
                status,
                axum::Json(serde_json::json!({
                    "code": code,
                    "message": message,
                    "line": e.line,
                    "column": e.col,
                    "suggestion": e.suggestion,
                })),
            )
                .into_response(),
            ApiError::ReferralRefused {
                reason,
                attribution,
                ..
            } => (
                status,
                axum::Json(serde_json::json!({
                    "code": code,
                    "message": message,
                    "reason": reason,
                    "attribution": attribution,
                })),
            )
                .into_response(),
            _ => (
                status,
                axum::Json(ErrorBody {
                    code: code.to_string(),
                    message,
                }),
            )
                .into_response(),
        };
        if let ApiError::Overloaded { retry_after } | ApiError::TooManyAttempts { retry_after } =
            self
        {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Map axum's extractor rejections to the API's error shape.
pub(crate) fn rejection(r: impl std::fmt::Display, what: &str) -> ApiError {
    ApiError::InvalidRequest(format!("{what}: {r}"))
}
