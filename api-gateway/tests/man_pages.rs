//! The man pages and the shell completions, generated at build time from
//! the clap definition `--help` prints (`build.rs`), name every command,
//! option and configuration key of the help; the man pages format
//! without a warning; the package installs them all.

use std::path::{Path, PathBuf};
use std::process::Command;

const GATEWAY: &str = env!("CARGO_BIN_EXE_monitoreo-gateway");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// What `build.rs` generated: `man/...` or `completions/...`.
fn generated(rel: &str) -> String {
    let p = Path::new(env!("OUT_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn stdout(args: &[&str]) -> String {
    let out = Command::new(GATEWAY).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every `--long` and `-s` option in `text`.
fn options(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    for i in 0..b.len() {
        let starts_word = i == 0 || b" \t\n[(|,".contains(&b[i - 1]);
        if !starts_word || b[i] != b'-' {
            continue;
        }
        let end = (i + 1..b.len())
            .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'-'))
            .unwrap_or(b.len());
        let word = &text[i..end];
        let long =
            word.len() > 3 && word.starts_with("--") && word.as_bytes()[2].is_ascii_alphabetic();
        let short = word.len() == 2 && word.as_bytes()[1].is_ascii_alphabetic();
        if (long || short) && !found.iter().any(|f| f == word) {
            found.push(word.to_string());
        }
    }
    found
}

/// The configuration keys listed under CONFIGURATION in the help.
fn config_keys(help: &str) -> Vec<String> {
    help.split("CONFIGURATION")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.trim().split_once(" = ").map(|(k, _)| k.to_string()))
        .collect()
}

/// Roff without the escapes that hide plain text: `\-`, fonts, `\&`.
fn plain(roff: &str) -> String {
    let mut s = roff
        .replace("\\-", "-")
        .replace("\\&", "")
        .replace("\\(dq", "\"");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        s = s.replace(font, "");
    }
    s
}

const COMMANDS: [&str; 4] = ["serve", "keys add", "keys list", "keys revoke"];

/// The gateway's pages: its own and one per command.
const PAGES: [&str; 6] = [
    "monitoreo-gateway.8",
    "monitoreo-gateway-serve.8",
    "monitoreo-gateway-keys.8",
    "monitoreo-gateway-keys-add.8",
    "monitoreo-gateway-keys-list.8",
    "monitoreo-gateway-keys-revoke.8",
];

#[test]
fn the_man_page_names_every_command_option_and_config_key_of_the_help() {
    let help = stdout(&["--help"]);
    let keys_help = stdout(&["keys", "--help"]);
    let man: String = PAGES
        .iter()
        .map(|p| plain(&generated(&format!("man/{p}"))))
        .collect();
    let mut opts = options(&help);
    opts.extend(options(&keys_help));
    for want in [
        "--config",
        "--scopes",
        "--expires",
        "--json",
        "--help",
        "-h",
        "--version",
        "-V",
    ] {
        assert!(
            opts.iter().any(|o| o == want),
            "the help lost {want}: {opts:?}"
        );
    }
    for o in &opts {
        assert!(
            man.contains(o.as_str()),
            "the man page does not mention {o}"
        );
    }
    for c in COMMANDS {
        let page = format!("monitoreo-gateway-{}", c.replace(' ', "-"));
        assert!(man.contains(&page), "no man page lists {page}");
        assert!(
            keys_help.contains(c) || help.contains(c),
            "the help does not mention {c}"
        );
    }
    let keys = config_keys(&help);
    assert!(keys.len() >= 10, "{keys:?}");
    for k in keys {
        assert!(
            man.contains(&format!("{k} = ")),
            "the man page does not describe {k}"
        );
    }
}

#[test]
fn every_completion_offers_every_command_and_option_of_the_help() {
    let mut opts = options(&stdout(&["--help"]));
    opts.extend(options(&stdout(&["keys", "--help"])));
    for file in [
        "completions/monitoreo-gateway.bash",
        "completions/_monitoreo-gateway",
        "completions/monitoreo-gateway.fish",
    ] {
        let text = generated(file);
        let fish = file.ends_with(".fish");
        // Long options; a short alias need not be offered.
        for o in opts.iter().filter(|o| o.starts_with("--")) {
            // fish declares `-l config` rather than spelling `--config`.
            let want = match (fish, o.strip_prefix("--")) {
                (true, Some(long)) => format!("-l {long}"),
                _ => o.clone(),
            };
            assert!(text.contains(&want), "{file} does not offer {o}");
        }
        for word in ["serve", "keys", "add", "list", "revoke"] {
            assert!(text.contains(word), "{file} does not offer {word}");
        }
    }
}

