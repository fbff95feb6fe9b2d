//! `monitoreo-gateway` entry point: parse arguments (clap, then
//! `args::check`), run, map to an exit code: 2 for a usage error, 1 for
//! any other failure.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // clap prints help and version (exit 0) and its own usage errors (2).
    let cli = api_gateway::cli::Cli::parse();
    let keys = matches!(cli.command, Some(api_gateway::cli::Command::Keys { .. }));
    let cmd = match api_gateway::args::check(cli) {
        Ok(c) => c,
        Err(e) => {
            let hint = if keys { " keys --help" } else { " --help" };
            eprintln!("monitoreo-gateway: {e}\nTry 'monitoreo-gateway{hint}'.");
            return ExitCode::from(2);
        }
    };
    match api_gateway::run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monitoreo-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
