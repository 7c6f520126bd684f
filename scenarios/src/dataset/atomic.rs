//! Atomic file replacement: write beside the target, then rename.

use std::path::{Path, PathBuf};

use crate::ScenarioError;

/// Calls `write` with a fresh temporary path in `target`'s directory and renames
/// it onto `target` on success; on failure the temporary file is removed and
/// `target` is untouched.
pub(super) fn write(
    target: &Path,
    write: impl FnOnce(&Path) -> Result<(), ScenarioError>,
) -> Result<(), ScenarioError> {
    let tmp = temporary_path(target)?;
    let result = write(&tmp)
        .and_then(|()| std::fs::rename(&tmp, target).map_err(|e| ScenarioError::io(target, e)));
    if result.is_err() {
        // Best effort: the temporary may not exist if `write` failed early.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.<name>.<pid>.<n>.tmp<ext>` beside `target` (keeping the extension, which
/// some writers inspect), with `n` chosen so that the file does not exist yet.
fn temporary_path(target: &Path) -> Result<PathBuf, ScenarioError> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ScenarioError::format(target, "not a file name"))?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(ScenarioError::io(
            &dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "output directory does not exist",
            ),
        ));
    }
    let ext = target.extension().and_then(|e| e.to_str()).unwrap_or("");
    (0..10_000)
        .map(|n| dir.join(format!(".{name}.{}.{n}.tmp.{ext}", std::process::id())))
        .find(|p| !p.exists())
        .ok_or_else(|| ScenarioError::format(target, "no free temporary file name"))
}
