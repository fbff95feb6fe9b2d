//! The command line, defined once: `main` parses with it, and `build.rs`
//! includes this file to generate the man page and the bash, zsh and fish
//! completions from the same definition, so they cannot drift from it.
//! It depends on nothing but `clap` and `std` for that reason.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Watch and control the processes of one or many Monitoreo gateways.
#[derive(Parser, Debug)]
#[command(
    name = "monitoreo",
    version,
    disable_help_subcommand = true,
    about = "Watch and control the processes of one or many Monitoreo gateways",
    long_about = "Watch and control the processes of one or many Monitoreo gateways.\n\n\
        A context names a gateway: its URL and how to authenticate (a key read \
        from a file or an environment variable, never from the command line; a \
        CA file; a client certificate). Contexts live in \
        $XDG_CONFIG_HOME/monitoreo/config.toml (~/.config/monitoreo/config.toml). \
        Without one, MONITOREO_URL and MONITOREO_KEY (or MONITOREO_KEY_FILE, and \
        MONITOREO_CA_FILE) name the gateway.\n\n\
        Exit status: 0 all done; 1 an error (usage, configuration, transport, \
        a refused key, an API error: its message and code are printed as the \
        gateway sent them); 2 partial: some targets (processes, or gateways of \
        several) were refused or failed while the command itself was valid. \
        `run --follow` exits with the job's own status."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug)]
pub struct Global {
    /// Output form: table, wide (more columns), json (the API's answer as
    /// sent) or jsonl (one object per line)
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Run on these contexts (comma-separated), in parallel, with a HOST column
    #[arg(
        short = 'c',
        long,
        global = true,
        value_delimiter = ',',
        value_name = "CONTEXT"
    )]
    pub context: Vec<String>,
    /// Run on every configured context, in parallel
    #[arg(short = 'A', long, global = true, conflicts_with = "context")]
    pub all_contexts: bool,
    /// Configuration file (default $XDG_CONFIG_HOME/monitoreo/config.toml)
    #[arg(long, global = true, env = "MONITOREO_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// How answers are printed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Wide,
    Json,
    Jsonl,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List processes (GET /api/ps)
    Ps(PsArgs),
    /// A refreshing view of the busiest processes
    Top(TopArgs),
    /// Every field of one process (GET /api/ps/PID)
    Show {
        /// Process id
        pid: u32,
    },
    /// Signal processes, each pinned by its start time (DELETE /api/ps)
    Kill(KillArgs),
    /// Renice processes, each pinned by its start time (PATCH /api/ps)
    Renice(ReniceArgs),
    /// Run a shell command as a job (POST /api/jobs)
    Run(RunArgs),
    /// List, inspect, read, cancel and remove jobs (/api/jobs)
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Users with running processes (GET /api/users)
    Users,
    /// The host's figures: uptime, CPU, load, memory (GET /api/host)
    Host,
    /// The key's name and scopes (GET /api/whoami)
    Whoami,
    /// Manage the named gateways of the configuration file
    #[command(subcommand)]
    Contexts(ContextsCommand),
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Only this user's processes (a passwd name or a uid)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Sort key, `-` first for descending (e.g. -cpu_percent)
    #[arg(short, long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// At most this many processes
    #[arg(short, long)]
    pub limit: Option<u32>,
    /// Fields to ask for (comma-separated); the table shows them as columns
    #[arg(short, long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// Only processes whose name contains this text (filtered here)
    #[arg(short, long)]
    pub name: Option<String>,
    /// Keep listing; print one line per change (added, modified, deleted)
    #[arg(short, long)]
    pub watch: bool,
    /// Seconds between two listings with --watch
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Sort key, `-` first for descending
    #[arg(
        short,
        long,
        default_value = "-cpu_percent",
        allow_hyphen_values = true
    )]
    pub sort: String,
    /// Processes shown per gateway
    #[arg(short, long, default_value_t = 20)]
    pub limit: u32,
    /// Seconds between two refreshes
    #[arg(short = 'd', long, default_value_t = 2.0)]
    pub interval: f64,
    /// Stop after this many refreshes (0: until interrupted)
    #[arg(short = 'n', long, default_value_t = 0)]
    pub iterations: u32,
}

