//! Private files (floor 0, uses nothing of the crate): what the bot writes, 0600 and never through a link.
//!
//! Files and folders the bot writes: created private to the operator (files 0600, folders 0700)
//! and never through a link. Another user on the host who plants a symbolic link where the bot
//! is about to write (a backup's predictable name, a keystore's scratch folder, an export) must
//! not get the bot to overwrite their target or write the operator's data where they can read
//! it: a new file is created with `O_CREAT | O_EXCL` (which never follows a link), a file that
//! is replaced is written beside it first and renamed over it (a rename replaces a link, never
//! its target), and anything already at a path that is a link is refused, naming the path.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    #[error("{path} is a symbolic link where the bot writes a file of its own; refused (remove the link or choose another path)")]
    Link { path: String },
    #[error("{path} exists already; the bot does not write over it")]
    Exists { path: String },
    #[error("{path} is not a folder")]
    NotADir { path: String },
    #[error("{path} is a folder of another user (uid {owner}); the bot keeps its files in folders of its own")]
    NotOwned { path: String, owner: u32 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn io(path: &Path, source: std::io::Error) -> PrivateFileError {
    PrivateFileError::Io {
        path: shown(path),
        source,
    }
}

/// Why an open with `O_NOFOLLOW` failed: a link at `path`, or the error itself.
fn opened_not(path: &Path, e: std::io::Error) -> PrivateFileError {
    refuse_link(path).err().unwrap_or_else(|| io(path, e))
}

/// Why creating `path` found something there: a link, or another file.
fn taken(path: &Path) -> PrivateFileError {
    refuse_link(path)
        .err()
        .unwrap_or_else(|| PrivateFileError::Exists { path: shown(path) })
}

/// A link at `path` is refused; nothing there, or anything else, is fine.
pub fn refuse_link(path: &Path) -> Result<(), PrivateFileError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(PrivateFileError::Link { path: shown(path) }),
        _ => Ok(()),
    }
}

/// Read a file the bot wrote (a backtest's chart, a sweep's heat map) to serve it: a link at
/// `path` is refused (`O_NOFOLLOW`), as is anything but a regular file or one over `max_bytes`,
/// so a planted link cannot make the API hand out another file.
pub fn read_own(path: &Path, max_bytes: u64) -> Result<Vec<u8>, PrivateFileError> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| opened_not(path, e))?;
    let meta = file.metadata().map_err(|e| io(path, e))?;
    if !meta.is_file() || meta.len() > max_bytes {
        return Err(io(
            path,
            std::io::Error::other(format!("not a file of at most {max_bytes} bytes")),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max_bytes)
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    Ok(bytes)
}

/// Create a new file (0600) at `path`: refused when anything is there, a link above all.
pub fn create_new(path: &Path) -> Result<File, PrivateFileError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => taken(path),
            _ => io(path, e),
        })
}

/// Open `path` to append, created 0600 when new: a log that goes on across restarts. A link
/// there is refused (`O_NOFOLLOW`), as is anything but a file.
pub fn open_append(path: &Path) -> Result<File, PrivateFileError> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| opened_not(path, e))?;
    let meta = file.metadata().map_err(|e| io(path, e))?;
    if !meta.is_file() {
        return Err(PrivateFileError::Exists { path: shown(path) });
    }
    Ok(file)
}

/// [`create_new`] with `bytes` written and synced.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    let mut f = create_new(path)?;
    f.write_all(bytes).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

/// A fresh name beside `path` for its content before the rename.
fn scratch_beside(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// Write `bytes` to `path`, replacing a file there (an export written again): written to a new
/// private file beside it and renamed over it. A link at `path` is refused.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    refuse_link(path)?;
    let scratch = scratch_beside(path);
    if let Err(e) = write_new(&scratch, bytes) {
        let _ = std::fs::remove_file(&scratch);
        return Err(e);
    }
    std::fs::rename(&scratch, path).map_err(|e| {
        let _ = std::fs::remove_file(&scratch);
        io(path, e)
    })
}

/// A writer for a file written in parts (a CSV export): a new private file beside `path`,
/// renamed over it by [`PrivateWriter::finish`].
pub struct PrivateWriter {
    file: std::io::BufWriter<File>,
    scratch: PathBuf,
    path: PathBuf,
}

