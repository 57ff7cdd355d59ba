//! The open-files limit: every connection, on either side, is a file descriptor.

/// The soft and hard limits on open files, where the OS says.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux but not on every unix
pub fn open_files() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return None;
        }
        Some((limit.rlim_cur as u64, limit.rlim_max as u64))
    }
    #[cfg(not(unix))]
    None
}

/// Raises the soft limit towards `wanted`, at most to the hard limit. Returns the
/// soft limit in force afterwards (None: the OS does not say).
#[allow(clippy::unnecessary_cast)]
pub fn raise_open_files(wanted: u64) -> Option<u64> {
    let (soft, hard) = open_files()?;
    if soft >= wanted {
        return Some(soft);
    }
    #[cfg(unix)]
    {
        let target = wanted.min(hard);
        let raised = libc::rlimit {
            rlim_cur: target as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0;
        Some(if ok { target } else { soft })
    }
    #[cfg(not(unix))]
    Some(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_read_and_never_lowered() {
        let (soft, hard) = open_files().expect("Linux says");
        assert!(soft <= hard);
        assert_eq!(
            raise_open_files(1),
            Some(soft),
            "a lower wish changes nothing"
        );
    }
}
