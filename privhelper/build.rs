//! Generates the man page and shell completions from `src/cli.rs`, the
//! one definition of the command line.

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

include!("../packaging/build/docs.rs");

fn main() {
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=../packaging/build/docs.rs");
    write_docs(<cli::Args as clap::CommandFactory>::command(), "8");
}
