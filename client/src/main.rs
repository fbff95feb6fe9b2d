//! `monitoreo`, the command-line client: parse the command line, find
//! the gateways it runs on, run it, exit 0 (done), 1 (error) or 2
//! (partial: some targets refused or some gateways failed).
#![forbid(unsafe_code)]

mod act;
mod cli;
mod config;
mod conn;
mod error;
mod hosts;
mod jobs;
mod misc;
mod output;
mod procs;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use error::Status;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            // A usage error is an error (1); 2 means a partial result.
            return ExitCode::from(if usage { 1 } else { 0 });
        }
    };
    ExitCode::from(run(&cli) as u8)
}

fn run(cli: &Cli) -> Status {
    let g = &cli.global;
    if let Command::Contexts(c) = &cli.command {
        return misc::contexts(g, c);
    }
    let hosts = match hosts::resolve(g) {
        Ok(h) => h,
        Err(f) => {
            output::complain(None, &f);
            return Status::Error;
        }
    };
    let form = g.output;
    match &cli.command {
        Command::Ps(a) => procs::ps(&hosts, form, a),
        Command::Top(a) => procs::top(&hosts, form, a),
        Command::Show { pid } => procs::show(&hosts, form, *pid),
        Command::Kill(a) => act::run(
            &hosts,
            form,
            &act::Act::Signal(a.signal.clone()),
            &a.targets,
        ),
        Command::Renice(a) => act::run(&hosts, form, &act::Act::Priority(a.priority), &a.targets),
        Command::Run(a) => jobs::run(&hosts, form, a),
        Command::Jobs(j) => jobs::jobs(&hosts, form, j),
        Command::Users => misc::users(&hosts, form),
        Command::Host => misc::host(&hosts, form),
        Command::Whoami => misc::whoami(&hosts, form),
        Command::Contexts(_) => Status::Done,
    }
}
