//! Memory figures of a server's process tree, read from `/proc` (VmRSS / VmHWM summed over a root process and its descendants).

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Memory of one process tree, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeMem {
    /// Sum of the current resident set sizes (VmRSS).
    pub rss_kib: u64,
    /// Sum of the per-process resident high-water marks (VmHWM).
    pub hwm_kib: u64,
    /// Number of processes in the tree.
    pub processes: usize,
}

/// The parent pid of `pid`, from `/proc/PID/stat` (field 4, after the parenthesised command name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// `root` and every live descendant of it.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = parent_of(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        if let Some(kids) = children.get(&tree[next]) {
            tree.extend(kids.iter().copied());
        }
        next += 1;
    }
    tree
}

/// Reads one `Vm*:` line (in kB) from a `/proc/PID/status` text.
fn status_field(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Memory of `root` and its descendants right now.
pub fn tree_mem(root: u32) -> TreeMem {
    let mut mem = TreeMem::default();
    for pid in process_tree(root) {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            mem.rss_kib += status_field(&status, "VmRSS:");
            mem.hwm_kib += status_field(&status, "VmHWM:");
            mem.processes += 1;
        }
    }
    mem
}

/// Samples the summed VmRSS of a process tree every 100 ms in the background and keeps the maximum.
pub struct PeakSampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<u64>,
}

impl PeakSampler {
    /// Starts sampling the tree rooted at `root`.
    pub fn start(root: u32) -> Self {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut peak = 0u64;
            loop {
                peak = peak.max(tree_mem(root).rss_kib);
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            peak.max(tree_mem(root).rss_kib)
        });
        Self { stop, task }
    }

    /// Stops sampling; returns the highest summed VmRSS seen, in KiB.
    pub async fn finish(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or(0)
    }
}
