//! Records the git commit the binary is built from (`TESSERA_COMMIT`, read
//! by the run directories' provenance records), when it is built inside a
//! git checkout with `git` on the path; otherwise nothing, and the records
//! say the commit is unknown.

use std::process::Command;

fn main() {
    // A commit or a checkout changes HEAD or the index; nothing else here
    // needs this script to run again.
    for file in ["../../.git/HEAD", "../../.git/index"] {
        println!("cargo:rerun-if-changed={file}");
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()));
    if let Some(commit) = commit {
        println!("cargo:rustc-env=TESSERA_COMMIT={commit}");
    }
}
