//! The lock that makes a run directory belong to one run at a time.
//!
//! `RUN_DIR/.lock` is created with `O_EXCL` (`create_new`), so of two runs
//! started into the same directory exactly one gets it; the other fails at once
//! and is told who holds it. The file records the holder's process id, host and
//! start time, and is removed when the [`RunLock`] is dropped. A lock left by a
//! process that died without cleaning up (SIGKILL, power loss) is *stale*: when
//! its host is this host and its process no longer exists, a resume or a
//! `--force` start takes the lock over (reported on stderr); a plain start is
//! refused with the reason. A lock from another host is never judged
//! stale here, because its process cannot be looked up from this machine.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::SolverError;

/// Who holds (or held) a run directory's lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// Process id of the holder.
    pub pid: u32,
    /// Host name of the holder's machine.
    pub host: String,
    /// Unix seconds when the holder took the lock.
    pub started: u64,
}

impl LockHolder {
    /// This process, now.
    pub fn this_process() -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// The lock file's text: one `key = value` line per field.
    fn to_text(&self) -> String {
        format!(
            "pid = {}\nhost = {}\nstarted = {}\n",
            self.pid, self.host, self.started
        )
    }

    /// Parses [`LockHolder::to_text`]; `None` for anything else (a lock file
    /// being written at this instant, or one written by hand).
    fn parse(text: &str) -> Option<Self> {
        let mut pid = None;
        let mut host = None;
        let mut started = None;
        for line in text.lines() {
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            match key.trim() {
                "pid" => pid = value.parse().ok(),
                "host" => host = Some(value.to_owned()),
                "started" => started = value.parse().ok(),
                _ => return None,
            }
        }
        Some(Self {
            pid: pid?,
            host: host?,
            started: started?,
        })
    }

    /// Whether the holder is known to be gone: it ran on this host and its
    /// process id no longer exists.
    pub fn is_stale(&self) -> bool {
        self.host == host_name() && !process_exists(self.pid)
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "process {} on host {} (started at unix time {})",
            self.pid, self.host, self.started
        )
    }
}

/// A held run-directory lock; dropping it removes the lock file.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock file `path` for this process. An existing lock is an
    /// error naming its holder ([`SolverError::RunDirLocked`]), unless it is
    /// stale and `take_over_stale` is set, in which case it is taken over (and
    /// the take-over is reported on stderr).
    pub fn acquire(path: &Path, take_over_stale: bool) -> Result<Self, SolverError> {
        let me = LockHolder::this_process();
        match create_exclusive(path, &me) {
            Ok(()) => return Ok(Self { path: path.into() }),
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(SolverError::io(path, e));
            }
            Err(_) => {}
        }
        let text = std::fs::read_to_string(path).map_err(|e| SolverError::io(path, e))?;
        let holder = LockHolder::parse(&text);
        let stale = holder.as_ref().is_some_and(LockHolder::is_stale);
        let described = holder.map_or_else(
            || format!("an unreadable lock file ({:?})", text.trim()),
            |h| h.to_string(),
        );
        if !(stale && take_over_stale) {
            return Err(SolverError::RunDirLocked {
                path: path.into(),
                holder: described,
                stale,
            });
        }
        eprintln!(
            "warning: taking over the stale lock {} of {described}, which no longer runs",
            path.display()
        );
        std::fs::remove_file(path).map_err(|e| SolverError::io(path, e))?;
        // Another process may take the freed lock first; then this one loses.
        create_exclusive(path, &me).map_err(|_| SolverError::RunDirLocked {
            path: path.into(),
            holder: "another process that took over the same stale lock".into(),
            stale: false,
        })?;
        Ok(Self { path: path.into() })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Best effort: a lock left behind is reported as stale by the next run.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn create_exclusive(path: &Path, holder: &LockHolder) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(holder.to_text().as_bytes())?;
    file.sync_all()
}

/// This machine's host name (`"unknown"` if the system does not say): in a
/// lock holder's record, and in a run's provenance.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at
    // most that many and we read only up to the first NUL inside it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a process with id `pid` exists on this host (signal 0 probes
/// without sending anything; EPERM means it exists under another user). A
/// zombie (dead, not yet reaped: common in containers whose init does not reap
/// orphans) does not count.
fn process_exists(pid: u32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false);
    if zombie {
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 performs only the existence/permission check.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_text_round_trips() {
        let holder = LockHolder {
            pid: 42,
            host: "node-7".into(),
            started: 1_700_000_000,
        };
        assert_eq!(LockHolder::parse(&holder.to_text()), Some(holder));
        assert_eq!(LockHolder::parse("pid = x\n"), None);
    }

    #[test]
    fn this_process_exists_and_is_not_stale() {
        assert!(process_exists(std::process::id()));
        assert!(!LockHolder::this_process().is_stale());
    }
}