/// What the bash completion offers for the words typed so far (the last
/// one being completed).
fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = Path::new(env!("OUT_DIR")).join("completions/monitoreo-gateway.bash");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_monitoreo__gateway monitoreo-gateway \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn the_bash_completion_follows_the_command_words() {
    let offered = |words: &[&str]| {
        let mut o = bash_complete(words);
        o.sort();
        o
    };
    let top = offered(&["monitoreo-gateway", ""]);
    for w in ["serve", "keys", "--help", "--version", "--config"] {
        assert!(top.iter().any(|o| o == w), "{w}: {top:?}");
    }
    let keys = offered(&["monitoreo-gateway", "keys", ""]);
    for w in ["add", "list", "revoke"] {
        assert!(keys.iter().any(|o| o == w), "{w}: {keys:?}");
    }
    assert!(!keys.iter().any(|o| o == "serve"), "{keys:?}");
    let list = offered(&[
        "monitoreo-gateway",
        "--config",
        "x.toml",
        "keys",
        "list",
        "--",
    ]);
    assert!(list.iter().any(|o| o == "--json"), "{list:?}");
    assert!(!list.iter().any(|o| o == "--scopes"), "{list:?}");
    let scopes = offered(&["monitoreo-gateway", "keys", "add", "ops", "--scopes", "s"]);
    assert_eq!(scopes, ["signal"]);
    assert_eq!(
        offered(&["monitoreo-gateway", "serve", "--c"]),
        ["--config"]
    );
}

#[test]
#[ignore = "needs groff (Debian's groff-base)"]
fn the_man_page_formats_without_warnings() {
    let out = Command::new("groff")
        .args(["-man", "-ww", "-z", "-Tutf8"])
        .args(PAGES.map(|p| Path::new(env!("OUT_DIR")).join("man").join(p)))
        .output()
        .expect("groff runs: install Debian's groff-base (.ci/run does)");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn the_package_installs_the_man_pages_and_completions() {
    let manifest = read("packaging/Cargo.toml");
    for asset in [
        r#"["target/release/generated/man/*.8.gz", "usr/share/man/man8/", "644"]"#,
        r#"["target/release/generated/man/*.1.gz", "usr/share/man/man1/", "644"]"#,
        r#"["target/release/monitoreo", "usr/bin/", "755"]"#,
        r#"["target/release/generated/completions/monitoreo-gateway.bash", "usr/share/bash-completion/completions/monitoreo-gateway", "644"]"#,
        r#"["target/release/generated/completions/monitoreo-privhelper.bash", "usr/share/bash-completion/completions/monitoreo-privhelper", "644"]"#,
        r#"["target/release/generated/completions/monitoreo.bash", "usr/share/bash-completion/completions/monitoreo", "644"]"#,
        r#"["target/release/generated/completions/_monitoreo-gateway", "usr/share/zsh/vendor-completions/", "644"]"#,
        r#"["target/release/generated/completions/_monitoreo-privhelper", "usr/share/zsh/vendor-completions/", "644"]"#,
        r#"["target/release/generated/completions/_monitoreo", "usr/share/zsh/vendor-completions/", "644"]"#,
        r#"["target/release/generated/completions/monitoreo-gateway.fish", "usr/share/fish/vendor_completions.d/", "644"]"#,
        r#"["target/release/generated/completions/monitoreo-privhelper.fish", "usr/share/fish/vendor_completions.d/", "644"]"#,
        r#"["target/release/generated/completions/monitoreo.fish", "usr/share/fish/vendor_completions.d/", "644"]"#,
        r#"["lintian/monitoreo", "usr/share/lintian/overrides/", "644"]"#,
    ] {
        assert!(
            manifest.contains(asset),
            "packaging/Cargo.toml lacks the asset {asset}"
        );
    }
}

/// cargo-deb makes the crate's description the package's synopsis and
/// cuts it at 79 characters, the rest going into the long description: a
/// long one reads as a truncated sentence in `apt show`.
#[test]
fn the_package_describes_the_whole_product_in_one_short_line() {
    let description = |rel: &str| -> String {
        let manifest: toml::Table = toml::from_str(&read(rel)).expect(rel);
        manifest["package"]["description"]
            .as_str()
            .expect("a description")
            .to_owned()
    };
    let package = description("packaging/Cargo.toml");
    assert!(package.len() <= 79, "{package:?} is over 79 characters");
    assert!(!package.ends_with('.'), "a synopsis is not a sentence");
    for crate_manifest in [
        "api-gateway/Cargo.toml",
        "privhelper/Cargo.toml",
        "protocol/Cargo.toml",
    ] {
        assert_ne!(package, description(crate_manifest), "{crate_manifest}");
        let manifest = read(crate_manifest);
        assert!(
            !manifest.contains("[package.metadata.deb]"),
            "{crate_manifest} has package metadata; the package's is packaging/Cargo.toml"
        );
    }
}
