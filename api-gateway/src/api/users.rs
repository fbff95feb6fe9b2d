//! Users: `GET /api/users` (who runs processes) and
//! `GET /api/users/{username}/ps` (their processes). Every name the first
//! lists, the second takes: a passwd name, or the decimal uid for a uid
//! without a passwd entry.

use serde::Serialize;

use super::blocking;
use super::ctx::Ctx;
use super::ps::{listing, Listing};
use crate::error::ApiError;
use crate::http::extract::{FromInput, Input, Nothing, Param};
use crate::reply::{Envelope, Reply};

/// One entry of `/api/users`.
#[derive(Debug, Serialize)]
pub struct User {
    /// Accepted back by `/api/users/{username}/ps` and `?user=`.
    pub username: String,
    pub uid: u32,
    /// Processes whose real uid this is, in every state (the old
    /// service's `running`: the user's processes, not those in state R).
    pub running: usize,
}

pub async fn list(cx: &Ctx, _: Nothing) -> Result<Reply, ApiError> {
    let state = cx.state.clone();
    let users: Vec<User> = blocking(move || Ok(state.procs.users()?))
        .await?
        .into_iter()
        .map(|u| User {
            username: u.name,
            uid: u.uid,
            running: u.running,
        })
        .collect();
    Ok(Envelope::ok()
        .member("users", &users)
        .finish(hyper::StatusCode::OK))
}

/// `GET /api/users/{username}/ps`.
#[derive(Debug)]
pub struct UserProcessesRequest {
    pub username: String,
    pub listing: Listing,
}

impl FromInput for UserProcessesRequest {
    const QUERY: &'static [Param] = &Listing::QUERY;

    fn from_input(input: &Input) -> Result<UserProcessesRequest, ApiError> {
        let username = input.path("username")?.to_string();
        if username.is_empty() {
            return Err(ApiError::InvalidParameter("username is empty".into()));
        }
        Ok(UserProcessesRequest {
            username,
            listing: Listing::from_input(input)?,
        })
    }
}

pub async fn processes(cx: &Ctx, req: UserProcessesRequest) -> Result<Reply, ApiError> {
    listing(cx, req.listing, Some(req.username)).await
}
