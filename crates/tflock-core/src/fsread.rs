//! Bounded, non-blocking reads of files named by configs, backend blocks and lock
//! directories (`.terraform/terraform.tfstate`, `*.tf`, `tflock.toml`, shared AWS config,
//! credentials files, a local backend's `.tflock.info`).
//!
//! A repository or a lock directory can put a FIFO, a socket, a device (`/dev/zero`,
//! `/dev/tty`) or a huge file where tflock expects a small text file. [`read_bounded`]
//! opens without blocking (`O_NONBLOCK`, and `O_NOCTTY` so a terminal never becomes the
//! controlling one), follows symlinks, then checks with `fstat` on the opened descriptor
//! (no race with a separate `stat`) that it is a regular file, and reads at most `cap + 1`
//! bytes, refusing more than `cap`.
//!
//! Not covered: a regular file on a hung network filesystem can still block in `read`.

use std::fmt;
use std::fs::{File, FileType};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::text::escape_control;

/// Cap for a lock's info file (Terraform writes a few hundred bytes).
pub const LOCK_INFO_MAX: u64 = 1 << 20;
/// Cap for configuration files: `*.tf`, `*.tf.json`, `tflock.toml`, AWS config and
/// credentials, `.terraform/terraform.tfstate` (backend settings only, no resources).
pub const CONFIG_MAX: u64 = 8 << 20;

/// What went wrong, for callers that react differently (a missing optional file is not an
/// error; the rest are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadErrorKind {
    NotFound,
    PermissionDenied,
    /// A FIFO, socket, device or directory.
    NotRegular,
    /// Larger than the cap.
    TooLarge,
    /// [`read_text_bounded`] only: the bytes are not UTF-8.
    NotUtf8,
    /// Any other I/O error (symlink loop, name too long, read error, ...).
    Io,
}

/// A refused or failed read. `Display` is one line: the path (escaped) and the reason,
/// e.g. `/repo/.terraform/terraform.tfstate: is a FIFO, not a regular file`.
#[derive(Debug)]
pub struct ReadError {
    path: PathBuf,
    kind: ReadErrorKind,
    reason: String,
    source: Option<io::Error>,
}

impl ReadError {
    fn new(path: &Path, kind: ReadErrorKind, reason: impl Into<String>) -> Self {
        ReadError {
            path: path.to_path_buf(),
            kind,
            reason: reason.into(),
            source: None,
        }
    }

    fn io(path: &Path, err: io::Error) -> Self {
        let (kind, reason) = match err.kind() {
            io::ErrorKind::NotFound => (ReadErrorKind::NotFound, "does not exist".to_string()),
            io::ErrorKind::PermissionDenied => (
                ReadErrorKind::PermissionDenied,
                "permission denied".to_string(),
            ),
            _ => (ReadErrorKind::Io, err.to_string()),
        };
        ReadError {
            path: path.to_path_buf(),
            kind,
            reason,
            source: Some(err),
        }
    }

    pub fn kind(&self) -> ReadErrorKind {
        self.kind
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.to_string_lossy();
        write!(
            f,
            "{}: {}",
            escape_control(&path),
            escape_control(&self.reason)
        )
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The bytes of the regular file at `path` (symlinks followed), refusing anything that is
/// not a regular file and anything larger than `cap` bytes. Never blocks on a FIFO or
/// device, never reads more than `cap + 1` bytes.
pub fn read_bounded(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let file = open(path).map_err(|e| open_error(path, e))?;
    // fstat on the descriptor just opened: what is checked is what is read.
    let meta = file.metadata().map_err(|e| ReadError::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, meta.file_type()));
    }
    let too_large = || {
        ReadError::new(
            path,
            ReadErrorKind::TooLarge,
            format!("is larger than {}", size(cap)),
        )
    };
    if meta.len() > cap {
        return Err(too_large());
    }
    // The size can be wrong (procfs says 0) or change while reading: `take` is the bound.
    let initial = usize::try_from(meta.len().min(1 << 20)).unwrap_or(0);
    let mut buf = Vec::with_capacity(initial.saturating_add(1));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| ReadError::io(path, e))?;
    if u64::try_from(buf.len()).map_or(true, |n| n > cap) {
        return Err(too_large());
    }
    Ok(buf)
}

/// As [`read_bounded`], for text: refuses bytes that are not UTF-8 (`is not UTF-8 text`).
pub fn read_text_bounded(path: &Path, cap: u64) -> Result<String, ReadError> {
    let bytes = read_bounded(path, cap)?;
    String::from_utf8(bytes)
        .map_err(|_| ReadError::new(path, ReadErrorKind::NotUtf8, "is not UTF-8 text"))
}

#[cfg(unix)]
fn open(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

fn open_error(path: &Path, err: io::Error) -> ReadError {
    // Linux refuses open(2) on a socket with ENXIO (so does a device without a driver):
    // name what it is, from a stat that only serves the message.
    #[cfg(unix)]
    if err.raw_os_error() == Some(libc::ENXIO) {
        return match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => not_regular(path, meta.file_type()),
            _ => ReadError {
                source: Some(err),
                ..ReadError::new(
                    path,
                    ReadErrorKind::NotRegular,
                    "is not a regular file (no such device or address)",
                )
            },
        };
    }
    ReadError::io(path, err)
}

fn not_regular(path: &Path, ft: FileType) -> ReadError {
    ReadError::new(
        path,
        ReadErrorKind::NotRegular,
        format!("is {}, not a regular file", describe(ft)),
    )
}

fn describe(ft: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "something else"
    }
}

