//! gotalk.js's unit tests (node's built-in test runner), so that `cargo test` covers the
//! JavaScript library the crate serves. Needs Node.js 18 or later on the PATH. (The
//! end-to-end tests in headless Chromium are `gotalk/js/e2e/`, run by `.ci/run`.)

#[test]
fn gotalk_js_unit_tests_pass() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/js");
    let out = std::process::Command::new("node")
        .args(["--test", "test/"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): gotalk.js's tests need Node.js 18+"));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("# fail 0"), "{report}");
}
