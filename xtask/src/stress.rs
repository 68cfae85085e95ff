//! `cargo xtask stress-ci`: runs the README's test command several times, each in a fresh clone,
//! optionally beside a CPU hog, and reports every failure with the test's name. The tool to use
//! before trusting a green.
//!
//! Only committed work is tested (the clones are of `HEAD`). The clones share `.ci/run`'s build
//! cache (`CARGO_TARGET_DIR`, kept outside the clone) unless the caller sets another.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::util::{Result, output, root, run, step};

pub struct Options {
    pub runs: u32,
    /// Threads that spin on a core each for the whole time.
    pub hog: u32,
    /// Keep each clone and its log (they are removed after a passing run otherwise).
    pub keep: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options { runs: 3, hog: 0, keep: false };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut number = |name: &str| -> Result<u32> {
                it.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} takes a number"))
            };
            match a.as_str() {
                "--runs" => o.runs = number("--runs")?.max(1),
                "--hog" => o.hog = number("--hog")?,
                "--keep" => o.keep = true,
                other => return Err(format!("unknown option {other} (--runs N, --hog N, --keep)")),
            }
        }
        Ok(o)
    }
}

struct RunResult {
    seconds: u64,
    passed: bool,
    failures: Vec<String>,
    log: PathBuf,
}

pub fn stress(o: &Options) -> Result {
    let source = root();
    let head = output(Command::new("git").args(["rev-parse", "--short", "HEAD"]).current_dir(&source))?;
    let head = head.trim().to_string();
    let base = std::env::temp_dir().join(format!("trellis-stress-{}", std::process::id()));
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    eprintln!(
        "stress-ci: {} run(s) of `CI=true bash .ci/run` on {head}, each in a fresh clone under {}, {} hog thread(s)",
        o.runs,
        base.display(),
        o.hog
    );
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..o.hog)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x: u64 = 1;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100_000 {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for i in 1..=o.runs {
        step(&format!("stress-ci: run {i} of {}", o.runs));
        let r = one_run(&source, &base.join(format!("run-{i}")), o.keep);
        match &r {
            Ok(r) => eprintln!(
                "run {i}: {} in {}s{}",
                if r.passed { "passed" } else { "FAILED" },
                r.seconds,
                if r.failures.is_empty() { String::new() } else { format!(": {}", r.failures.join("; ")) }
            ),
            Err(e) => eprintln!("run {i}: could not run: {e}"),
        }
        results.push(r);
    }
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }

    let mut summary = format!(
        "# stress-ci on {head}: {} run(s), {} hog thread(s)\n\n| run | result | seconds | failures |\n|---|---|---|---|\n",
        o.runs, o.hog
    );
    let mut all_passed = true;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(r) => {
                all_passed &= r.passed;
                summary.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    i + 1,
                    if r.passed { "passed" } else { "FAILED" },
                    r.seconds,
                    if r.passed {
                        String::new()
                    } else {
                        format!("{} (log: {})", r.failures.join("; "), r.log.display())
                    }
                ));
            }
            Err(e) => {
                all_passed = false;
                summary.push_str(&format!("| {} | error | – | {e} |\n", i + 1));
            }
        }
    }
    std::fs::write(base.join("summary.md"), &summary).map_err(|e| e.to_string())?;
    eprintln!("\n{summary}\n(also in {})", base.join("summary.md").display());
    if all_passed {
        if !o.keep {
            let _ = std::fs::remove_dir_all(&base);
        }
        Ok(())
    } else {
        Err("at least one run failed (see the table above)".into())
    }
}

fn one_run(source: &Path, dir: &Path, keep: bool) -> Result<RunResult> {
    let _ = std::fs::remove_dir_all(dir);
    run(Command::new("git").arg("clone").arg("--quiet").arg(source).arg(dir.join("repo")))?;
    let log_path = dir.join("ci.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(".ci/run")
        .env("CI", "true")
        .current_dir(dir.join("repo"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .status()
        .map_err(|e| format!("cannot run .ci/run: {e}"))?;
    let seconds = started.elapsed().as_secs();
    let text = std::fs::File::open(&log_path).map_err(|e| e.to_string())?;
    let failures = failures(BufReader::new(text).lines().map_while(std::result::Result::ok));
    let passed = status.success();
    if passed && !keep {
        let _ = std::fs::remove_dir_all(dir.join("repo"));
    }
    let failures = if !passed && failures.is_empty() {
        vec![format!(".ci/run exited with {status} (no test named; see the log)")]
    } else {
        failures
    };
    Ok(RunResult { seconds, passed, failures, log: log_path })
}

/// The failing tests and steps a `.ci/run` log names: nextest's `FAIL`/`TIMEOUT`/signal lines
/// (each test once), and xtask's own `FAILED:` line.
fn failures(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let t = line.trim();
        let named = ["FAIL [", "TIMEOUT [", "SIGSEGV [", "SIGABRT [", "SIGKILL [", "LEAK-FAIL ["]
            .iter()
            .find(|p| t.starts_with(**p))
            .and_then(|p| t.split_once(']').map(|(_, name)| format!("{} {}", p.trim_end_matches(" ["), name.trim())));
        let named = named.or_else(|| t.strip_prefix("xtask: FAILED: ").map(|s| format!("step: {s}")));
        if let Some(n) = named
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_failing_test_once() {
        let log = [
            "        PASS [   0.120s] auth::it login::works",
            "        FAIL [  20.512s] worker::faults rabbitmq_cut_while_tasks_are_created",
            "     TIMEOUT [ 300.001s] trellis::e2e distributed_one_process_per_service",
            "------------",
            "        FAIL [  20.512s] worker::faults rabbitmq_cut_while_tasks_are_created",
            "xtask: FAILED: cargo nextest run exited with exit status: 100",
        ];
        assert_eq!(
            failures(log.iter().map(|s| s.to_string())),
            vec![
                "FAIL worker::faults rabbitmq_cut_while_tasks_are_created".to_string(),
                "TIMEOUT trellis::e2e distributed_one_process_per_service".to_string(),
                "step: cargo nextest run exited with exit status: 100".to_string(),
            ]
        );
    }

    #[test]
    fn options() {
        let o = Options::parse(&["--runs".into(), "5".into(), "--hog".into(), "1".into()]).unwrap();
        assert_eq!((o.runs, o.hog, o.keep), (5, 1, false));
        assert!(Options::parse(&["--runs".into()]).is_err());
    }
}
