//! The check of a file a command will write, made before the command's work
//! (a benchmark's minutes of timing, a prediction), so that a name that
//! cannot be written is refused at once by its flag instead of after the
//! work, which would then be lost.

use std::path::Path;

use crate::error::ToolError;

/// `Ok` if `path` (given as `flag`) can name a new or replaced file: it is no
/// directory, its parent directory exists, and where `extension` is given it
/// ends in it (ignoring case), the format being chosen by it.
///
/// Errors: [`ToolError::Output`], saying which of these fails.
pub fn check_output(
    flag: &'static str,
    path: &Path,
    extension: Option<&str>,
) -> Result<(), ToolError> {
    let refuse = |reason: String| ToolError::Output {
        flag,
        path: path.to_owned(),
        reason,
    };
    if path.is_dir() {
        return Err(refuse("is a directory; name a file".to_owned()));
    }
    // `a.json` has the parent "": the working directory, which exists.
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|p| !p.is_dir()) {
        return Err(refuse(format!("no directory {}", parent.display())));
    }
    if let Some(wanted) = extension {
        let given = path.extension().and_then(|e| e.to_str());
        if !given.is_some_and(|given| given.eq_ignore_ascii_case(wanted)) {
            return Err(refuse(format!("must end in .{wanted}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal names the flag and the path, and says what is wrong.
    #[test]
    fn unwritable_names_are_refused_by_flag() {
        let dir = std::env::temp_dir();
        let shown = |path: &Path, extension| {
            check_output("--plot", path, extension)
                .map_err(|e| e.to_string())
                .err()
        };
        assert_eq!(shown(&dir.join("a.png"), Some("png")), None);
        assert_eq!(shown(&dir.join("a.PNG"), Some("png")), None);
        assert_eq!(shown(Path::new("a.json"), None), None);
        let is_dir = shown(&dir, None).unwrap();
        assert!(is_dir.starts_with("--plot ") && is_dir.ends_with("is a directory; name a file"));
        let missing = dir.join("tessera-no-such-dir").join("a.png");
        let no_parent = shown(&missing, Some("png")).unwrap();
        assert!(no_parent.contains("no directory"), "{no_parent}");
        let txt = shown(&dir.join("a.txt"), Some("png")).unwrap();
        assert!(txt.ends_with("a.txt: must end in .png"), "{txt}");
    }
}
