//! `monitoreo-gateway` entry point: parse arguments, run, map to an exit code.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match api_gateway::cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("monitoreo-gateway: {e}\nTry 'monitoreo-gateway --help'.");
            std::process::exit(2);
        }
    };
    if let Err(e) = api_gateway::run(cmd) {
        eprintln!("monitoreo-gateway: {e}");
        std::process::exit(1);
    }
}
