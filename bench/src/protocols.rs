//! Hearth-only workloads: TUS 1.0.0 and chunking-NG uploads of the large file, and a full
//! `owncloudcmd` sync of a small-file tree. nginx and Apache do not speak these protocols, so each
//! figure is measured next to hearth's own plain PUT of the same data, its baseline.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use tokio::process::Command;

use crate::dav::Dav;
use crate::metrics::Metric;
use crate::servers::{USER, log_tail};
use crate::workloads::{Scale, pattern, run_concurrent};

/// Lines of the exclude list given to `owncloudcmd` (Debian's build aborts without `--exclude`).
const EXCLUDES: &str = "*~\n~$*\n.~lock.*\n*.part\n*.filepart\n";
/// Seconds `owncloudcmd` may take before `timeout` stops it.
const SYNC_TIMEOUT_SECS: &str = "600";

/// MB/s (10^6 B/s) for `bytes` transferred since `started`.
fn mbps(bytes: u64, started: Instant) -> f64 {
    bytes as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-9)
}

/// Size of the chunk that starts at `offset` of a `len`-byte upload cut into `step`-byte chunks.
fn chunk_len(len: u64, offset: u64, step: usize) -> usize {
    usize::try_from((len - offset).min(step as u64)).unwrap_or(step)
}

/// A random transfer id (hex of 8 bytes from /dev/urandom).
fn transfer_id() -> Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// GETs `path` (counting, not keeping, the bytes), checks the length, then deletes the file.
async fn verify_and_delete(dav: &Dav, path: &str, len: u64) -> Result<()> {
    let got = dav.get_count(path).await?;
    if got != len {
        bail!("GET {path} after the upload: got {got} bytes, expected {len}");
    }
    dav.delete(path).await
}

/// The baseline: one plain streaming PUT of `len` bytes (MB/s), checked by GET and deleted.
async fn plain_put(dav: &Dav, path: &str, len: u64, chunk: Bytes) -> Result<f64> {
    let started = Instant::now();
    dav.put_stream(path, len, chunk).await?;
    let rate = mbps(len, started);
    verify_and_delete(dav, path, len).await?;
    Ok(rate)
}

/// `tus`: the large file as a TUS creation-with-upload `POST` (first 10 MB chunk) and one `PATCH`
/// per further chunk, every `Upload-Offset` checked; then the plain PUT baseline.
pub async fn tus(dav: &Dav, scale: &Scale, tag: &str) -> Result<Vec<(Metric, f64)>> {
    let len = scale.large_bytes;
    let step = scale.upload_chunk.max(1);
    let chunk = pattern(step, 13);
    let name = format!("{tag}-tus.bin");

    let started = Instant::now();
    let first = chunk.slice(..chunk_len(len, 0, step));
    let mut offset = first.len() as u64;
    let location = dav.tus_create("", &name, len, first).await?;
    while offset < len {
        let part = chunk.slice(..chunk_len(len, offset, step));
        let n = part.len() as u64;
        dav.tus_patch(&location, offset, part).await?;
        offset += n;
    }
    let rate = mbps(len, started);
    verify_and_delete(dav, &name, len).await?;

    let plain = plain_put(dav, &format!("{tag}-tus-plain.bin"), len, chunk).await?;
    Ok(vec![(Metric::TusPut, rate), (Metric::PlainPut, plain)])
}

/// `chunked`: the large file via chunking NG (MKCOL transfer, PUT 10 MB chunks named by their
/// 16-digit offset, MOVE `.file` to the destination); then the plain PUT baseline.
pub async fn chunked(dav: &Dav, scale: &Scale, tag: &str) -> Result<Vec<(Metric, f64)>> {
    let len = scale.large_bytes;
    let step = scale.upload_chunk.max(1);
    let chunk = pattern(step, 17);
    let dest = format!("{tag}-chunked.bin");
    let transfer = format!("bench-{}", transfer_id()?);

    let started = Instant::now();
    dav.chunked_begin(&transfer, len).await?;
    let mut offset = 0u64;
    while offset < len {
        let part = chunk.slice(..chunk_len(len, offset, step));
        let n = part.len() as u64;
        dav.chunked_put(&transfer, offset, part).await?;
        offset += n;
    }
    dav.chunked_finish(&transfer, &dest, len).await?;
    let rate = mbps(len, started);
    verify_and_delete(dav, &dest, len).await?;

    let plain = plain_put(dav, &format!("{tag}-chunked-plain.bin"), len, chunk).await?;
    Ok(vec![(Metric::ChunkedPut, rate), (Metric::PlainPut, plain)])
}

/// `owncloudcmd` on PATH, if installed (Debian package owncloud-client-cmd).
pub fn owncloudcmd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("owncloudcmd"))
        .find(|p| p.is_file())
}

