// Included by the build script of each binary crate: writes the man pages
// and the bash, zsh and fish completions generated from the crate's clap
// definition. They go to OUT_DIR (where the crate's tests read them) and
// to `<target>/<profile>/generated/` (where the package takes them from:
// OUT_DIR is `<target>/<profile>/build/<crate>-<hash>/out`), the man pages
// there gzipped as Debian policy asks: cargo-deb compresses only assets
// it does not consider built, and files under the target directory are.

use std::path::{Path, PathBuf};

/// Writes `<name>.<section>` and the completions of `cmd`.
fn write_docs(cmd: clap::Command, section: &'static str) {
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        panic!("cargo sets OUT_DIR for build scripts");
    };
    let shared = out.ancestors().nth(3).map(|p| p.join("generated"));
    for (dir, gzip) in std::iter::once((out.clone(), false)).chain(shared.map(|s| (s, true))) {
        if let Err(e) = write_into(&dir, cmd.clone(), section, gzip) {
            panic!("writing the man page and completions to {}: {e}", dir.display());
        }
    }
}

fn write_into(
    dir: &Path,
    mut cmd: clap::Command,
    section: &'static str,
    gzip: bool,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    cmd.build();
    write_pages(&cmd, section, &man, gzip)?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let file = clap_complete::generate_to(shell, &mut cmd, &name, &completions)?;
        if shell == clap_complete::Shell::Bash && name.contains('-') {
            // clap_complete 4.6 spells a hyphenated program's subcommand
            // states two ways (`a__b__subcmd__c` when set, `a__subcmd__b__
            // subcmd__c` when matched), so no subcommand of it completes;
            // one spelling fixes it (tests/man_pages.rs drives bash on it).
            let text = std::fs::read_to_string(&file)?;
            let wrong = format!("{}__subcmd__", name.replace('-', "__subcmd__"));
            let right = format!("{}__subcmd__", name.replace('-', "__"));
            std::fs::write(&file, text.replace(&wrong, &right))?;
        }
    }
    Ok(())
}

/// The command's page and one per subcommand (`monitoreo-jobs-logs.1`),
/// which the command's page names in its list.
fn write_pages(
    cmd: &clap::Command,
    section: &'static str,
    man: &Path,
    gzip: bool,
) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section(section)
        .manual("Monitoreo")
        .render(&mut page)?;
    if gzip {
        use std::io::Write;
        // mtime 0 in the header: the same page makes the same bytes.
        let mut z = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
        z.write_all(&page)?;
        std::fs::write(man.join(format!("{name}.{section}.gz")), z.finish()?)?;
    } else {
        std::fs::write(man.join(format!("{name}.{section}")), page)?;
    }
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, section, man, gzip)?;
    }
    Ok(())
}
