//! The keys CLI run as root against a state dir that an unprivileged user
//! (the gateway's, i.e. the attacker once the gateway is compromised) owns
//! and has filled with symbolic links in advance. Drives the real binary.
//! Every test needs root, so each is ignored unless asked for
//! (`--include-ignored`, as `scripts/test` does as root).

mod support;

use std::fs;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nix::unistd::{Gid, Group, Uid, User};
use support::{require_root, GATEWAY};

/// Valid keys JSON that only root may read: if it ever shows up in the
/// gateway's keys file or in `keys list`, root read it through a link.
const VICTIM: &str = r#"[{"name":"root-only","sha256":"00","scopes":["exec"],"created":1,"expires":null,"revoked":false}]"#;

/// A uid and gid with no passwd or group entry, so that no other account
/// on the machine shares what the test gives it.
fn unnamed_ids() -> (u32, u32) {
    unnamed_ids_from(61_000)
}

/// The first such id from `start` on.
fn unnamed_ids_from(start: u32) -> (u32, u32) {
    let id = (start..start + 4_000)
        .find(|&id| {
            matches!(User::from_uid(Uid::from_raw(id)), Ok(None))
                && matches!(Group::from_gid(Gid::from_raw(id)), Ok(None))
        })
        .expect("a free uid/gid");
    (id, id)
}

/// One scene: a root-owned, traversable top dir holding the config and the
/// state dir; a victim file in a separate root-only dir.
struct Scene {
    _top: tempfile::TempDir,
    _vault: tempfile::TempDir,
    state: PathBuf,
    config: PathBuf,
    victim: PathBuf,
}

/// What must not change about the victim.
#[derive(Debug, PartialEq)]
struct Snapshot {
    content: String,
    mode: u32,
    uid: u32,
    gid: u32,
    ino: u64,
}

fn snapshot(p: &Path) -> Snapshot {
    let m = fs::symlink_metadata(p).unwrap();
    Snapshot {
        content: fs::read_to_string(p).unwrap(),
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        ino: m.ino(),
    }
}

/// Builds the scene: the state dir belongs to `owner` with `mode`; `extra`
/// is appended to the config.
fn scene(owner: (u32, u32), mode: u32, extra: &str) -> Scene {
    let top = tempfile::tempdir().unwrap();
    // Like /var/lib: root's, but every user may traverse it.
    fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let state = top.path().join("state");
    fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(owner.0), Some(owner.1)).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(mode)).unwrap();
    let config = top.path().join("gateway.toml");
    fs::write(
        &config,
        format!("state_dir = \"{}\"\n{extra}", state.display()),
    )
    .unwrap();
    // Like /root: the gateway user can neither read nor write the victim.
    let vault = tempfile::tempdir().unwrap();
    fs::set_permissions(vault.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let victim = vault.path().join("victim.json");
    fs::write(&victim, VICTIM).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    Scene {
        _top: top,
        _vault: vault,
        state,
        config,
        victim,
    }
}

/// Plants a link owned by `owner`, as the gateway user would.
fn plant(link: &Path, target: &Path, owner: (u32, u32)) {
    symlink(target, link).unwrap();
    lchown(link, Some(owner.0), Some(owner.1)).unwrap();
}

/// Plants `.keys.json.<pid>` (the old, predictable temp name) for the next
/// `n` pids the kernel will hand out; returns them.
fn plant_temp_names(s: &Scene, owner: (u32, u32), n: u32) -> Vec<u32> {
    let read = |p: &str| -> u32 { fs::read_to_string(p).unwrap().trim().parse().unwrap() };
    let last = read("/proc/sys/kernel/ns_last_pid");
    let max = read("/proc/sys/kernel/pid_max");
    let pids: Vec<u32> = (1..=n)
        .map(|i| {
            let p = last + i;
            // After pid_max the kernel starts again above the reserved 300.
            if p >= max {
                p - max + 300
            } else {
                p
            }
        })
        .collect();
    for p in &pids {
        plant(&s.state.join(format!(".keys.json.{p}")), &s.victim, owner);
    }
    pids
}

