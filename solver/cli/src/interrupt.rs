//! Signals that stop training at a checkpoint instead of killing it: what a
//! cluster sends before it ends a job (Slurm: SIGTERM at the time limit, on
//! preemption or `scancel`, and the signal `--signal` names ahead of it,
//! e.g. `--signal=B:USR1@300`), and Ctrl-C.
//!
//! While [`StopOnSignal`] is alive, the first SIGTERM, SIGINT or SIGUSR1
//! sets the trainer's stop flag ([`tessera_solver::TrainOptions::stop`]):
//! the run finishes the step in progress, saves a checkpoint of it and the
//! command exits with 128 + the signal's number ([`Interrupted`]). The
//! handler is installed with `SA_RESETHAND`, so a second signal takes the
//! default action and ends the process at once (a checkpoint being written
//! then is left whole: checkpoints are replaced by a rename). A signal the
//! process ignores (a background job's SIGINT) stays ignored, and outside
//! training every signal keeps its previous disposition.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, LazyLock};

/// The signals that stop training at a checkpoint.
const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1];

/// The trainer's stop flag, set by the handler.
static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// The number of the signal that set [`STOP`]; 0 for none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    // Async-signal-safe: atomic stores only ([`STOP`] is forced before the
    // handler is installed).
    RECEIVED.store(signal, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

/// The signal handlers of a training run; dropping it restores the
/// dispositions it replaced.
pub(crate) struct StopOnSignal {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl StopOnSignal {
    /// Installs the handlers (see the module doc) and clears the flag.
    pub(crate) fn install() -> std::io::Result<Self> {
        LazyLock::force(&STOP).store(false, Ordering::SeqCst);
        RECEIVED.store(0, Ordering::SeqCst);
        let mut installed = Self {
            previous: Vec::new(),
        };
        for signal in SIGNALS {
            // SAFETY: sigaction with valid pointers to zero-initialised
            // (plain C) structs; the handler only stores to atomics.
            unsafe {
                let mut current: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if current.sa_sigaction == libc::SIG_IGN {
                    continue;
                }
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, &mut current) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                installed.previous.push((signal, current));
            }
        }
        Ok(installed)
    }

    /// The flag the first signal sets, for [`tessera_solver::TrainOptions::stop`].
    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&STOP)
    }
}

/// The signal that set the flag of the last [`StopOnSignal`] installed, if
/// one did.
pub(crate) fn received() -> Option<Interrupted> {
    let signal = RECEIVED.load(Ordering::SeqCst);
    (signal != 0).then_some(Interrupted { signal })
}

impl Drop for StopOnSignal {
    fn drop(&mut self) {
        for (signal, previous) in &self.previous {
            // SAFETY: restores a disposition sigaction returned.
            unsafe {
                libc::sigaction(*signal, previous, std::ptr::null_mut());
            }
        }
    }
}

/// A command ended by a signal after saving a checkpoint: it exits with
/// 128 + the signal's number, as a shell reports a process the signal
/// ended, so that a job script tells it from a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", self.name())]
pub(crate) struct Interrupted {
    signal: libc::c_int,
}

impl Interrupted {
    /// The signal's name, e.g. `SIGTERM`.
    pub(crate) fn name(&self) -> String {
        match self.signal {
            libc::SIGTERM => "SIGTERM".into(),
            libc::SIGINT => "SIGINT".into(),
            libc::SIGUSR1 => "SIGUSR1".into(),
            other => format!("signal {other}"),
        }
    }

    /// The process's exit status.
    pub(crate) fn exit_code(&self) -> u8 {
        u8::try_from(128 + self.signal).unwrap_or(u8::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first signal sets the flag and names itself; the dispositions
    /// come back when the handlers go (SIGUSR1's default would end the test
    /// process, so it is raised only while the handler is installed), and a
    /// signal the process ignores is left alone.
    #[test]
    fn the_first_signal_sets_the_flag_and_dropping_restores_the_dispositions() {
        let disposition = |signal| unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut current);
            current.sa_sigaction
        };
        let before = disposition(libc::SIGUSR1);
        {
            let catcher = StopOnSignal::install().unwrap();
            let flag = catcher.flag();
            assert!(!flag.load(Ordering::SeqCst));
            assert_eq!(received(), None);
            // SAFETY: raising a signal this process handles.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
            assert!(flag.load(Ordering::SeqCst));
            let interrupted = received().unwrap();
            assert_eq!(interrupted.name(), "SIGUSR1");
            assert_eq!(i32::from(interrupted.exit_code()), 128 + libc::SIGUSR1);
            // SA_RESETHAND: the second would take the default action.
            assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
        }
        assert_eq!(disposition(libc::SIGUSR1), before);

        // SAFETY: sets and restores SIGUSR1's disposition around the check.
        unsafe {
            let previous = libc::signal(libc::SIGUSR1, libc::SIG_IGN);
            let catcher = StopOnSignal::install().unwrap();
            assert_eq!(disposition(libc::SIGUSR1), libc::SIG_IGN);
            assert_eq!(libc::raise(libc::SIGUSR1), 0);
            assert_eq!(received(), None, "an ignored signal stays ignored");
            drop(catcher);
            libc::signal(libc::SIGUSR1, previous);
        }
    }
}