/// Which processes a kill or renice acts on.
#[derive(Args, Debug)]
pub struct Targets {
    /// Process ids (with --tree: the root of the tree)
    pub pids: Vec<u32>,
    /// The process and all its descendants, through a plan shown before acting
    #[arg(long, conflicts_with = "matches")]
    pub tree: bool,
    /// With --tree: leave the root process itself alone
    #[arg(long, requires = "tree")]
    pub no_root: bool,
    /// Every process matching KEY=VALUE (name, exe, cmdline, user, cgroup,
    /// unit; repeat to AND them), through a plan shown before acting
    #[arg(short, long = "match", value_name = "KEY=VALUE")]
    pub matches: Vec<String>,
    /// Refuse a plan with more targets than this
    #[arg(long, default_value_t = 100)]
    pub max_targets: u32,
    /// Act without asking (a plan is still shown)
    #[arg(short, long)]
    pub yes: bool,
    /// Show what would be done, with each target's verdict; act on nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal name (TERM, SIGKILL, HUP...) or number
    #[arg(short, long, default_value = "TERM")]
    pub signal: String,
    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Args, Debug)]
pub struct ReniceArgs {
    /// New nice value, -20..20
    #[arg(short = 'n', long, allow_hyphen_values = true)]
    pub priority: i32,
    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Seconds before the helper kills the job (the gateway's default if unset)
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Stream the job's output as it comes and exit with the job's status
    #[arg(short, long)]
    pub follow: bool,
    /// The command, run by /bin/sh -c (words are joined by spaces)
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// This key's jobs, newest first
    Ls {
        /// Only jobs in this state (running, exited, ...)
        #[arg(long)]
        state: Option<String>,
        /// At most this many jobs (1..=500)
        #[arg(short, long)]
        limit: Option<u32>,
        /// Keep listing; print one line per change
        #[arg(short, long)]
        watch: bool,
        /// Seconds between two listings with --watch
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
    },
    /// One job's record
    Show {
        /// Job id (32 hex characters)
        id: String,
        /// Wait up to this many seconds (at most 60) for it to end
        #[arg(long)]
        wait: Option<u32>,
    },
    /// A job's output, byte for byte
    Logs {
        /// Job id
        id: String,
        /// Follow the output live until the job ends
        #[arg(short, long)]
        follow: bool,
        /// Print stderr instead of stdout (without --follow)
        #[arg(long)]
        stderr: bool,
    },
    /// Cancel a running job: everything it started is killed
    Cancel {
        /// Job id
        id: String,
    },
    /// Remove a job that has ended, with its output
    Rm {
        /// Job id
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContextsCommand {
    /// The configured contexts; the current one is marked
    Ls {
        /// Only the names, one a line (what the completions offer)
        #[arg(short, long)]
        quiet: bool,
    },
    /// Add (or replace) a context
    Add(ContextAdd),
    /// Make a context the one used when none is named
    Use {
        /// Context name
        name: String,
    },
    /// Remove a context
    Rm {
        /// Context name
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct ContextAdd {
    /// Context name
    pub name: String,
    /// The gateway's URL (http://host:8470 or https://...)
    #[arg(long)]
    pub url: String,
    /// File holding the key (read at each use, never copied)
    #[arg(long, value_name = "PATH", conflicts_with = "key_env")]
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the key
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
    /// PEM CA certificates to trust instead of the system's
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for a key mapped to its subject
    #[arg(long, value_name = "PATH", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert
    #[arg(long, value_name = "PATH", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Make it the current context
    #[arg(long = "use")]
    pub make_current: bool,
}
