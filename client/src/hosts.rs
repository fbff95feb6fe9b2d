//! Which gateways a command runs on (`--context a,b`, `--all-contexts`,
//! the current context, or `MONITOREO_URL`), and running it on all of
//! them at once: one thread each, so a gateway that is down or slow
//! delays none of the others' answers and stops none of them.

use serde_json::Value;

use crate::cli::Global;
use crate::config::{self, Config, Context};
use crate::conn::Conn;
use crate::error::Failure;
use crate::output::Answer;

/// The context name used for `MONITOREO_URL` without a configuration.
pub const ENV_CONTEXT: &str = "env";

/// The contexts named on the command line, or the current one.
pub fn resolve(g: &Global) -> Result<Vec<(String, Context)>, Failure> {
    let path = match &g.config {
        Some(p) => p.clone(),
        None => config::default_path()?,
    };
    let cfg = Config::load(&path)?;
    if g.all_contexts {
        if cfg.contexts.is_empty() {
            return Err(Failure::Local(format!(
                "no contexts in {}: add one with `monitoreo contexts add`",
                path.display()
            )));
        }
        return Ok(cfg.contexts.into_iter().collect());
    }
    let mut names: Vec<String> = g
        .context
        .iter()
        .filter(|n| !n.is_empty())
        .cloned()
        .collect();
    names.dedup();
    if names.is_empty() {
        if let Some(url) = std::env::var("MONITOREO_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            return Ok(vec![(ENV_CONTEXT.into(), env_context(url))]);
        }
        match &cfg.current {
            Some(c) => names.push(c.clone()),
            None => {
                return Err(Failure::Local(format!(
                "no context: add one with `monitoreo contexts add NAME --url URL --key-file FILE` \
                     (kept in {}), name one with --context, or set MONITOREO_URL and MONITOREO_KEY",
                path.display()
            )))
            }
        }
    }
    names
        .into_iter()
        .map(|n| match cfg.contexts.get(&n) {
            Some(c) => Ok((n, c.clone())),
            None => Err(Failure::Local(format!(
                "no context named {n:?} in {}",
                path.display()
            ))),
        })
        .collect()
}

/// `MONITOREO_URL` with the key in `MONITOREO_KEY` or the file named by
/// `MONITOREO_KEY_FILE`, and the CA in `MONITOREO_CA_FILE`.
fn env_context(url: String) -> Context {
    let path = |v: &str| {
        std::env::var_os(v)
            .filter(|f| !f.is_empty())
            .map(Into::into)
    };
    let key_file = path("MONITOREO_KEY_FILE");
    Context {
        url,
        key_env: key_file.is_none().then(|| "MONITOREO_KEY".to_string()),
        key_file,
        ca_file: path("MONITOREO_CA_FILE"),
        ..Context::default()
    }
}

/// Runs `f` on every context in parallel; the answers in the contexts'
/// order, a failure of one (its key, its connection) kept as its own.
pub fn fan<F>(hosts: &[(String, Context)], f: F) -> Vec<Answer>
where
    F: Fn(&Conn) -> Result<Value, Failure> + Sync,
{
    let one = |name: &str, ctx: &Context| Conn::new(name, ctx).and_then(|c| f(&c));
    if let [(name, ctx)] = hosts {
        return vec![(name.clone(), one(name, ctx))];
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|(name, ctx)| (name.clone(), s.spawn(|| one(name, ctx))))
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(Failure::Local("the request panicked".into())));
                (name, r)
            })
            .collect()
    })
}
