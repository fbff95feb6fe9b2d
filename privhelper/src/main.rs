//! `monitoreo-privhelper`: parse arguments (clap exits 2 on a usage
//! error) and hand off to `privhelper::startup::run`; 1 for any failure.
#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use privhelper::{cli, startup};

fn main() -> ExitCode {
    match startup::run(cli::Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monitoreo-privhelper: {e}");
            ExitCode::FAILURE
        }
    }
}
