//! `serve`: builds the [`State`] and the route table, loads the TLS
//! configuration, starts the job retention sweeper and runs the HTTP
//! server until a stop signal.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::http::server;
use crate::http::tls::Tls;
use crate::state::State;
use crate::{api, audit, helper, jobs, keys, metrics, procs};

/// How often finished jobs past `output_retention` are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Runs the gateway; the error is one line for stderr.
pub fn serve(cfg: Config) -> Result<(), String> {
    // First: a trail that is not the gateway's alone stops the start
    // before any thread or socket exists.
    let audit = audit::Audit::open(cfg.audit_log.as_ref()).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let jobs = jobs::JobStore::new(&cfg.state_dir)
        .map_err(|e| format!("{}: {e}", cfg.state_dir.display()))?;
    // The hub's inotify reader is a task of this runtime.
    let _runtime = rt.enter();
    let hub = jobs::hub::Hub::start();
    let metrics = Arc::new(
        metrics::Metrics::with_groups(cfg.groups.as_ref().map(|g| g.max_groups))
            .map_err(|e| e.to_string())?,
    );
    let helper = helper::Helper::new(cfg.helper_socket.clone()).with_metrics(metrics.clone());
    // Before the first request: a job of an earlier run is still someone's.
    let owners = jobs::owners::Owners::new();
    owners.seed(&jobs.records());
    jobs::events::spawn(
        cfg.helper_socket.clone(),
        jobs.clone(),
        helper.clone(),
        hub.clone(),
        owners.clone(),
        Duration::from_secs(2),
    );
    let tls = match &cfg.tls {
        Some(files) => Some(Arc::new(Tls::load(files)?)),
        None => None,
    };
    let routes = api::table_with(cfg.metrics_public);
    let openapi = serde_json::to_vec(&crate::openapi::document(&routes))
        .map_err(|e| format!("encoding the OpenAPI document: {e}"))?;
    let keys = keys::KeyStore::new(cfg.keys_file.clone());
    let procs =
        Arc::new(procs::ProcReader::new(cfg.cpu_window).with_reader(cfg.reader_socket.clone()));
    let state = Arc::new(State {
        listings: api::ps::listings(procs.clone(), owners.clone()),
        bulky: Arc::new(tokio::sync::Semaphore::new(1)),
        procs,
        host_cpu: crate::host::Cpu::new(cfg.cpu_window),
        helper,
        jobs,
        owners,
        hub,
        metrics,
        openapi: openapi.into(),
        plans: Default::default(),
        cfg,
    });
    let router = Arc::new(api::hooks::router(routes, state.clone(), keys, audit));
    rt.block_on(async move {
        let signals = server::Signals::install().map_err(|e| format!("signals: {e}"))?;
        let listener = tokio::net::TcpListener::bind(state.cfg.listen)
            .await
            .map_err(|e| format!("listening on {}: {e}", state.cfg.listen))?;
        tokio::spawn(sweep_forever(state.clone()));
        server::serve(&state.cfg, router, listener, tls, signals)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Deletes expired jobs now and every [`SWEEP_EVERY`].
async fn sweep_forever(state: Arc<State>) {
    loop {
        let s = state.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let n = s.jobs.sweep(s.cfg.output_retention);
            if n > 0 {
                eprintln!("monitoreo-gateway: removed {n} expired job(s)");
            }
        })
        .await;
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}
