//! The real `hearth` binary: account creation from a script, the READY line on port 0, a polite
//! refusal of `user add` while a server holds the data directory, and SIGTERM → exit 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

mod common;
use common::{add_user, hearth};

#[test]
fn cli_user_and_server_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    assert!(add_user(dir.path(), "alice").status.success());
    let dup = add_user(dir.path(), "alice");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let list = hearth(dir.path()).args(["user", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).starts_with("alice\t"));

    let mut server = hearth(dir.path())
        .args(["server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // `READY http=ADDR https=ADDR`: TLS is on by default, on the same port.
    let addr = line
        .trim()
        .strip_prefix("READY http=")
        .and_then(|r| r.split_whitespace().next())
        .expect("READY line");
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{line}"
    );

    let busy = add_user(dir.path(), "bob");
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use by a running Hearth server"));

    let pid = rustix::process::Pid::from_raw(i32::try_from(server.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(server.wait().unwrap().success(), "SIGTERM exits 0");
    assert!(
        add_user(dir.path(), "bob").status.success(),
        "works once the server stopped"
    );
}

#[test]
fn unknown_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hearth.toml"), "listn = \"127.0.0.1:0\"\n").unwrap();
    let out = hearth(dir.path()).args(["user", "list"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listn"));
}

/// Sends a raw HTTP request and returns the whole response.
fn http(addr: &str, head: &str, body: &[u8]) -> String {
    use std::io::Read;
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(body).unwrap();
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    out
}

fn put_head(addr: &str, name: &str, len: usize) -> String {
    format!(
        "PUT /remote.php/dav/files/alice/{name} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

#[test]
fn kill_9_mid_upload_never_leaves_a_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(add_user(dir.path(), "alice").status.success());
    // `Server` kills its child on drop: a failing assertion leaves no server running.
    let mut server = common::Server::start(dir.path(), None);
    let addr = server.addr.clone();
    let old = vec![b'o'; 100_000];
    assert!(http(&addr, &put_head(&addr, "big.bin", old.len()), &old).starts_with("HTTP/1.1 201"));

    // Two uploads in flight, one replacing big.bin and one creating new.bin, each half sent.
    let mut streams = Vec::new();
    for name in ["big.bin", "new.bin"] {
        let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
        tcp.write_all(put_head(&addr, name, 8_000_000).as_bytes())
            .unwrap();
        tcp.write_all(&vec![b'n'; 4_000_000]).unwrap();
        tcp.flush().unwrap();
        streams.push(tcp);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    drop(streams);

    let files = dir.path().join("files/alice");
    assert_eq!(
        std::fs::read(files.join("big.bin")).unwrap(),
        old,
        "old content, whole"
    );
    assert!(
        !files.join("new.bin").exists(),
        "no partial file under the real name"
    );

    let server = common::Server::start(dir.path(), None);
    let addr = server.addr.clone();
    assert_eq!(
        std::fs::read_dir(dir.path().join("system/tmp"))
            .unwrap()
            .count(),
        0,
        "leftovers cleaned"
    );
    let get = http(
        &addr,
        &format!(
            "GET /remote.php/dav/files/alice/big.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nConnection: close\r\n\r\n"
        ),
        b"",
    );
    assert!(
        get.starts_with("HTTP/1.1 200") && get.ends_with(&"o".repeat(1000)),
        "served whole after restart"
    );
    server.stop();
}

/// `hearth app-password add|list|revoke` on a stopped server: the printed password works over
/// Basic auth (also with `account_password_basic = false`), shows up as used, and stops working
/// once revoked; bad input gets a clear error.
#[test]
fn cli_app_passwords() {
    let dir = tempfile::tempdir().unwrap();
    assert!(add_user(dir.path(), "alice").status.success());
    let out = hearth(dir.path())
        .args(["app-password", "add", "alice", "laptop rclone"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let secret = common::succeeded(out).trim().to_owned();
    assert!(secret.len() >= 24, "{secret}");
    assert!(stderr.contains("not shown again"));
    let list = |dir: &std::path::Path| {
        let out = hearth(dir)
            .args(["app-password", "list", "alice"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = list(dir.path());
    let fields: Vec<&str> = listed.trim().split('\t').collect();
    assert_eq!(fields.len(), 4, "{listed}");
    let id = fields[0].to_owned();
    assert_eq!(fields[1], "laptop rclone");
    assert_eq!(fields[3], "never");
    assert!(!listed.contains(&secret), "the secret is never listed");

    let propfind = |addr: &str, pass: &str| {
        let auth = format!("alice:{pass}");
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "PROPFIND",
            ])
            .args(["-H", "Depth: 0", "-u", &auth])
            .arg(format!("http://{addr}/remote.php/dav/files/alice/"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let server = common::Server::start_with_env(
        dir.path(),
        &[("HEARTH_AUTH__ACCOUNT_PASSWORD_BASIC", "false")],
    );
    assert_eq!(propfind(&server.addr, &secret), "207");
    assert_eq!(
        propfind(&server.addr, "secret"),
        "401",
        "account password off"
    );
    server.stop();
    assert_ne!(list(dir.path()).trim().split('\t').nth(3), Some("never"));

    // Unknown user, unknown id: clear errors, nothing changed.
    let out = hearth(dir.path())
        .args(["app-password", "add", "nobody", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user nobody"));
    let out = hearth(dir.path())
        .args(["app-password", "revoke", "alice", "nosuchid"])
        .output()
        .unwrap();
    assert!(!out.status.success());

    common::succeeded(
        hearth(dir.path())
            .args(["app-password", "revoke", "alice", &id])
            .output()
            .unwrap(),
    );
    assert_eq!(list(dir.path()).trim(), "");
    let server = common::Server::start(dir.path(), None);
    assert_eq!(propfind(&server.addr, &secret), "401", "revoked");
    server.stop();
}

/// The allocator setting from `.cargo/config.toml` (one jemalloc arena, which keeps peak RSS of
/// large listings low) is compiled into the binary.
#[test]
fn jemalloc_is_built_with_one_arena() {
    let bin = std::fs::read(env!("CARGO_BIN_EXE_hearth")).unwrap();
    let needle = b"narenas:1";
    assert!(
        bin.windows(needle.len()).any(|w| w == needle),
        "JEMALLOC_SYS_WITH_MALLOC_CONF from .cargo/config.toml did not reach the build"
    );
}
