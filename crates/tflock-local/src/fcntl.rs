//! POSIX record locks, the kind Terraform's local backend takes (`fcntl(F_SETLK)`).
//! `flock`-based helpers (std's `File::try_lock`, fs2, fs4) never see these locks.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: flock is plain old data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl
}

/// The PID of a process holding a lock that conflicts with a whole-file write lock, or
/// `None`. Does not take or drop any lock (F_GETLK only asks).
pub fn holder(file: &File) -> io::Result<Option<i32>> {
    let mut fl = whole_file(libc::F_WRLCK as libc::c_short);
    // SAFETY: valid fd and a valid, exclusively borrowed flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        Ok(None)
    } else {
        Ok(Some(fl.l_pid))
    }
}

/// Takes the whole-file write lock Terraform takes, without waiting. `Ok(false)` when
/// another process holds it. The lock lasts until `file` (or any fd of it in this
/// process) is closed.
pub fn try_lock(file: &File) -> io::Result<bool> {
    let fl = whole_file(libc::F_WRLCK as libc::c_short);
    // SAFETY: valid fd and a valid flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
    if rc == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EAGAIN) => Ok(false),
            _ => Err(err),
        };
    }
    Ok(true)
}

/// Opens a state file for the fcntl probe or guard without ever blocking or touching
/// anything but a regular file: `Ok(None)` when it does not exist.
///
/// Opening a FIFO read-only blocks until a writer comes (read-write never blocks on Linux,
/// but then tflock would hold both ends), and opening a device can act on it (a terminal,
/// a watchdog). So: `stat` first and refuse anything that is not a regular file, open
/// with `O_NONBLOCK | O_NOCTTY` (the window between the two cannot block), then `fstat`
/// the descriptor, so what is locked is what was checked.
pub fn open_state(path: &Path, write: bool) -> Result<Option<File>, StateFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(m) => return Err(StateFileError::NotRegular(describe(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateFileError::Io(e)),
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateFileError::Io(e)),
    };
    let meta = file.metadata().map_err(StateFileError::Io)?;
    if !meta.is_file() {
        return Err(StateFileError::NotRegular(describe(&meta)));
    }
    Ok(Some(file))
}

/// Why a state file could not be opened for the probe.
#[derive(Debug)]
pub enum StateFileError {
    /// A FIFO, socket, device or directory: what it is.
    NotRegular(&'static str),
    Io(io::Error),
}

fn describe(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}
