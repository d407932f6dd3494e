//! The admin key `serve` uses when none is configured: generated once, kept beside the
//! database as `admin.key` (mode 0600), and read back on later starts. The key itself is
//! never printed; only where it is.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// File name of the generated key.
pub const FILE_NAME: &str = "admin.key";

/// Where the key file lives for a database at `db_path` (`None` for `:memory:`, which keeps
/// it in `data/`).
pub fn path_for(db_path: Option<&Path>) -> PathBuf {
    let dir = db_path
        .and_then(Path::parent)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or_else(
            || PathBuf::from(if db_path.is_some() { "." } else { "data" }),
            Path::to_path_buf,
        );
    dir.join(FILE_NAME)
}

/// Reads the key at `path`, creating it (32 random bytes, hex) if it does not exist.
/// Returns the key and whether it was just created.
///
/// # Errors
///
/// When the file cannot be read or written, or holds no usable key.
pub fn load_or_create(path: &Path) -> io::Result<(String, bool)> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let key = text.trim().to_owned();
            if key.len() < 16 {
                return Err(io::Error::other(format!(
                    "{} holds no usable admin key (at least 16 characters); delete it to \
                     generate a new one",
                    path.display()
                )));
            }
            Ok((key, false))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|err| io::Error::other(err.to_string()))?;
            let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::private_fs::create_dir_all(dir)?;
            }
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            let mut file = options.open(path)?;
            file.write_all(key.as_bytes())?;
            file.write_all(b"\n")?;
            Ok((key, true))
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(Some(&dir.path().join("sessions.db")));
        assert_eq!(path, dir.path().join(FILE_NAME));
        let (key, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(key.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(load_or_create(&path).unwrap(), (key, false));
    }

    #[test]
    fn a_bare_file_name_keeps_the_key_in_the_working_directory() {
        assert_eq!(
            path_for(Some(Path::new("sessions.db"))),
            Path::new("./admin.key")
        );
        assert_eq!(path_for(None), Path::new("data/admin.key"));
    }
}
