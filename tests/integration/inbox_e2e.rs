//! The inbox page end to end in Debian's Chromium, driven by playwright-core
//! (`tests/e2e/inbox.mjs`) against `parley demo`: sign in, a message arriving live, an
//! image, a reply and its delivery tick, refused replies' errors, an approval.
//! Screenshots go to `target/e2e-screenshots` (or `E2E_SCREENSHOTS`). Without Chromium or
//! Node.js the test says SKIPPED, unless `CI` is set: then it fails.

use crate::helpers::free_port;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is missing, and CI is set (.ci/run installs it)");
    }
    eprintln!("SKIPPED: {what} is missing");
}

fn works(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[actix_rt::test]
async fn the_inbox_works_in_chromium() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !works(&chromium, "--version") {
        return missing(&format!("Chromium ({chromium})"));
    }
    if !works("node", "--version") || !works("npm", "--version") {
        return missing("Node.js");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let e2e = root.join("tests/e2e");
    if !e2e.join("node_modules/playwright-core").exists() {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&e2e)
            .status()
            .expect("npm runs");
        assert!(installed.success(), "npm ci failed in tests/e2e");
    }
    let shots = std::env::var_os("E2E_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/e2e-screenshots"));

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["demo", "--data-dir"])
        .arg(dir.path())
        .args(["--bind", &format!("127.0.0.1:{port}"), "--pace-ms", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("parley demo starts");
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("http://") => break line,
            Some(_) => continue,
            None => panic!("the demo stopped before printing its URL"),
        }
    };
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(e2e.join("inbox.mjs"))
            .arg(&url)
            .arg(&shots)
            .env("CHROMIUM_PATH", &chromium)
            .output()
            .expect("node runs")
    });
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser run ends within 4 minutes")
        .unwrap();
    demo.kill().ok();
    demo.wait().ok();
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the browser run failed:\n{said}");
    println!("{said}");
}
