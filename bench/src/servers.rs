//! Starting and stopping the servers under test: `hearth server`, nginx (dav + dav_ext) and Apache
//! (mod_dav_fs), each in the foreground on 127.0.0.1 with a generated config and a fresh data dir.

use std::fmt;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::dav::Dav;
use crate::{procstat, reference};

/// The user every server authenticates.
pub const USER: &str = "bench";
/// Path of the user's files below the server root; the same on all servers so URLs match.
const DAV_PATH: &str = "remote.php/dav/files/bench";

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Hearth,
    Nginx,
    Apache,
}

impl Kind {
    /// Lower-case name used on the command line, in the table and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hearth => "hearth",
            Kind::Nginx => "nginx",
            Kind::Apache => "apache",
        }
    }

    /// Parses a `--servers` entry.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hearth" => Ok(Kind::Hearth),
            "nginx" => Ok(Kind::Nginx),
            "apache" | "apache2" | "httpd" => Ok(Kind::Apache),
            other => bail!("unknown server {other:?} (expected hearth, nginx or apache)"),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the server binaries and modules are.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub hearth: PathBuf,
    pub nginx: PathBuf,
    pub nginx_modules: PathBuf,
    pub apache: PathBuf,
    pub apache_modules: PathBuf,
}

/// A running server.
pub struct Running {
    pub kind: Kind,
    /// Client bound to the user's base collection.
    pub dav: Dav,
    /// Spawn → ready (hearth: READY line; nginx/Apache: first successful OPTIONS).
    pub startup: Duration,
    child: Child,
    pid: u32,
    log: PathBuf,
    stopped: bool,
}

/// Picks a free loopback port (bind port 0, read it, close).
pub(crate) fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a probe port")?;
    Ok(listener.local_addr()?.port())
}

/// Last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    if tail.is_empty() {
        format!("({} is empty)", path.display())
    } else {
        tail
    }
}

pub(crate) fn mkdirs(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))
}

pub(crate) fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn log_file(path: &Path) -> Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))
}

/// Creates the user's data directory `data/remote.php/dav/files/bench`.
pub(crate) fn make_data_dir(data: &Path) -> Result<PathBuf> {
    let files = data.join(DAV_PATH);
    mkdirs(&files)?;
    Ok(files)
}

/// Starts a server of `kind` in a fresh directory `dir` (which must not exist yet).
pub async fn start(kind: Kind, bins: &Binaries, dir: &Path, password: &str) -> Result<Running> {
    mkdirs(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let running = match kind {
        Kind::Hearth => start_hearth(bins, dir, password).await,
        Kind::Nginx => reference::start_nginx(bins, dir, password).await,
        Kind::Apache => reference::start_apache(bins, dir, password).await,
    };
    running.with_context(|| format!("starting {kind} (files in {})", dir.display()))
}

async fn start_hearth(bins: &Binaries, dir: &Path, password: &str) -> Result<Running> {
    if !bins.hearth.is_file() {
        bail!(
            "hearth binary not found at {} (build it with `cargo build --release`, pass --hearth PATH, \
             or leave it out with --servers nginx,apache)",
            bins.hearth.display()
        );
    }
    let data = dir.join("data");
    mkdirs(&data)?;
    let log = dir.join("hearth.log");

    let mut add = Command::new(&bins.hearth)
        .arg("--data-dir")
        .arg(&data)
        .args(["user", "add", USER, "--password-stdin"])
        .env("HEARTH_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", bins.hearth.display()))?;
    if let Some(mut stdin) = add.stdin.take() {
        stdin.write_all(format!("{password}\n").as_bytes()).await?;
        stdin.shutdown().await?;
    }
    let out = add.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "`hearth user add {USER} --password-stdin` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let spawned = Instant::now();
    let mut child = Command::new(&bins.hearth)
        .arg("--data-dir")
        .arg(&data)
        .args(["server", "--listen", "127.0.0.1:0"])
        .env("HEARTH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(&log)?)
        .spawn()
        .with_context(|| format!("running {}", bins.hearth.display()))?;
    let pid = child.id().context("hearth exited at once")?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            // `READY http=ADDR [https=ADDR]`
            if let Some(addr) = line
                .trim()
                .strip_prefix("READY http=")
                .and_then(|r| r.split_whitespace().next())
            {
                return Ok(addr.to_owned());
            }
        }
        bail!("hearth closed stdout without printing `READY http=ADDR`")
    })
    .await;
    let startup = spawned.elapsed();
    let mut running = Running {
        kind: Kind::Hearth,
        dav: Dav::new("http://127.0.0.1/", USER, password)?,
        startup,
        child,
        pid,
        log: log.clone(),
        stopped: false,
    };
    let addr = match addr {
        Ok(Ok(addr)) => addr,
        Ok(Err(e)) => bail!("{e:#}; log:\n{}", log_tail(&log)),
        Err(_) => bail!("no READY line within 30 s; log:\n{}", log_tail(&log)),
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    running.dav = Dav::new(&format!("http://{addr}/{DAV_PATH}/"), USER, password)?;
    running
        .dav
        .options()
        .await
        .with_context(|| format!("OPTIONS after READY; log:\n{}", log_tail(&log)))?;
    Ok(running)
}