/// Runs the CLI as root; returns its pid and output.
fn cli(s: &Scene, args: &[&str]) -> (u32, Output) {
    let child = Command::new(GATEWAY)
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (pid, child.wait_with_output().unwrap())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The two acceptable outcomes of a command that met a planted link:
/// either it wrote `keys` as a fresh regular file owned by `owner`, mode
/// 0600, without root-only content, or it failed with an error naming
/// `link` as a symbolic link.
fn assert_safe_outcome(out: &Output, keys: &Path, owner: (u32, u32), link: &Path) {
    if out.status.success() {
        assert_mode_owner(keys, owner);
        let body = fs::read_to_string(keys).unwrap();
        assert!(!body.contains("root-only"), "root's data leaked: {body}");
    } else {
        let err = text(&out.stderr);
        assert!(
            err.contains(&link.display().to_string()) && err.contains("symbolic link"),
            "the error does not name the link {}: {err}",
            link.display()
        );
    }
}

/// The key `name` is in `keys list` with `state`.
fn assert_listed(s: &Scene, name: &str, state: &str) {
    let (_, out) = cli(s, &["keys", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("{name}\t")) && l.ends_with(state)),
        "{name} not {state} in: {listed}"
    );
}

/// `p` is a regular file (not a link) owned by `owner`, mode 0600.
fn assert_mode_owner(p: &Path, owner: (u32, u32)) {
    let m = fs::symlink_metadata(p).unwrap();
    assert!(
        m.file_type().is_file(),
        "{} is not a regular file",
        p.display()
    );
    assert_eq!((m.uid(), m.gid()), owner, "owner of {}", p.display());
    assert_eq!(m.mode() & 0o7777, 0o600, "mode of {}", p.display());
}

#[test]
#[ignore = "needs root"]
fn links_at_the_old_temp_names_do_not_reach_roots_files() {
    require_root();
    let owner = unnamed_ids();
    let s = scene(owner, 0o700, "");
    let before = snapshot(&s.victim);
    let planted = plant_temp_names(&s, owner, 3000);
    let (pid, out) = cli(&s, &["keys", "add", "ops", "--scopes", "read"]);
    assert!(
        planted.contains(&pid),
        "pid {pid} was not planted; the attack was not exercised"
    );
    assert_eq!(snapshot(&s.victim), before, "the victim changed");
    // An attacker must not be able to stop key management either.
    assert!(out.status.success(), "{}", text(&out.stderr));
    let keys = s.state.join("keys.json");
    assert_safe_outcome(&out, &keys, owner, &keys);
    assert_listed(&s, "ops", "active");
}

#[test]
#[ignore = "needs root"]
fn a_link_at_keys_json_is_not_followed_as_root() {
    require_root();
    let owner = unnamed_ids();
    let s = scene(owner, 0o700, "");
    let before = snapshot(&s.victim);
    let keys = s.state.join("keys.json");
    plant(&keys, &s.victim, owner);

    let (_, out) = cli(&s, &["keys", "add", "ops", "--scopes", "read"]);
    assert_eq!(snapshot(&s.victim), before, "the victim changed");
    assert_safe_outcome(&out, &keys, owner, &keys);

    // Reading through the link as root would show root-only's record.
    let (_, out) = cli(&s, &["keys", "list"]);
    assert!(
        !text(&out.stdout).contains("root-only"),
        "keys list read the victim: {}",
        text(&out.stdout)
    );
    if fs::symlink_metadata(&keys)
        .unwrap()
        .file_type()
        .is_symlink()
    {
        assert_safe_outcome(&out, &keys, owner, &keys);
        let (_, out) = cli(&s, &["keys", "revoke", "root-only"]);
        assert!(!out.status.success());
        assert_safe_outcome(&out, &keys, owner, &keys);
    }
    assert_eq!(snapshot(&s.victim), before, "the victim changed");
}

