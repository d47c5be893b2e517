//! The litmus WebDAV compliance suite (Debian package `litmus`) against a real server: every
//! suite must pass with no failures and no skipped tests. Gated with `#[ignore]` so a bare
//! `cargo test` needs nothing installed; CI installs litmus and runs it with `--include-ignored`.

use crate::harness::*;

#[tokio::test]
#[ignore = "needs the litmus binary (CI installs it)"]
async fn litmus_passes_every_suite() {
    let s = TestServer::start().await;
    assert_eq!(s.mkcol("litmus-tests").await, 201);
    let url = s.dav("litmus-tests/");
    let work = tempfile::tempdir().unwrap();
    let mut total = 0;
    for suite in ["basic", "copymove", "props", "locks", "http"] {
        let out = tokio::process::Command::new("litmus")
            .args(["-k", &url, "alice", "secret"])
            .env("TESTS", suite)
            .current_dir(work.path())
            .output()
            .await
            .expect("litmus is installed");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let summary = text
            .lines()
            .find(|l| l.contains("summary for"))
            .unwrap_or_else(|| panic!("suite {suite} printed no summary:\n{text}"));
        assert!(summary.contains(" 0 failed"), "{suite}: {summary}\n{text}");
        assert!(!text.contains("skipped"), "{suite} skipped tests:\n{text}");
        let passed: usize = summary
            .split("run: ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        total += passed;
    }
    assert!(total >= 104, "litmus passed {total} tests");
    s.stop().await;
}
