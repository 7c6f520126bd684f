//! `--threads` of `tessera bench constraint` and `bench scaling`: 0 and more
//! than the bound are refused up front with the bound in the message (rayon
//! alone would take 0 as "one per core" and try to start a million threads),
//! and the bounds themselves run.

mod cli_support;

use std::process::Output;

use cli_support::{ok, tessera};
use serde_json::Value;

/// The documented bound of `--threads`: 1024, or the core count where that
/// is larger (`commands::bench::MAX_THREADS`).
fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.max(1024)
}

/// `tessera bench <command>` on a tiny diffusion–sorption problem with
/// `--threads threads`.
fn bench(command: &str, threads: &str) -> Output {
    let tiny = ["--pde", "diffusion-sorption", "--nt", "9", "--nx", "32"];
    let args: &[&str] = match command {
        "constraint" => &["--basis", "5", "--points", "8", "--runs", "1", "--json"],
        "scaling" => &["--basis", "5", "--points", "8", "--repeats", "1"],
        other => unreachable!("no benchmark `{other}` here"),
    };
    tessera()
        .args(["bench", command])
        .args(tiny)
        .args(args)
        .args(["--threads", threads])
        .output()
        .unwrap()
}

#[test]
fn threads_outside_one_to_the_bound_are_refused() {
    let max = max_threads();
    let one_past = (max + 1).to_string();
    let cases = [
        ("0", "invalid --threads = 0: must be at least 1".to_owned()),
        (one_past.as_str(), format!("must be at most {max}")),
        ("1000000", format!("must be at most {max}")),
        ("18446744073709551615", format!("must be at most {max}")),
    ];
    for command in ["constraint", "scaling"] {
        for (threads, message) in &cases {
            let output = bench(command, threads);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let at = format!("bench {command} --threads {threads}");
            assert_eq!(output.status.code(), Some(1), "{at}: {stderr}");
            assert!(stderr.contains(message.as_str()), "{at}: {stderr}");
            assert!(output.stdout.is_empty(), "{at}: a report was printed");
        }
    }
}

/// The bounds themselves run, with as many threads as asked for.
#[test]
fn threads_at_the_bounds_run_with_that_many() {
    for threads in [1, max_threads()] {
        let output = ok(bench("constraint", &threads.to_string()));
        let reports: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(reports[0]["threads"], threads, "{}", reports[0]);
    }
}
