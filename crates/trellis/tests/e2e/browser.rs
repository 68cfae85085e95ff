//! The web app's browser suite (`web/e2e/app.mjs`: playwright-core driving Debian's Chromium)
//! against a deployment, so the distributed one (the gateway's WebSocket tunnel, cookies through
//! the proxy, presigned downloads from S3) is driven by a real browser too; `cargo xtask ci`
//! runs the same suite against the all-in-one binary.

use std::path::PathBuf;

/// Runs the suite against `base` with an administrator's credentials; panics with its output
/// when it fails, or when its tools are missing (`cargo xtask ci` installs them).
pub async fn suite(base: &str, admin_email: &str, admin_password: &str, shots: &str) {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web");
    assert!(
        web.join("node_modules/playwright-core").is_dir() && web.join("node_modules/axe-core").is_dir(),
        "web/node_modules is missing: run `npm ci` in web/ (cargo xtask ci does)"
    );
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(std::path::Path::new(&chromium).exists(), "{chromium} is missing: apt-get install chromium");
    let out = tokio::process::Command::new("node")
        .arg("e2e/app.mjs")
        .current_dir(&web)
        .env("TRELLIS_URL", base)
        .env("ADMIN_EMAIL", admin_email)
        .env("ADMIN_PASSWORD", admin_password)
        .env("E2E_SHOTS", shots)
        .output()
        .await
        .expect("node must be installed (cargo xtask ci installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser suite failed against {base}:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all steps passed"), "{stdout}");
}
