//! Shared helpers for the tests that run the real `hearth` binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `hearth` binary with a data directory and quiet logs.
pub fn hearth(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.arg("--data-dir")
        .arg(dir)
        .env("HEARTH_LOG", "warn")
        .env_remove("HEARTH_DATA_DIR");
    c
}

/// `hearth user add NAME --password-stdin` with password `secret`.
pub fn add_user(dir: &Path, name: &str) -> std::process::Output {
    let mut child = hearth(dir)
        .args(["user", "add", name, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
    child.wait_with_output().unwrap()
}

/// A running server: the child, its address, and (when started with logs) its log file.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub log: Option<PathBuf>,
}

impl Server {
    /// Starts `hearth server` on port 0; with `log`, stderr at info level goes to that file.
    pub fn start(dir: &Path, log: Option<&Path>) -> Self {
        Self::start_inner(dir, log, &[])
    }

    /// Starts `hearth server` on port 0 with extra environment (`HEARTH_*` configuration).
    pub fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_inner(dir, None, env)
    }

    fn start_inner(dir: &Path, log: Option<&Path>, env: &[(&str, &str)]) -> Self {
        let mut cmd = hearth(dir);
        cmd.envs(env.iter().copied());
        cmd.args(["server", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped());
        if let Some(l) = log {
            cmd.env("HEARTH_LOG", "info")
                .stderr(std::fs::File::create(l).unwrap());
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("READY http=")
            .and_then(|r| r.split_whitespace().next())
            .expect("READY line")
            .to_owned();
        Self {
            child,
            addr,
            log: log.map(Path::to_path_buf),
        }
    }

    /// SIGTERM and wait; the exit status must be success.
    pub fn stop(mut self) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        assert!(self.child.wait().unwrap().success(), "SIGTERM exits 0");
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .unwrap_or_default()
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Asserts that a finished command succeeded (showing its stderr if not); its stdout.
pub fn succeeded(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

impl Drop for Server {
    /// A failed test must not leave its server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