/// `1 MiB`, `8 MiB`, `512 KiB`, `100 bytes`.
fn size(n: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    if n >= MIB && n & (MIB - 1) == 0 {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n & (KIB - 1) == 0 {
        format!("{} KiB", n / KIB)
    } else if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    /// Runs `f` on a thread and fails the test if it takes longer than a few seconds:
    /// a read that blocks shows up as a failure, not a hung test run.
    fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("read blocked for 10s")
    }

    #[test]
    fn reads_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("info");
        std::fs::write(&p, b"{\"ID\":\"x\"}").unwrap();
        assert_eq!(read_bounded(&p, LOCK_INFO_MAX).unwrap(), b"{\"ID\":\"x\"}");
        assert_eq!(read_text_bounded(&p, 10).unwrap(), "{\"ID\":\"x\"}");
        std::fs::write(&p, b"").unwrap();
        assert_eq!(read_bounded(&p, 0).unwrap(), b"");
        // Through a symlink: fine, the target is a regular file.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(read_bounded(&link, 10).unwrap(), b"");
    }

    #[test]
    fn refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("terraform.tfstate");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let path = p.clone();
        let err = within_seconds(move || read_bounded(&path, CONFIG_MAX)).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::NotRegular);
        assert_eq!(
            err.to_string(),
            format!("{}: is a FIFO, not a regular file", p.display())
        );
        // And through a symlink.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let err = within_seconds(move || read_text_bounded(&link, CONFIG_MAX)).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::NotRegular);
    }

    #[test]
    fn refuses_a_device_behind_a_symlink() {
        if !Path::new("/dev/zero").exists() {
            eprintln!("skipped: no /dev/zero");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join(".tflock.info");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let shown = link.clone();
        let err = within_seconds(move || read_bounded(&link, LOCK_INFO_MAX)).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::NotRegular);
        assert_eq!(
            err.to_string(),
            format!(
                "{}: is a character device, not a regular file",
                shown.display()
            )
        );
    }

    #[test]
    fn refuses_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&p).unwrap();
        let path = p.clone();
        let err = within_seconds(move || read_bounded(&path, LOCK_INFO_MAX)).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::NotRegular);
        assert!(
            err.to_string()
                .ends_with(": is a socket, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_bounded(dir.path(), CONFIG_MAX).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::NotRegular);
        assert!(
            err.to_string()
                .ends_with(": is a directory, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn refuses_files_over_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'x'; 2 << 20]).unwrap();
        let err = read_bounded(&p, LOCK_INFO_MAX).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::TooLarge);
        assert_eq!(
            err.to_string(),
            format!("{}: is larger than 1 MiB", p.display())
        );
        assert_eq!(read_bounded(&p, 2 << 20).unwrap().len(), 2 << 20);
        let err = read_bounded(&p, (2 << 20) - 1).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::TooLarge);
        assert!(
            err.to_string().ends_with("is larger than 2097151 bytes"),
            "{err}"
        );
        assert!(read_text_bounded(&p, CONFIG_MAX).is_ok());
    }

    #[test]
    fn the_cap_holds_when_the_size_lies() {
        // procfs reports size 0 for files that read non-empty.
        let p = Path::new("/proc/self/status");
        if !p.exists() {
            eprintln!("skipped: no /proc");
            return;
        }
        assert!(!read_text_bounded(p, CONFIG_MAX).unwrap().is_empty());
        let err = read_bounded(p, 16).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::TooLarge);
        assert!(
            err.to_string().ends_with("is larger than 16 bytes"),
            "{err}"
        );
    }

    #[test]
    fn missing_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope");
        let err = read_bounded(&p, 10).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::NotFound);
        assert_eq!(err.path(), p);
        assert_eq!(err.to_string(), format!("{}: does not exist", p.display()));
        let err = read_bounded(&p.join("below"), 10).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::NotFound);
        // A dangling symlink too.
        let link = dir.path().join("dangling");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(
            read_bounded(&link, 10).unwrap_err().kind(),
            ReadErrorKind::NotFound
        );
    }

    #[test]
    fn other_io_errors_are_io() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let err = read_bounded(&a, 10).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::Io);
        assert!(std::error::Error::source(&err).is_some());
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn permission_denied() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("skipped: root reads any file");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        std::fs::write(&p, b"x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        let err = read_bounded(&p, 10).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::PermissionDenied);
        assert!(err.to_string().ends_with(": permission denied"), "{err}");
    }

    #[test]
    fn refuses_non_utf8_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, b"ok\xff\xfe").unwrap();
        assert_eq!(read_bounded(&p, 10).unwrap(), b"ok\xff\xfe");
        let err = read_text_bounded(&p, 10).unwrap_err();
        assert_eq!(err.kind(), ReadErrorKind::NotUtf8);
        assert!(err.to_string().ends_with(": is not UTF-8 text"), "{err}");
    }

    #[test]
    fn the_path_is_shown_escaped_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("evil\x1b[2J\nname");
        let err = read_bounded(&p, 10).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("evil\\x1b[2J\\nname: does not exist"),
            "{shown}"
        );
        assert!(!shown.chars().any(crate::text::needs_escape), "{shown}");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(LOCK_INFO_MAX), "1 MiB");
        assert_eq!(size(CONFIG_MAX), "8 MiB");
        assert_eq!(size(512 << 10), "512 KiB");
        assert_eq!(size(100), "100 bytes");
        assert_eq!(size(1), "1 byte");
        assert_eq!(size(0), "0 bytes");
    }
}
