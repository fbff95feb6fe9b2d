//! The API: the route table ([`table_with`]) and one module per
//! resource. Each handler is a small `async fn(&Ctx, TypedRequest) ->
//! Result<Reply, ApiError>`; authentication, scope, query and body checks,
//! audit and the error envelope are the router's (`http::router`), not
//! theirs. What a request is about is known here: its context
//! ([`ctx::Ctx`]) and the router's hooks that write it down
//! ([`hooks`]).

pub mod actions;
pub mod console;
pub mod ctx;
pub mod health;
pub mod hooks;
pub mod host;
pub mod jobs;
pub mod metrics;
pub mod named;
pub mod ps;
pub mod renice;
pub mod run;
pub mod signal;
pub mod target;
pub mod users;
pub mod whoami;

pub use ctx::Ctx;

use crate::error::ApiError;
use crate::http::router::route;
use crate::http::router::Route;
use crate::keys::Scope;

/// Every route: method and path, operationId, scope, whether audited,
/// handler and request type. `metrics_public` (the configuration key)
/// opens `/metrics` to requests without a key.
pub fn table_with(metrics_public: bool) -> Vec<Route<Ctx>> {
    use crate::http::extract::Nothing;
    use Scope::{Exec, Read, Renice, Signal};
    let metrics_scope = (!metrics_public).then_some(Scope::Metrics);
    vec![
        route!(GET "/api/ps", "listProcesses", Some(Read), audited: false,
            ps::list, ps::ListRequest),
        route!(POST "/api/ps", "runCommand", Some(Exec), audited: true,
            run::start, jobs::RunRequest),
        route!(DELETE "/api/ps", "signalProcess", Some(Signal), audited: true,
            signal::send, signal::SignalRequest),
        route!(PATCH "/api/ps", "reniceProcess", Some(Renice), audited: true,
            renice::set, renice::ReniceRequest),
        route!(POST "/api/actions/plan", "planAction", any_key, audited: true,
            actions::plan, actions::PlanRequest),
        route!(POST "/api/actions/{plan_id}", "executeAction", any_key, audited: true,
            actions::execute, actions::ExecuteRequest),
        route!(GET "/api/ps/output/{id}", "getCommandOutput", Some(Exec), audited: false,
            run::output, run::OutputRequest),
        route!(GET "/api/ps/{pid}", "getProcess", Some(Read), audited: false,
            ps::one, ps::OneRequest),
        route!(POST "/api/jobs", "createJob", Some(Exec), audited: true,
            jobs::create, jobs::RunRequest),
        route!(GET "/api/jobs", "listJobs", Some(Exec), audited: false,
            jobs::list, jobs::ListRequest),
        route!(GET "/api/jobs/{id}", "getJob", Some(Exec), audited: false,
            jobs::get, jobs::GetRequest),
        route!(DELETE "/api/jobs/{id}", "deleteJob", Some(Exec), audited: true,
            jobs::delete, jobs::IdRequest),
        route!(GET "/api/jobs/{id}/stdout", "getJobStdout", Some(Exec), audited: false,
            jobs::stdout, jobs::OutputRequest),
        route!(GET "/api/jobs/{id}/stderr", "getJobStderr", Some(Exec), audited: false,
            jobs::stderr, jobs::OutputRequest),
        route!(GET "/api/jobs/{id}/events", "followJob", Some(Exec), audited: false,
            jobs::events, jobs::EventsRequest),
        route!(GET "/api/users", "listUsers", Some(Read), audited: false,
            users::list, Nothing),
        route!(GET "/api/users/{username}/ps", "listUserProcesses", Some(Read), audited: false,
            users::processes, users::UserProcessesRequest),
        route!(GET "/api/host", "getHost", Some(Read), audited: false,
            host::get, host::HostRequest),
        route!(GET "/api/whoami", "whoAmI", any_key, audited: false,
            whoami::get, Nothing),
        Route {
            // Anyone may ask; a key with read is told more.
            key_optional: true,
            ..route!(GET "/healthz", "getHealth", Some(Read), audited: false,
                health::healthz, Nothing)
        },
        route!(GET "/api/openapi.json", "getOpenApiDocument", None, audited: false,
            health::openapi, Nothing),
        route!(GET "/metrics", "getMetrics", metrics_scope, audited: false,
            metrics::scrape, Nothing),
        route!(GET "/", "getConsole", None, audited: false,
            console::page, console::PageRequest),
        route!(GET "/console/{file}", "getConsoleFile", None, audited: false,
            console::file, console::FileRequest),
    ]
}

/// Runs blocking work (/proc, files, the helper's socket) off the async
/// threads, as the current request (a helper call made there carries its
/// id).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(crate::reqid::carry(f))
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

/// The table with `/metrics` behind its scope, as the tests read it.
#[cfg(test)]
pub fn table() -> Vec<Route<Ctx>> {
    table_with(false)
}
