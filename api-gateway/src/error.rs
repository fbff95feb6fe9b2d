//! The one error type of the HTTP layer and its single mapping to a
//! response: status, `{"result":"error","message":..,"code":..}`, and
//! `WWW-Authenticate: Bearer` on 401. Every refusal goes through here so a
//! known condition is never a 500.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Response, StatusCode};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("refused by the helper's {rule} rule: {detail}")]
    PolicyDenied { rule: String, detail: String },
    #[error("pid {0} is a thread of another process, not a process; nothing was done")]
    NotAProcess(i32),
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("the process changed identity (pid reused); nothing was done")]
    Conflict,
    #[error("request body over {0} bytes")]
    PayloadTooLarge(usize),
    #[error("helper busy: too many jobs running")]
    Busy,
    #[error("helper unreachable: {0}")]
    Unavailable(String),
    #[error("helper error: {0}")]
    BadGateway(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PolicyDenied { .. } => StatusCode::FORBIDDEN,
            ApiError::NotAProcess(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Busy => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable snake_case code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::PolicyDenied { .. } => "policy_denied",
            ApiError::NotAProcess(_) => "not_a_process",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict => "identity_changed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Busy => "busy",
            ApiError::Unavailable(_) => "helper_unavailable",
            ApiError::BadGateway(_) => "helper_error",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The HTTP response; the only place errors become bytes.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = serde_json::json!({
            "result": "error",
            "message": self.to_string(),
            "code": self.code(),
        });
        let mut resp = json_response(self.status(), &body);
        let h = resp.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            ApiError::MethodNotAllowed(allow) => {
                h.insert(header::ALLOW, header::HeaderValue::from_static(allow));
            }
            ApiError::Unavailable(_) => {
                h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Full<Bytes>> {
    bytes_response(status, Bytes::from(v.to_string()))
}

/// A response whose body is already JSON bytes.
pub fn bytes_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}
