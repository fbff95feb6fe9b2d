//! Start-up: load the policy, take the job uids against other helpers,
//! find the cgroups and the world-writable directories, bind (or take
//! systemd's socket), write the start line, and hand off to the loop.

use serde_json::json;

use crate::{cgroup, cli, log, ns, policy, server, socket, uids};

/// Runs the helper (or `--check`) with parsed arguments; the error is the
/// one line `main` prints.
pub fn run(args: cli::Args) -> Result<(), String> {
    let mut ctx = policy::Context::host(None)?;
    let gw = resolve_gateway(&args.gateway_user, &ctx);
    ctx.gateway_uid = gw.as_ref().ok().map(|g| g.0);
    let policy = policy::Policy::load(&args.policy, &ctx).map_err(|e| e.to_string())?;
    if args.check {
        if let Err(e) = &gw {
            println!("warning: {e}; the run identity was not checked against the gateway user");
        }
        for w in &policy.warnings {
            println!("warning: {w}");
        }
        if let Some(r) = policy.job_range() {
            // Information, not a failure: the helper this policy is for
            // holds its own range while it runs.
            match uids::UidLocks::probe(std::path::Path::new(uids::LOCK_DIR), &r) {
                Ok(()) => println!(
                    "job uids {}-{}: free (no running helper holds them)",
                    r.start(),
                    r.end()
                ),
                Err(e) => {
                    println!("note: {e} (expected if that helper is the one this policy is for)")
                }
            }
        }
        let (memory, pids) =
            cgroup::mechanisms(cgroup::CgroupRoot::discover(args.cgroup_root.as_deref()).as_ref());
        println!("job limits: memory by {memory}; processes by {pids}");
        println!("policy ok: {}", policy.summary());
        return Ok(());
    }
    let gw = gw?;
    let signals = server::block_signals().map_err(|e| format!("signals: {e}"))?;
    for w in &policy.warnings {
        log::event("policy_warning", &[("warning", json!(w))]);
    }
    let shared = ns::discover();
    let mut locks = None;
    server::lock_range(&mut locks, &policy)?;
    let cgroups = cgroup::CgroupRoot::discover(args.cgroup_root.as_deref());
    let (memory_by, pids_by) = cgroup::mechanisms(cgroups.as_ref());
    let containment = match &cgroups {
        Some(c) => {
            let stale = c.remove_stale();
            if stale > 0 {
                log::event("stale_cgroups_removed", &[("count", json!(stale))]);
            }
            let on = c.controllers();
            json!({
                "mode": "cgroup",
                "cgroup": c.path().display().to_string(),
                "controllers": {"memory": on.memory, "pids": on.pids, "cpu": on.cpu},
                "limits": {"memory": memory_by, "pids": pids_by},
                "note": "where a controller is off, RLIMIT_AS and the per-job RLIMIT_NPROC hold",
            })
        }
        None => json!({
            "mode": "pgid",
            "note": "no writable cgroup v2 with cgroup.kill: a job is killed by process group, \
                     and with per-job uids by a sweep of its uid when its shell ends",
        }),
    };
    let listener = socket::listen(&args.socket, gw.1)
        .map_err(|e| format!("{}: {e}", args.socket.display()))?;
    log::event(
        "started",
        &[
            ("socket", json!(args.socket.display().to_string())),
            ("gateway_uid", json!(gw.0)),
            ("containment", containment),
            (
                "job_namespaces",
                json!({
                    "private_tmpfs": shared.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
                    "note": "jobs with a uid of their own: new mount and IPC namespaces, every other mount read-only",
                }),
            ),
            ("policy", json!(policy.summary())),
        ],
    );
    let created = listener.created.clone();
    let mut server = server::Server::new(listener, policy, args, gw.0, cgroups, (shared, locks));
    let result = server.run(signals).map_err(|e| e.to_string());
    if let Some(p) = created {
        let _ = std::fs::remove_file(p);
    }
    result
}

/// (uid, primary gid) of `--gateway-user`, a name or a number, from
/// `/etc/passwd` as every user the helper names. An unnamed uid's group is
/// the gid of the same number (the socket's group).
fn resolve_gateway(user: &str, ctx: &policy::Context) -> Result<(u32, u32), String> {
    let by_uid = user.parse::<u32>().ok();
    let found = ctx
        .accounts
        .iter()
        .find(|a| by_uid.map_or(a.name == user, |uid| a.uid == uid));
    match (found, by_uid) {
        (Some(a), _) => Ok((a.uid, a.gid)),
        (None, Some(uid)) => Ok((uid, uid)),
        (None, None) => Err(format!("no such gateway user {user:?} in /etc/passwd")),
    }
}
