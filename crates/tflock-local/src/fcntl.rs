//! POSIX record locks, the kind Terraform's local backend takes (`fcntl(F_SETLK)`).
//! `flock`-based helpers (std's `File::try_lock`, fs2, fs4) never see these locks.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

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