/// `keys_file` two levels below a directory `base` that the gateway user
/// owns, which swaps `base/a` for a link into root's vault: O_NOFOLLOW
/// guards only the last component, so only acting as that user (who
/// cannot enter the vault) keeps root's file out of reach.
fn link_higher_up(inside_state_dir: bool) {
    let owner = unnamed_ids();
    let s = scene(owner, 0o700, "");
    let other = tempfile::tempdir().unwrap();
    let base = if inside_state_dir {
        s.state.clone()
    } else {
        std::os::unix::fs::chown(other.path(), Some(owner.0), Some(owner.1)).unwrap();
        other.path().to_path_buf()
    };
    let keys = base.join("a/conf/keys.json");
    let mut config = fs::read_to_string(&s.config).unwrap();
    config.push_str(&format!("keys_file = \"{}\"\n", keys.display()));
    fs::write(&s.config, config).unwrap();
    let vault = s.victim.parent().unwrap().to_path_buf();
    fs::create_dir(vault.join("conf")).unwrap();
    let victim = vault.join("conf/keys.json");
    fs::write(&victim, VICTIM).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    plant(&base.join("a"), &vault, owner);
    let before = snapshot(&victim);

    let (_, add) = cli(&s, &["keys", "add", "ops", "--scopes", "read"]);
    let (_, list) = cli(&s, &["keys", "list"]);
    assert_eq!(snapshot(&victim), before, "the victim changed");
    assert!(!add.status.success(), "keys add wrote through the link");
    assert!(
        !text(&list.stdout).contains("root-only"),
        "keys list read root's file: {}",
        text(&list.stdout)
    );
    let names: Vec<String> = fs::read_dir(vault.join("conf"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keys.json"]);
}

#[test]
#[ignore = "needs root"]
fn a_link_higher_up_in_the_state_dir_reaches_only_what_its_owner_may() {
    require_root();
    link_higher_up(true);
}

#[test]
#[ignore = "needs root"]
fn a_link_higher_up_outside_the_state_dir_reaches_only_what_its_owner_may() {
    require_root();
    link_higher_up(false);
}

#[test]
#[ignore = "needs root"]
fn a_keys_path_through_two_users_dirs_is_refused() {
    require_root();
    // Each user could swap what lies below its own directory; acting as
    // either would expose the other, so nothing is touched.
    let owner = unnamed_ids();
    let other = unnamed_ids_from(owner.0 + 1);
    let s = scene(owner, 0o700, "");
    let sub = s.state.join("sub");
    fs::create_dir(&sub).unwrap();
    std::os::unix::fs::chown(&sub, Some(other.0), Some(other.1)).unwrap();
    let mut config = fs::read_to_string(&s.config).unwrap();
    config.push_str(&format!(
        "keys_file = \"{}\"\n",
        sub.join("keys.json").display()
    ));
    fs::write(&s.config, config).unwrap();
    for args in [
        &["keys", "add", "ops", "--scopes", "read"][..],
        &["keys", "list"],
    ] {
        let (_, out) = cli(&s, args);
        assert!(!out.status.success(), "{args:?} went ahead");
        let err = text(&out.stderr);
        assert!(
            err.contains(&sub.display().to_string()) && err.contains("different users"),
            "{err}"
        );
    }
    assert!(fs::read_dir(&sub).unwrap().next().is_none());
}

#[test]
#[ignore = "needs root"]
fn a_root_owned_group_writable_state_dir_is_written_safely() {
    require_root();
    // The gateway's group may write the dir, so it may plant links, but
    // the dir is root's: the CLI stays root and must not follow them.
    let (_, gid) = unnamed_ids();
    let planter = (unnamed_ids().0, gid);
    let s = scene((0, gid), 0o770, "");
    let before = snapshot(&s.victim);
    let planted = plant_temp_names(&s, planter, 3000);
    let (pid, out) = cli(&s, &["keys", "add", "ops", "--scopes", "read"]);
    assert!(planted.contains(&pid), "pid {pid} was not planted");
    assert_eq!(snapshot(&s.victim), before, "the victim changed");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let keys = s.state.join("keys.json");
    assert_safe_outcome(&out, &keys, (0, gid), &keys);

    // Now the link at keys.json itself.
    fs::remove_file(&keys).unwrap();
    plant(&keys, &s.victim, planter);
    let (_, out) = cli(&s, &["keys", "add", "ops2", "--scopes", "read"]);
    assert_eq!(snapshot(&s.victim), before, "the victim changed");
    assert_safe_outcome(&out, &keys, (0, gid), &keys);
    let (_, out) = cli(&s, &["keys", "list"]);
    assert!(
        !text(&out.stdout).contains("root-only"),
        "keys list read the victim"
    );
    assert_eq!(snapshot(&s.victim), before, "the victim changed");
}

#[test]
#[ignore = "needs root"]
fn keys_added_as_root_belong_to_the_state_dir_owner() {
    require_root();
    let owner = unnamed_ids();
    let s = scene(owner, 0o700, "");
    let keys = s.state.join("keys.json");
    let (_, out) = cli(&s, &["keys", "add", "ops", "--scopes", "read,exec"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("mon_"));
    assert_mode_owner(&keys, owner);
    assert_listed(&s, "ops", "active");

    let (_, out) = cli(&s, &["keys", "revoke", "ops"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_mode_owner(&keys, owner);
    assert_listed(&s, "ops", "revoked");

    // No temp file is left behind.
    let names: Vec<String> = fs::read_dir(&s.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keys.json"]);
}

#[test]
#[ignore = "needs root"]
fn a_keys_file_outside_the_state_dir_is_given_to_its_owner() {
    require_root();
    // keys_file in a root-owned dir (like /etc/monitoreo): root writes it
    // there and gives it to the state dir's owner, who must read it.
    let owner = unnamed_ids();
    let etc = tempfile::tempdir().unwrap();
    fs::set_permissions(etc.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let keys = etc.path().join("keys.json");
    let s = scene(
        owner,
        0o700,
        &format!("keys_file = \"{}\"\n", keys.display()),
    );
    let (_, out) = cli(&s, &["keys", "add", "ops", "--scopes", "read"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_mode_owner(&keys, owner);
    assert_listed(&s, "ops", "active");
    assert!(fs::read_dir(&s.state).unwrap().next().is_none());
}

#[test]
#[ignore = "needs root"]
fn the_state_dir_owner_itself_still_manages_keys() {
    require_root();
    // The unprivileged path, as the packaged instructions run it.
    use std::os::unix::process::CommandExt;
    let owner = unnamed_ids();
    let s = scene(owner, 0o700, "");
    let run = |args: &[&str]| {
        Command::new(GATEWAY)
            .args(args)
            .arg("--config")
            .arg(&s.config)
            .uid(owner.0)
            .gid(owner.1)
            .output()
            .unwrap()
    };
    let out = run(&["keys", "add", "ops", "--scopes", "read"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_mode_owner(&s.state.join("keys.json"), owner);
    let out = run(&["keys", "revoke", "ops"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["keys", "list"]);
    assert!(text(&out.stdout).starts_with("ops\tread\t"));
    assert!(text(&out.stdout).trim_end().ends_with("revoked"));
}

/// A config whose `state_dir` does not exist yet, in a fresh directory
/// owned by `parent_owner` (mode 0755, like /var/lib); the directory is
/// returned to keep it alive.
fn missing_state_dir(parent_owner: (u32, u32)) -> (tempfile::TempDir, PathBuf, PathBuf) {
    // What most shells give; a stricter runner umask would hide the bug.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let top = tempfile::tempdir().unwrap();
    fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(top.path(), Some(parent_owner.0), Some(parent_owner.1)).unwrap();
    let state = top.path().join("state");
    let config = top.path().join("gateway.toml");
    fs::write(&config, format!("state_dir = \"{}\"\n", state.display())).unwrap();
    (top, state, config)
}

fn cli_with(config: &Path, args: &[&str]) -> Output {
    Command::new(GATEWAY)
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs root"]
fn a_missing_state_dir_is_made_0700_for_the_gateway_user_who_owns_its_parent() {
    require_root();
    let owner = unnamed_ids();
    let (_top, state, config) = missing_state_dir(owner);
    let out = cli_with(&config, &["keys", "add", "ops", "--scopes", "read"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m = fs::symlink_metadata(&state).unwrap();
    assert!(m.is_dir());
    assert_eq!((m.uid(), m.gid()), owner, "owner of {}", state.display());
    assert_eq!(m.mode() & 0o7777, 0o700, "mode of {}", state.display());
    assert_mode_owner(&state.join("keys.json"), owner);
}

#[test]
#[ignore = "needs root"]
fn a_missing_state_dir_in_a_root_dir_is_never_made_roots() {
    require_root();
    let (_top, state, config) = missing_state_dir((0, 0));
    let out = cli_with(&config, &["keys", "add", "ops", "--scopes", "read"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The packaged gateway runs as `monitoreo`: where that user exists the
    // directory is that user's; where it does not, nothing names the
    // gateway's user, and it is root's, still closed to everyone else.
    let owner = match User::from_name("monitoreo").unwrap() {
        Some(u) => (u.uid.as_raw(), u.gid.as_raw()),
        None => (0, 0),
    };
    let m = fs::symlink_metadata(&state).unwrap();
    assert_eq!((m.uid(), m.gid()), owner, "owner of {}", state.display());
    assert_eq!(m.mode() & 0o7777, 0o700, "mode of {}", state.display());
    assert_mode_owner(&state.join("keys.json"), owner);
    assert!(
        err.contains(&format!("made state_dir {} (mode 0700)", state.display())),
        "it says what it made: {err}"
    );
}
