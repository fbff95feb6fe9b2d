//! `monitoreo-privhelper`: parse arguments, load the policy, bind, serve.
#![deny(unsafe_code)]

mod cgroup;
mod cli;
mod ids;
mod jobs;
mod policy;
mod server;
mod socket;
mod spawn;
mod sys;
mod target;

use std::process::ExitCode;

use nix::unistd::User;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monitoreo-privhelper: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = match cli::parse(std::env::args().skip(1))? {
        cli::Parsed::Run(a) => a,
        cli::Parsed::Help => {
            print!("{}", cli::USAGE);
            return Ok(());
        }
        cli::Parsed::Version => {
            println!("monitoreo-privhelper {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
    };
    let policy = policy::Policy::load(&args.policy).map_err(|e| e.to_string())?;
    if args.check {
        println!("policy ok: {}", policy.summary());
        return Ok(());
    }
    let gw = match args.gateway_user.parse::<u32>() {
        Ok(uid) => User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| (uid, Some(u.gid.as_raw())))
            .unwrap_or((uid, None)),
        Err(_) => {
            let u = User::from_name(&args.gateway_user)
                .map_err(|e| format!("looking up {}: {e}", args.gateway_user))?
                .ok_or(format!("no such gateway user {:?}", args.gateway_user))?;
            (u.uid.as_raw(), Some(u.gid.as_raw()))
        }
    };
    let cgroups = cgroup::CgroupRoot::discover(args.cgroup_root.as_deref());
    match &cgroups {
        Some(c) => eprintln!("containment: cgroup under {}", c.path().display()),
        None => eprintln!("containment: pgid (no writable cgroup v2 with cgroup.kill); a job that calls setsid can escape its timeout"),
    }
    let listener = socket::listen(&args.socket, gw.1)
        .map_err(|e| format!("{}: {e}", args.socket.display()))?;
    eprintln!("policy: {}", policy.summary());
    eprintln!(
        "listening on {} for uid {} and root",
        args.socket.display(),
        gw.0
    );
    let created = listener.created.clone();
    let mut server = server::Server::new(listener, policy, args.policy.clone(), gw.0, cgroups);
    let result = server.run().map_err(|e| e.to_string());
    if let Some(p) = created {
        let _ = std::fs::remove_file(p);
    }
    result
}