/// The sync tree: (folder, file name, size) of every file; 1–8 KiB, spread over the folders.
fn sync_tree(scale: &Scale) -> Vec<(String, String, usize)> {
    let folders = scale.sync_folders.max(1);
    (0..scale.sync_files)
        .map(|i| {
            // A fixed spread of sizes from 1 KiB to 8 KiB (1024 + 0..=7168).
            let size = 1024 + (i * 7919) % 7169;
            (
                format!("folder-{:02}", i % folders),
                format!("file-{i:05}.bin"),
                size,
            )
        })
        .collect()
}

/// Content of file `i` of the sync tree.
fn sync_body(i: usize, size: usize) -> Bytes {
    pattern(size, (i % 251) as u8)
}

/// `sync`: writes the tree below `dir/local`, runs a full `owncloudcmd` sync of it into the
/// (fresh, empty) account behind `dav` (seconds), checks the exit code, the listing of every
/// folder and the content of every file; then the baseline, a plain MKCOL + PUT of the same tree
/// into `plain/`.
pub async fn sync(
    dav: &Dav,
    scale: &Scale,
    password: &str,
    cmd: &Path,
    dir: &Path,
) -> Result<Vec<(Metric, f64)>> {
    let tree = sync_tree(scale);
    let local = dir.join("local");
    let home = dir.join("home");
    for p in [&local, &home] {
        std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    }
    for (i, (folder, name, size)) in tree.iter().enumerate() {
        let folder = local.join(folder);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let file = folder.join(name);
        std::fs::write(&file, sync_body(i, *size))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let exclude = dir.join("exclude.lst");
    std::fs::write(&exclude, EXCLUDES).with_context(|| format!("writing {}", exclude.display()))?;
    let log = dir.join("owncloudcmd.log");
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;

    let started = Instant::now();
    let status = Command::new("timeout")
        .arg(SYNC_TIMEOUT_SECS)
        .arg(cmd)
        .args(["--non-interactive", "-u", USER, "-p", password, "--exclude"])
        .arg(&exclude)
        .arg(&local)
        .arg(dav.origin())
        .env("HOME", &home)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .status()
        .await
        .context("running timeout/owncloudcmd")?;
    let secs = started.elapsed().as_secs_f64();
    match status.code() {
        Some(0) => {}
        Some(124) => bail!(
            "owncloudcmd did not finish within {SYNC_TIMEOUT_SECS} s; log {}:\n{}",
            log.display(),
            log_tail(&log)
        ),
        _ => bail!(
            "owncloudcmd exited with {status}; log {}:\n{}",
            log.display(),
            log_tail(&log)
        ),
    }
    let folders = scale.sync_folders.max(1);
    let n = dav.propfind("", "1").await?;
    if n != folders + 1 {
        bail!(
            "PROPFIND Depth 1 on the account root after the sync: {n} <response> elements, expected {} (the root and {folders} folders)",
            folders + 1
        );
    }
    verify_tree(dav, scale, &tree, "").await?;

    // Baseline: the same tree as plain MKCOL + PUT requests at the desktop client's concurrency.
    let started = Instant::now();
    dav.mkcol("plain/").await?;
    for f in 0..scale.sync_folders.max(1) {
        dav.mkcol(&format!("plain/folder-{f:02}/")).await?;
    }
    let (d, files) = (dav.clone(), std::sync::Arc::new(tree.clone()));
    run_concurrent(tree.len(), scale.sync_concurrency, move |i| {
        let (d, files) = (d.clone(), files.clone());
        async move {
            let Some((folder, name, size)) = files.get(i) else {
                bail!("no file {i} in the tree")
            };
            d.put(&format!("plain/{folder}/{name}"), sync_body(i, *size))
                .await
        }
    })
    .await?;
    let plain = started.elapsed().as_secs_f64();
    verify_tree(dav, scale, &tree, "plain/").await?;
    Ok(vec![(Metric::Sync, secs), (Metric::SyncPlain, plain)])
}

/// PROPFIND Depth 1 on every folder of the tree below `prefix` must list exactly its files, and
/// a GET of every file must return its content.
async fn verify_tree(
    dav: &Dav,
    scale: &Scale,
    tree: &[(String, String, usize)],
    prefix: &str,
) -> Result<()> {
    for f in 0..scale.sync_folders.max(1) {
        let folder = format!("folder-{f:02}");
        let expected = tree.iter().filter(|(d, _, _)| *d == folder).count() + 1;
        let path = format!("{prefix}{folder}/");
        let n = dav.propfind(&path, "1").await?;
        if n != expected {
            bail!(
                "PROPFIND Depth 1 on {path}: {n} <response> elements, expected {expected} (the folder and its {} files)",
                expected - 1
            );
        }
    }
    let (d, files, prefix) = (
        dav.clone(),
        std::sync::Arc::new(tree.to_vec()),
        prefix.to_owned(),
    );
    run_concurrent(tree.len(), scale.concurrency, move |i| {
        let (d, files, prefix) = (d.clone(), files.clone(), prefix.clone());
        async move {
            let Some((folder, name, size)) = files.get(i) else {
                bail!("no file {i} in the tree")
            };
            d.get_exact(&format!("{prefix}{folder}/{name}"), &sync_body(i, *size))
                .await
        }
    })
    .await?;
    Ok(())
}
