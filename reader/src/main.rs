//! `monitoreo-reader`: parse arguments and hand off to `reader::cli::run`.
//! Exit status 2 for a usage error, 1 for any other failure.
#![deny(unsafe_code)]

use std::process::ExitCode;

use reader::cli;

fn main() -> ExitCode {
    let parsed = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|args| cli::parse(args.into_iter()));
    let args = match parsed {
        Ok(cli::Parsed::Run(a)) => a,
        Ok(cli::Parsed::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Version) => {
            println!("monitoreo-reader {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("monitoreo-reader: {e}\nTry 'monitoreo-reader --help'.");
            return ExitCode::from(2);
        }
    };
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monitoreo-reader: {e}");
            ExitCode::FAILURE
        }
    }
}
