//! `serve`: builds the [`State`] and the route table, starts the job
//! retention sweeper and runs the HTTP server until a stop signal.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::http::{router::Router, server};
use crate::state::State;
use crate::{api, audit, clock, helper, jobs, keys, metrics, procs};

/// How often finished jobs past `job_retention` are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Runs the gateway; the error is one line for stderr.
pub fn serve(cfg: Config) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let jobs = jobs::JobStore::new(&cfg.state_dir)
        .map_err(|e| format!("{}: {e}", cfg.state_dir.display()))?;
    let audit =
        audit::Audit::open(cfg.audit_log.as_ref()).map_err(|e| format!("audit log: {e}"))?;
    let router = Router::new(api::table_with(cfg.metrics_public));
    let metrics = Arc::new(metrics::Metrics::new(clock::now_ms()).map_err(|e| e.to_string())?);
    let openapi = serde_json::to_vec(&crate::openapi::document(router.routes()))
        .map_err(|e| format!("encoding the OpenAPI document: {e}"))?;
    let procs = Arc::new(procs::ProcReader::new(cfg.cpu_window));
    let state = Arc::new(State {
        keys: keys::KeyStore::new(cfg.keys_file.clone()),
        listings: api::ps::listings(procs.clone()),
        procs,
        helper: helper::Helper::new(cfg.helper_socket.clone()).with_metrics(metrics.clone()),
        jobs,
        audit,
        metrics,
        openapi: openapi.into(),
        cfg,
    });
    let router = Arc::new(router);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(state.cfg.listen)
            .await
            .map_err(|e| format!("listening on {}: {e}", state.cfg.listen))?;
        tokio::spawn(sweep_forever(state.clone()));
        server::serve(state, router, listener)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Deletes expired jobs now and every [`SWEEP_EVERY`].
async fn sweep_forever(state: Arc<State>) {
    loop {
        let s = state.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let n = s.jobs.sweep(s.cfg.job_retention);
            if n > 0 {
                eprintln!("monitoreo-gateway: removed {n} expired job(s)");
            }
        })
        .await;
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}
