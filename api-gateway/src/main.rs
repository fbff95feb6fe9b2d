//! `monitoreo-gateway` entry point: parse arguments, run, map to an exit
//! code: 2 for a usage error, 1 for any other failure.
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// A usage error: the message, a pointer to the help, status 2.
fn usage_error(e: &str, hint: &str) -> ExitCode {
    eprintln!("monitoreo-gateway: {e}\nTry '{hint}'.");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(a) => a,
        Err(a) => {
            return usage_error(
                &format!("argument {a:?} is not UTF-8"),
                "monitoreo-gateway --help",
            )
        }
    };
    let cmd = match api_gateway::cli::parse(&args) {
        Ok(c) => c,
        Err(e) => return usage_error(&e, api_gateway::cli::help_hint(&args)),
    };
    match api_gateway::run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monitoreo-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
