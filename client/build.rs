//! Generates the man pages and shell completions from `src/cli.rs`, the
//! one definition of the command line, then teaches the completions the
//! names of the configured contexts, which no static definition knows:
//! they ask `monitoreo contexts ls -q` when a context name is wanted.

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

include!("../packaging/build/docs.rs");

/// The context names, as each shell runs a command for its words.
const NAMES: &str = "monitoreo contexts ls -q 2>/dev/null";

fn main() {
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=../packaging/build/docs.rs");
    write_docs(<cli::Cli as clap::CommandFactory>::command(), "1");
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        panic!("cargo sets OUT_DIR for build scripts");
    };
    let shared = out.ancestors().nth(3).map(|p| p.join("generated"));
    for dir in std::iter::once(out.clone()).chain(shared) {
        if let Err(e) = context_names(&dir.join("completions")) {
            panic!("completing context names in {}: {e}", dir.display());
        }
    }
}

/// Rewrites what clap writes for `--context` (and the NAME of `contexts
/// use|rm`): file names, or nothing, become the configured contexts. The
/// client's tests drive bash on the result.
fn context_names(dir: &Path) -> std::io::Result<()> {
    let edit = |file: &str, f: &dyn Fn(String) -> String| -> std::io::Result<()> {
        let p = dir.join(file);
        let text = std::fs::read_to_string(&p)?;
        let new = f(text.clone());
        if new == text {
            return Err(std::io::Error::other(format!(
                "{file}: clap's output changed shape; nothing to rewrite"
            )));
        }
        std::fs::write(p, new)
    };
    edit("monitoreo.bash", &|t| {
        let names = format!("COMPREPLY=($(compgen -W \"$({NAMES})\" -- \"${{cur}}\"))");
        let t = t.replace(
            "--context)\n                    COMPREPLY=($(compgen -f \"${cur}\"))",
            &format!("--context)\n                    {names}"),
        );
        let t = t.replace(
            "-c)\n                    COMPREPLY=($(compgen -f \"${cur}\"))",
            &format!("-c)\n                    {names}"),
        );
        // `contexts use NAME`, `contexts rm NAME`: the positional word.
        let mut out = String::new();
        let mut state = "";
        for line in t.lines() {
            let l = line.trim();
            if l.ends_with(')') && l.starts_with("monitoreo__subcmd__contexts__subcmd__") {
                state = l;
            }
            let positional = state.ends_with("__use)") || state.ends_with("__rm)");
            if positional && l.starts_with("COMPREPLY=( $(compgen -W \"${opts}\"") {
                out.push_str(&line.replace(
                    "$(compgen -W \"${opts}\"",
                    &format!("$(compgen -W \"${{opts}} $({NAMES})\""),
                ));
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        out
    })?;
    edit("_monitoreo", &|t| {
        t.replace(":CONTEXT:_default'", &format!(":CONTEXT:($({NAMES}))'"))
            .replace(
                "':name -- Context name:_default'",
                &format!("':name -- Context name:($({NAMES}))'"),
            )
    })?;
    edit("monitoreo.fish", &|t| {
        let mut t: String = t
            .lines()
            .map(|l| {
                if l.contains("-l context ") {
                    format!("{l} -f -a \"({NAMES})\"\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        t.push_str(&format!(
            "complete -c monitoreo -n \"__fish_monitoreo_using_subcommand contexts; and \
             __fish_seen_subcommand_from use rm\" -f -a \"({NAMES})\"\n"
        ));
        t
    })
}
