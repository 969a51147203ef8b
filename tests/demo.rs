//! The README's first command: the circle demo runs to completion and its transcript shows the
//! removed member reading nothing new.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_circle_demo_runs_and_the_removed_member_reads_nothing_new() {
    // `cargo test` builds the examples next to the test binaries: target/<profile>/examples.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let demo = profile_dir
        .join("examples")
        .join(format!("circle_demo{}", std::env::consts::EXE_SUFFIX));
    assert!(
        demo.exists(),
        "the demo was not built at {}",
        demo.display()
    );
    let started = Instant::now();
    let mut child = Command::new(&demo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the demo starts");
    // Bounded: the demo takes seconds; give a loaded CI machine two minutes.
    loop {
        if child.try_wait().expect("waiting for the demo").is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the demo did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("the demo's output");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the demo failed:\n{transcript}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Ben    reads the guidelines",
        "(reply) \"Proud of you",
        "[content warning: relapse",
        "encourages: I see you, Ben.",
        "Walk 20 minutes a day    by Chloe  streak  6",
        "can read Dev's note: no",
        "Round: answered by",
        "caught up on all 20 messages",
        "Ben's new message readable by Dev: no",
        "The removed member read nothing new.",
    ] {
        assert!(
            transcript.contains(expected),
            "the transcript lacks `{expected}`:\n{transcript}"
        );
    }
    // The reply is shown after the message it answers (causal order).
    let message = transcript
        .rfind("Ben: Rough week")
        .expect("Ben's message in the timeline");
    let reply = transcript
        .rfind("Chloe: Proud of you")
        .expect("Chloe's reply in the timeline");
    assert!(
        message < reply,
        "the reply is shown before the message it answers:\n{transcript}"
    );
}