impl PrivateWriter {
    pub fn create(path: &Path) -> Result<PrivateWriter, PrivateFileError> {
        refuse_link(path)?;
        let scratch = scratch_beside(path);
        let file = create_new(&scratch)?;
        Ok(PrivateWriter {
            file: std::io::BufWriter::new(file),
            scratch,
            path: path.to_path_buf(),
        })
    }

    pub fn finish(mut self) -> Result<(), PrivateFileError> {
        self.file.flush().map_err(|e| io(&self.path, e))?;
        refuse_link(&self.path)?;
        std::fs::rename(&self.scratch, &self.path).map_err(|e| io(&self.path, e))
    }
}

impl Write for PrivateWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for PrivateWriter {
    fn drop(&mut self) {
        // Not finished: the scratch file goes (finished: it was renamed, this finds nothing).
        let _ = std::fs::remove_file(&self.scratch);
    }
}

/// Rename `from` to `to` unless something (a link above all) is at `to`: atomic, no window
/// between the check and the rename.
pub fn rename_new(from: &Path, to: &Path) -> Result<(), PrivateFileError> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(|e| {
        if e == rustix::io::Errno::EXIST {
            taken(to)
        } else {
            io(to, e.into())
        }
    })
}

/// What [`private_dir`] did to a folder that was open to others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tightened {
    pub path: String,
    pub was: u32,
}

/// Make sure `path` is a folder of this user's that no one else can read or write: created
/// (with its parents) 0700 when missing; refused when it is a link, not a folder, or another
/// user's; its mode tightened to 0700 when it was open to others (`Some`: it was, and how).
pub fn private_dir(path: &Path) -> Result<Option<Tightened>, PrivateFileError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| io(path, e))?;
        }
        Err(e) => return Err(io(path, e)),
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| io(path, e))?;
    if meta.file_type().is_symlink() {
        return Err(PrivateFileError::Link { path: shown(path) });
    }
    if !meta.is_dir() {
        return Err(PrivateFileError::NotADir { path: shown(path) });
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(PrivateFileError::NotOwned {
            path: shown(path),
            owner: meta.uid(),
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io(path, e))?;
    Ok(Some(Tightened {
        path: shown(path),
        was: mode,
    }))
}

/// Create `path`'s missing folders 0700 (whatever the umask); existing ones are left as they
/// are (a folder the operator named in the config is theirs to set).
pub fn create_private_dirs(path: &Path) -> Result<(), PrivateFileError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io(path, e))
}

/// Make an existing file of this user's private (0600), e.g. a database created before the bot
/// set its umask. A missing file, or a link (a path the operator chose to point elsewhere), is
/// left as it is.
pub fn tighten_file(path: &Path) -> Result<(), PrivateFileError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path, e)),
    };
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.mode() & 0o077 != 0 && meta.uid() == rustix::process::geteuid().as_raw() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_where_a_file_goes_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "theirs").unwrap();
        let link = dir.path().join("bsc-bot-backup.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for result in [
            write_new(&link, b"ours"),
            replace(&link, b"ours"),
            PrivateWriter::create(&link).map(|_| ()),
        ] {
            let e = result.unwrap_err();
            assert!(matches!(e, PrivateFileError::Link { .. }), "{e}");
            assert!(e.to_string().contains("bsc-bot-backup.json"), "{e}");
        }
        let from = dir.path().join("from");
        std::fs::write(&from, "new").unwrap();
        assert!(matches!(
            rename_new(&from, &link),
            Err(PrivateFileError::Link { .. })
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs");
    }

    #[test]
    fn new_files_are_private_and_replacing_keeps_them_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.csv");
        replace(&path, b"a").unwrap();
        replace(&path, b"b").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b");
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            write_new(&path, b"c"),
            Err(PrivateFileError::Exists { .. })
        ));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no scratch file left");
    }

    #[test]
    fn an_open_folder_is_tightened_and_a_linked_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("keystore");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let t = private_dir(&open).unwrap().unwrap();
        assert_eq!(t.was, 0o777);
        assert_eq!(std::fs::metadata(&open).unwrap().mode() & 0o777, 0o700);
        assert_eq!(private_dir(&open).unwrap(), None);
        let link = dir.path().join("linked");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(matches!(
            private_dir(&link),
            Err(PrivateFileError::Link { .. })
        ));
        let fresh = dir.path().join("a/b");
        assert_eq!(private_dir(&fresh).unwrap(), None);
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
    }
}
