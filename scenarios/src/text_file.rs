//! Reading the small text files a user points at (scenarios, PDE
//! definitions) with a bound on their size, so that a wrong path (a device
//! such as `/dev/zero`, a multi-gigabyte data file) is an error rather than
//! a read that never ends or fills the memory.

use std::io::Read;
use std::path::Path;

/// The largest scenario or definition file read: far beyond any written by
/// hand.
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// The UTF-8 text of the file at `path`.
///
/// Errors: the file cannot be read, is not UTF-8 (`InvalidData`) or holds
/// more than [`MAX_TEXT_BYTES`] (`FileTooLarge`).
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_TEXT_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_TEXT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "more than {} MiB: not a scenario or PDE definition",
                MAX_TEXT_BYTES >> 20
            ),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file past the bound is refused after reading the bound, not to its
    /// end (a device never ends); a small one reads whole.
    #[test]
    fn text_files_are_read_up_to_the_bound() {
        #[cfg(unix)]
        {
            let err = read_text(Path::new("/dev/zero")).unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::InvalidData
                ),
                "{err}"
            );
        }
        let path = std::env::temp_dir().join(format!("tessera-text-{}.toml", std::process::id()));
        std::fs::write(&path, "name = \"x\"\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "name = \"x\"\n");
        std::fs::remove_file(&path).unwrap();
    }
}
