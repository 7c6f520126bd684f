//! Run-directory safety: a fresh start into a used directory is refused unless
//! forced, a held lock refuses a second run naming the holder, and a stale
//! lock (its process is gone) is reported and taken over only when asked.

mod train_support;

use tessera_solver::{Claim, LockHolder, RunDir, SolverError};
use train_support::temp_dir;

const FRESH: Claim = Claim {
    resume: false,
    force: false,
};

#[test]
fn a_second_claim_is_refused_while_the_first_holds_the_lock() {
    let dir = temp_dir("claim-held");
    let run = RunDir::new(dir.join("run"));
    let lock = run.claim(FRESH).unwrap();
    assert!(lock.path().exists());
    let err = run
        .claim(Claim {
            resume: true,
            force: true,
        })
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, SolverError::RunDirLocked { stale: false, .. }),
        "{err:?}"
    );
    assert!(
        message.contains(&format!("process {}", std::process::id())),
        "{message}"
    );
    drop(lock);
    assert!(!run.lock().exists(), "dropping the lock removes the file");
    // The directory holds nothing but the (removed) lock: a fresh start is fine.
    drop(run.claim(FRESH).unwrap());
}

/// A directory whose run failed before its training (its data generation,
/// say) holds only that command's provenance, the lock and an empty
/// `plots/`: a fresh start goes ahead there, keeping the provenance; one
/// file more (the user's, or a run's) makes it used again.
#[test]
fn a_directory_that_never_trained_takes_a_fresh_start() {
    let dir = temp_dir("claim-failed");
    let run = RunDir::new(dir.join("run"));
    drop(run.claim(FRESH).unwrap());
    run.create().unwrap();
    std::fs::write(run.provenance(), "{\"command\":[\"tessera\",\"run\"]}\n").unwrap();
    drop(run.claim(FRESH).unwrap());
    assert!(
        run.provenance().exists(),
        "the failed attempt's record stays"
    );
    std::fs::write(run.plots().join("loss.png"), "").unwrap();
    let err = run.claim(FRESH).unwrap_err();
    assert!(matches!(err, SolverError::RunDirNotEmpty { .. }), "{err:?}");
}

#[test]
fn a_used_directory_needs_resume_or_force() {
    let dir = temp_dir("claim-used");
    let run = RunDir::new(dir.join("run"));
    drop(run.claim(FRESH).unwrap());
    std::fs::write(run.metrics(), "{}\n").unwrap();
    std::fs::write(run.root().join("notes.txt"), "mine").unwrap();
    let err = run.claim(FRESH).unwrap_err();
    assert!(matches!(err, SolverError::RunDirNotEmpty { .. }), "{err:?}");
    // No config: nothing a resume could continue, so none is suggested.
    assert!(!err.to_string().contains("--resume"), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    std::fs::write(run.config(), "name = \"x\"\n").unwrap();
    let err = run.claim(FRESH).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    assert!(run.metrics().exists(), "a refused start touches nothing");

    drop(
        run.claim(Claim {
            resume: true,
            force: false,
        })
        .unwrap(),
    );
    assert!(run.metrics().exists(), "a resume keeps the run's files");

    drop(
        run.claim(Claim {
            resume: false,
            force: true,
        })
        .unwrap(),
    );
    assert!(
        !run.metrics().exists(),
        "a forced start removes the old run"
    );
    assert!(
        run.root().join("notes.txt").exists(),
        "and only the run's files"
    );
}

#[test]
fn a_stale_lock_is_reported_and_taken_over_only_when_asked() {
    let dir = temp_dir("claim-stale");
    let run = RunDir::new(dir.join("run"));
    std::fs::create_dir_all(run.root()).unwrap();
    // A process id that existed and is gone: a child that has been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let holder = LockHolder {
        pid: dead,
        ..LockHolder::this_process()
    };
    assert!(holder.is_stale());
    let text = format!(
        "pid = {}\nhost = {}\nstarted = {}\n",
        holder.pid, holder.host, holder.started
    );
    std::fs::write(run.lock(), &text).unwrap();

    let err = run.claim(FRESH).unwrap_err();
    assert!(
        matches!(err, SolverError::RunDirLocked { stale: true, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!("process {dead}")),
        "{err}"
    );
    assert!(err.to_string().contains("--force"), "{err}");

    let lock = run
        .claim(Claim {
            resume: false,
            force: true,
        })
        .unwrap();
    let now = std::fs::read_to_string(lock.path()).unwrap();
    assert!(
        now.contains(&format!("pid = {}", std::process::id())),
        "{now}"
    );

    // A lock from another host is never judged stale from here.
    drop(lock);
    let remote = text.replace(
        &format!("host = {}", holder.host),
        "host = elsewhere.invalid",
    );
    std::fs::write(run.lock(), remote).unwrap();
    let err = run
        .claim(Claim {
            resume: true,
            force: true,
        })
        .unwrap_err();
    assert!(
        matches!(err, SolverError::RunDirLocked { stale: false, .. }),
        "{err:?}"
    );
}

/// A run's `config.toml` records the experiment, not the machine: a scenario
/// run on a GPU is saved with the CPU device, everything else unchanged.
#[test]
fn the_saved_config_leaves_the_device_out() {
    let dir = temp_dir("config-device");
    let run = RunDir::new(dir.join("run"));
    run.create().unwrap();
    let mut scenario = train_support::scenario(3, "");
    scenario.device = tessera_scenarios::Device::Cuda(Some(2));
    run.write_config(&scenario).unwrap();
    let text = std::fs::read_to_string(run.config()).unwrap();
    assert!(!text.contains("device"), "{text}");
    let back = run.read_config().unwrap();
    assert_eq!(back.device, tessera_scenarios::Device::Cpu);
    scenario.device = tessera_scenarios::Device::Cpu;
    assert_eq!(back, scenario);
}
