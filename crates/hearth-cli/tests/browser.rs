//! The web app in a real browser: runs `tests/browser/web.mjs` (playwright-core driving
//! Debian's Chromium, axe-core scanning every screen) against the `hearth` binary this build
//! made. Node builds nothing here; it only drives the browser.
//!
//! Prerequisites: `/usr/bin/chromium` (or `$CHROMIUM`), `node`, and the npm packages of
//! `tests/browser` (`npm ci` there; `scripts/test.sh` does it). When one is missing the test
//! says so loudly and passes, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest the whole browser scenario may run before it is killed.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What is missing to run the browser tests, if anything.
fn missing_prerequisites(chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !chromium.exists() {
        missing.push(format!(
            "Chromium at {} (Debian package `chromium`)",
            chromium.display()
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        missing.push("Node.js (`node`, Debian package `nodejs`)".to_owned());
    }
    for package in ["playwright-core", "axe-core"] {
        if !browser_dir().join("node_modules").join(package).exists() {
            missing.push(format!(
                "the npm package {package} (run `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci` in {})",
                browser_dir().display()
            ));
        }
    }
    missing
}

/// Where the screenshots go: under the target directory, so a person can look at them.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("browser-screenshots")
}

#[test]
fn the_web_app_in_chromium_two_members_a_circle_and_the_front_door() {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let missing = missing_prerequisites(&chromium);
    if !missing.is_empty() {
        let text = format!(
            "\n!!! THE BROWSER TESTS CANNOT RUN: missing {}.\n!!! `bash scripts/test.sh` installs them.\n",
            missing.join("; ")
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{text}");
        }
        eprintln!("{text}");
        return;
    }
    let shots = screenshot_dir();
    let mut command = Command::new("node");
    // Its own process group, so a stuck scenario is stopped with its daemons and browser.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .arg(browser_dir().join("web.mjs"))
        .current_dir(browser_dir())
        .env("HEARTH_BIN", env!("CARGO_BIN_EXE_hearth"))
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .spawn()
        .expect("node starts");
    let deadline = Instant::now() + SCENARIO_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the scenario can be waited for") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!(
                "the browser scenario ran longer than {} s and was stopped",
                SCENARIO_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "the browser scenario failed ({status}); its output is above, screenshots in {}",
        shots.display()
    );
}
