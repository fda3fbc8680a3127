//! Credentials as libpq and lib/pq find them: the password of the connection settings,
//! else `PGPASSWORD` (already merged into the settings), else the first matching line of
//! the password file (`passfile`, `PGPASSFILE`, else `~/.pgpass`); the user defaults to
//! the operating-system user.

use crate::conninfo::{Endpoint, Host};
use std::path::PathBuf;
use tflock_core::fsread::{read_text_bounded, ReadErrorKind, CONFIG_MAX};

/// The name of the effective user, as libpq's default role name.
pub fn os_user() -> Option<String> {
    // SAFETY: getpwuid_r writes only into `pwd` and `buf`, both sized as passed; the
    // name is copied out before they go out of scope.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::geteuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            let name = std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned();
            if !name.is_empty() {
                return Some(name);
            }
        }
    }
    std::env::var("USER").ok().filter(|u| !u.is_empty())
}

/// What the password file gave, and why it gave nothing (for the hint of a failed login).
#[derive(Debug, Default)]
pub struct FromPassfile {
    pub password: Option<String>,
    pub note: Option<String>,
}

/// The password for `ep` from the password file, as libpq looks it up.
pub fn passfile_password(
    ep: &Endpoint,
    passfile: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> FromPassfile {
    let (path, explicit) = match passfile {
        Some(p) => (PathBuf::from(p), true),
        None => match env("HOME") {
            Some(home) => (PathBuf::from(home).join(".pgpass"), false),
            None => return FromPassfile::default(),
        },
    };
    let shown = path.display().to_string();
    if let Ok(meta) = std::fs::metadata(&path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            // libpq ignores a password file others can read.
            return FromPassfile {
                password: None,
                note: Some(format!(
                    "{shown} was ignored: it is readable by group or others (chmod 0600 it)"
                )),
            };
        }
    }
    let text = match read_text_bounded(&path, CONFIG_MAX) {
        Ok(t) => t,
        Err(e) if e.kind() == ReadErrorKind::NotFound && !explicit => {
            return FromPassfile::default()
        }
        Err(e) => {
            return FromPassfile {
                password: None,
                note: Some(format!("password file not read: {e}")),
            }
        }
    };
    let host = match &ep.host {
        Host::Tcp(h) => h.clone(),
        // libpq matches a socket connection with `localhost`.
        Host::Unix(_) => "localhost".to_string(),
    };
    let port = ep.port.to_string();
    let wanted = [host.as_str(), &port, &ep.dbname, &ep.user];
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_fields(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = fields[..4]
            .iter()
            .zip(wanted)
            .all(|(f, w)| f == "*" || f == w);
        if matches {
            return FromPassfile {
                password: Some(fields[4..].join(":")),
                note: None,
            };
        }
    }
    FromPassfile {
        password: None,
        note: Some(format!(
            "no line of {shown} matches {host}:{port}:{}:{}",
            ep.dbname, ep.user
        )),
    }
}

/// `host:port:db:user:password` with `\:` and `\\` escapes.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(n);
                }
            }
            ':' => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c)
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conninfo::ConnInfo;
    use std::os::unix::fs::PermissionsExt;

    fn passfile_password_t(ep: &Endpoint, file: Option<&str>) -> FromPassfile {
        passfile_password(ep, file, &|_| None)
    }

    fn ep(text: &str) -> Endpoint {
        ConnInfo::parse(text).unwrap().endpoint(None).unwrap()
    }

    #[test]
    fn passfile_lines_match_as_in_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:tf:nope\ndb:5432:tf:tf:pa\\:ss\\\\word\n*:*:*:tf:fallback:with:colons\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = file.to_str().unwrap();
        let got = passfile_password_t(&ep("host=db user=tf dbname=tf"), Some(path));
        assert_eq!(got.password.as_deref(), Some("pa:ss\\word"));
        let got = passfile_password_t(&ep("host=db2 port=6000 user=tf dbname=x"), Some(path));
        assert_eq!(got.password.as_deref(), Some("fallback:with:colons"));
        let got = passfile_password_t(&ep("host=db user=ops dbname=tf"), Some(path));
        assert_eq!(got.password, None);
        assert!(got.note.unwrap().contains("no line"));
        // Readable by others: ignored, and said why.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let got = passfile_password_t(&ep("host=db user=tf dbname=tf"), Some(path));
        assert_eq!(got.password, None);
        assert!(got.note.unwrap().contains("chmod 0600"));
        // A named file that is missing is said; a missing ~/.pgpass is not.
        let got = passfile_password_t(&ep("host=db user=tf"), Some("/nonexistent/pgpass"));
        assert!(got.note.is_some());
    }

    #[test]
    fn some_os_user_is_known() {
        assert!(os_user().is_some_and(|u| !u.is_empty()));
    }
}