/// Spawns nginx/Apache and polls OPTIONS until it answers 2xx; the startup time is spawn → that answer.
pub(crate) async fn spawn_and_probe(
    kind: Kind,
    mut cmd: Command,
    port: u16,
    password: &str,
    logs: &[PathBuf],
) -> Result<Running> {
    let dav = Dav::new(
        &format!("http://127.0.0.1:{port}/{DAV_PATH}/"),
        USER,
        password,
    )?;
    let spawned = Instant::now();
    let child = cmd.spawn().with_context(|| format!("spawning {kind}"))?;
    let pid = child.id().context("server exited at once")?;
    let mut running = Running {
        kind,
        dav,
        startup: Duration::ZERO,
        child,
        pid,
        log: logs.last().cloned().unwrap_or_default(),
        stopped: false,
    };
    let tails = || {
        logs.iter()
            .map(|l| log_tail(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    loop {
        if let Some(status) = running.child.try_wait()? {
            running.stopped = true;
            bail!(
                "{kind} exited with {status} before answering; logs:\n{}",
                tails()
            );
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            match running.dav.options().await {
                Ok(()) => break,
                Err(e) if spawned.elapsed() > Duration::from_secs(20) => {
                    bail!("{kind} never answered OPTIONS: {e:#}; logs:\n{}", tails())
                }
                Err(_) => {}
            }
        }
        if spawned.elapsed() > Duration::from_secs(20) {
            bail!(
                "{kind} did not accept connections on port {port} within 20 s; logs:\n{}",
                tails()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    running.startup = spawned.elapsed();
    Ok(running)
}

impl Running {
    /// Pid of the server's main process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Summed memory of the server's process tree now.
    pub fn mem(&self) -> procstat::TreeMem {
        procstat::tree_mem(self.pid)
    }

    fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    /// SIGTERM, then waits up to 10 s (SIGKILL after that). Returns a warning if the exit was unclean.
    pub async fn stop(mut self) -> Option<String> {
        self.stopped = true;
        self.signal(rustix::process::Signal::TERM);
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => None,
            Ok(Ok(status)) => Some(format!(
                "{} exited with {status} after SIGTERM; log {}:\n{}",
                self.kind,
                self.log.display(),
                log_tail(&self.log)
            )),
            Ok(Err(e)) => Some(format!("{}: waiting for exit: {e}", self.kind)),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                Some(format!(
                    "{} ignored SIGTERM for 10 s and was killed",
                    self.kind
                ))
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        // Error path: stop the server (and, for nginx/Apache, its workers) before the temp dir goes.
        self.signal(rustix::process::Signal::TERM);
        for _ in 0..500 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.start_kill();
    }
}
