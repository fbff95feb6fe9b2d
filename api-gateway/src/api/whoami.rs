//! `GET /api/whoami`: the key's own name and scopes, for a client (the
//! console) that shows only what the key may do. It needs a valid key but
//! no scope, so that a key without `read` can still ask.

use hyper::StatusCode;

use super::ctx::Ctx;
use crate::error::ApiError;
use crate::http::extract::Nothing;
use crate::reply::{Envelope, Reply};

/// `{"result":"ok","key":NAME,"scopes":[...]}`.
pub async fn get(cx: &Ctx, _: Nothing) -> Result<Reply, ApiError> {
    let caller = cx.caller()?;
    Ok(Envelope::ok()
        .member("key", &caller.name)
        .member("scopes", &caller.scopes)
        .finish(StatusCode::OK))
}
