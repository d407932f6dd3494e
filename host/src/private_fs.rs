//! Files only their owner may read: the session database (its `-wal` and `-shm` beside it)
//! and the admin key. Session rows hold no usable token, but user ids, metadata and activity
//! times are nobody else's business on a shared machine.

use std::fs;
use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents; the directories this creates are `0700`. Existing
/// ones are left as they are (an operator may have chosen a shared parent on purpose).
///
/// # Errors
///
/// The file system's error.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates the database file if missing, and makes it and its SQLite companions (`-wal`,
/// `-shm`, `-journal`, which SQLite creates with the main file's mode) readable by the owner
/// only.
///
/// # Errors
///
/// The file system's error.
pub fn restrict_database(path: &Path) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    drop(options.open(path)?);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match owner_only(Path::new(&file)) {
            Err(err) if err.kind() == io::ErrorKind::NotFound && !suffix.is_empty() => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(unix)]
fn owner_only(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_: &Path) -> io::Result<()> {
    Ok(())
}
