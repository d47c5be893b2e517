//! The unmodified sync clients against the real `hearth` binary (issue 3): owncloudcmd and
//! nextcloudcmd sync a tree up, change it on both sides, sync down into an empty folder and must
//! end byte-identical; a both-sides edit yields the client's conflict copy. The server log shows
//! which upload protocol carried the large file (TUS for owncloudcmd, chunking NG for
//! nextcloudcmd). rclone copies, checks with checksums, moves and purges. nextcloudcmd also syncs
//! over HTTPS with `--trust` and with Hearth's CA installed (issue 4).
//!
//! Gated with `#[ignore]`: they need Debian's owncloud-client-cmd, nextcloud-desktop-cmd and
//! rclone, which `scripts/test.sh` installs and runs with `--include-ignored`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::{Server, add_user, have};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// CLIENT QUIRK (owncloudcmd 2.11 from Debian): aborts without an exclude list.
const EXCLUDE: &str = "*~\n~$*\n.~lock.*\n*.part\n*.filepart\n.fuse_hidden*\n.nfs*\n";

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// A tree with nested folders, 200 small files, one 50 MB file and awkward names.
fn build_tree(root: &Path) {
    for i in 0..200 {
        let dir = root.join(format!("d{}/e{}", i % 5, i % 3));
        write(
            &dir.join(format!("small {i}.txt")),
            format!("file {i}\n").repeat(i + 1).as_bytes(),
        );
    }
    let big: Vec<u8> = (0..50_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    write(&root.join("big/large.bin"), &big);
    write(&root.join("Grüße ñ.txt"), "unicode".as_bytes());
    write(&root.join("with space/x #%&+'.txt"), b"special");
}

/// The exclude list and three empty local folders A, B, C for sync clients.
fn sync_folders(work: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let exclude = work.join("exclude.lst");
    std::fs::write(&exclude, EXCLUDE).unwrap();
    let (a, b, c) = (work.join("A"), work.join("B"), work.join("C"));
    for d in [&a, &b, &c] {
        std::fs::create_dir_all(d).unwrap();
    }
    (exclude, a, b, c)
}

/// Runs a sync client, which must exit 0 within the time limit.
fn sync(client: &str, local: &Path, url: &str, exclude: &Path) {
    let out = sync_cmd(client, local, url, exclude, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{client} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The command line of one sync run (`extra` goes before the folder and URL).
fn sync_cmd(client: &str, local: &Path, url: &str, exclude: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg("300")
        .arg(client)
        .args([
            "--non-interactive",
            "-u",
            "alice",
            "-p",
            "secret",
            "--exclude",
        ])
        .arg(exclude);
    if client == "owncloudcmd" {
        // Exercise the retries inside one run, as the client does after a needed follow-up.
        cmd.args(["--max-sync-retries", "3"]);
    }
    cmd.args(extra).arg(local).arg(url);
    cmd
}

/// `diff -r`, ignoring the clients' journals.
fn same_tree(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .args([
            "-r",
            "--exclude=.sync_*",
            "--exclude=.owncloudsync.log",
            "--exclude=.sync-exclude.lst",
        ])
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trees differ:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-u", "alice:secret"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scenario(client: &str, expected_protocol: &str) {
    assert!(have(client), "{client} is not installed");
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    assert!(add_user(&data, "alice").status.success());
    let server = Server::start(&data, Some(&work.path().join("server.log")));
    let url = server.url();
    let (exclude, a, b, c) = sync_folders(work.path());

    // 1. Up, then a fresh download: byte-identical.
    build_tree(&a);
    sync(client, &a, &url, &exclude);
    let log = server.log_text();
    assert!(
        log.contains("upload complete")
            && log.contains(&format!("protocol=\"{expected_protocol}\""))
            && log.contains("large.bin"),
        "{client} should upload the large file with {expected_protocol}; server log:\n{}",
        log.lines()
            .filter(|l| l.contains("upload complete"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    sync(client, &b, &url, &exclude);
    same_tree(&a, &b);

    // 2. Local changes (edit, rename, delete) and server-side changes, then sync both ways.
    std::thread::sleep(Duration::from_millis(1100));
    write(
        &a.join("d0/e0/small 0.txt"),
        b"edited locally, longer than before\n",
    );
    std::fs::rename(a.join("d1/e1/small 1.txt"), a.join("d1/e1/renamed 1.txt")).unwrap();
    std::fs::remove_file(a.join("d2/e2/small 2.txt")).unwrap();
    let dav = format!("{url}/remote.php/dav/files/alice");
    curl(&["-T", "-", &format!("{dav}/server%20side.txt")]); // empty body from stdin
    curl(&["-X", "DELETE", &format!("{dav}/d3/e0/small%203.txt")]);
    sync(client, &a, &url, &exclude);
    sync(client, &a, &url, &exclude); // must be a no-op
    assert!(a.join("server side.txt").exists() && !a.join("d3/e0/small 3.txt").exists());
    sync(client, &c, &url, &exclude);
    same_tree(&a, &c);
    sync(client, &b, &url, &exclude);
    same_tree(&a, &b);

    // 3. Conflict: both sides change one file (different sizes and mtimes).
    std::thread::sleep(Duration::from_millis(1100));
    write(&b.join("d4/e1/small 4.txt"), b"B wins on the server\n");
    sync(client, &b, &url, &exclude);
    std::thread::sleep(Duration::from_millis(1100));
    write(
        &a.join("d4/e1/small 4.txt"),
        b"A's local change, kept as a conflict copy, longer\n",
    );
    sync(client, &a, &url, &exclude);
    assert_eq!(
        std::fs::read(a.join("d4/e1/small 4.txt")).unwrap(),
        b"B wins on the server\n"
    );
    let conflict: Vec<PathBuf> = std::fs::read_dir(a.join("d4/e1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("conflict"))
        .collect();
    assert_eq!(conflict.len(), 1, "one conflict copy: {conflict:?}");
    assert_eq!(
        std::fs::read(&conflict[0]).unwrap(),
        b"A's local change, kept as a conflict copy, longer\n"
    );
    server.stop();
}

#[test]
#[ignore = "needs owncloudcmd (CI installs it)"]
fn owncloudcmd_syncs_both_ways_with_tus() {
    scenario("owncloudcmd", "tus");
}

#[test]
#[ignore = "needs nextcloudcmd (CI installs it)"]
fn nextcloudcmd_syncs_both_ways_with_chunking_ng() {
    scenario("nextcloudcmd", "chunking-ng");
}

/// nextcloudcmd over HTTPS with Hearth's own CA: refused while the CA is unknown, syncing with
/// `--trust`, and syncing without it once the CA is installed in the system trust store the Debian
/// way (`/usr/local/share/ca-certificates` + `update-ca-certificates`). The installation happens in
/// a private mount namespace (`unshare -m`, root), so the machine's real trust store is untouched.
#[test]
#[ignore = "needs nextcloudcmd, root and unshare (CI has them)"]
fn nextcloudcmd_over_https_with_trust_and_with_the_ca_installed() {
    assert!(have("nextcloudcmd"), "nextcloudcmd is not installed");
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    assert!(add_user(&data, "alice").status.success());
    let server = Server::start(&data, None);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("https://localhost:{port}");
    let (exclude, a, b, c) = sync_folders(work.path());
    for i in 0..20 {
        write(
            &a.join(format!("dir {}/f{i}.txt", i % 3)),
            format!("{i}\n").repeat(i + 1).as_bytes(),
        );
    }
    write(&a.join("Grüße.txt"), "tls".as_bytes());

    // The CA is unknown to the client: the handshake fails and nothing is uploaded.
    let out = sync_cmd("nextcloudcmd", &a, &url, &exclude, &[])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown CA must be refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SSL handshake failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!data.join("files/alice/Grüße.txt").exists());

    // --trust: the user accepted the certificate.
    common::succeeded(
        sync_cmd("nextcloudcmd", &a, &url, &exclude, &["--trust"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        std::fs::read(data.join("files/alice/Grüße.txt")).unwrap(),
        b"tls"
    );

    // The CA installed in the system store (inside a private mount namespace).
    let trust = work.path().join("trust");
    std::fs::create_dir_all(trust.join("local")).unwrap();
    assert!(
        Command::new("cp")
            .args(["-a", "/etc/ssl/certs"])
            .arg(trust.join("certs"))
            .status()
            .unwrap()
            .success()
    );
    std::fs::copy(data.join("tls/ca.crt"), trust.join("local/hearth-test.crt")).unwrap();
    let sync_b = sync_cmd("nextcloudcmd", &b, &url, &exclude, &[]);
    let shell = format!(
        "set -e; mount --make-rprivate /; mount --bind '{certs}' /etc/ssl/certs; \
         mount --bind '{local}' /usr/local/share/ca-certificates; update-ca-certificates >/dev/null; \
         exec {cmd}",
        certs = trust.join("certs").display(),
        local = trust.join("local").display(),
        cmd = shell_words(&sync_b),
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nextcloudcmd with the CA installed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    same_tree(&a, &b);
    // Outside the namespace the CA is still unknown (the host's store was not touched).
    let out = sync_cmd("nextcloudcmd", &c, &url, &exclude, &[])
        .output()
        .unwrap();
    assert!(!out.status.success());
    server.stop();
}

/// A command line as one `sh` string (each word single-quoted).
fn shell_words(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w| format!("'{}'", w.to_string_lossy().replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn rclone(args: &[&str]) -> (bool, String) {
    let out = Command::new("timeout")
        .arg("300")
        .arg("rclone")
        .args([
            "--config",
            "/dev/null",
            "--retries",
            "1",
            "--low-level-retries",
            "2",
        ])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
#[ignore = "needs rclone (CI installs it)"]
fn rclone_copy_check_move_purge() {
    assert!(have("rclone"));
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    assert!(add_user(&data, "alice").status.success());
    let server = Server::start(&data, None);
    let obscured = Command::new("rclone")
        .args(["obscure", "secret"])
        .output()
        .unwrap();
    let pass = String::from_utf8_lossy(&obscured.stdout).trim().to_owned();
    let remote = format!(
        ":webdav,url='{}/remote.php/dav/files/alice',vendor=owncloud,user=alice,pass='{pass}':",
        server.url()
    );
    let local = work.path().join("L");
    for i in 0..20 {
        write(
            &local.join(format!("dir {i}/f{i}.txt")),
            format!("{i}").repeat(1000 + i).as_bytes(),
        );
    }
    write(&local.join("Grüße.txt"), b"unicode");
    write(&local.join("big.bin"), &vec![7u8; 3_000_000]);
    let l = local.to_str().unwrap();
    let dst = format!("{remote}tree");
    let (ok, out) = rclone(&["copy", l, &dst]);
    assert!(ok, "{out}");
    let (ok, out) = rclone(&["check", l, &dst]);
    assert!(
        ok && !out.contains("hashes could not be checked"),
        "check with checksums: {out}"
    );
    let (ok, out) = rclone(&["check", "--download", l, &dst]);
    assert!(ok, "{out}");
    // A second copy transfers nothing: sizes, mtimes (X-OC-Mtime) and hashes all match.
    let (ok, out) = rclone(&["copy", "-v", l, &dst]);
    assert!(
        ok && !out.contains("Copied"),
        "second copy re-uploaded:\n{out}"
    );
    let (ok, out) = rclone(&[
        "moveto",
        &format!("{dst}/dir 1"),
        &format!("{remote}moved dir"),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = rclone(&["lsf", "-R", "--files-only", &format!("{remote}moved dir")]);
    assert!(ok && out.contains("f1.txt"), "{out}");
    let (ok, out) = rclone(&["purge", &dst]);
    assert!(ok, "{out}");
    let (_, out) = rclone(&["lsf", &remote]);
    assert!(!out.contains("tree/"), "{out}");
    server.stop();
}
