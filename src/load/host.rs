//! What this machine allows and what the run costs it: the open-files limit (each
//! connection is a file descriptor) and this process's CPU time.

use crate::console::note;

/// CPU time (user + system) this process has used, from /proc (Linux).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(") ").next()?.split_whitespace().collect();
    let ticks_per_s = 100.0; // USER_HZ
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / ticks_per_s)
}

/// Raises this process's open-files limit to `wanted` where the OS allows, and says
/// clearly when it does not (each connection is a file descriptor).
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux but not on every unix
pub fn raise_open_files_limit(wanted: u64) {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
        if limit.rlim_cur as u64 >= wanted {
            return;
        }
        let target = (wanted as libc::rlim_t).min(limit.rlim_max);
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0;
        if !ok || (target as u64) < wanted {
            note!(
                "livegames load: the OS allows {} open files (hard limit {}), fewer than the {wanted} this run needs; connections beyond it will fail with 'io' errors (raise it with `ulimit -Hn`)",
                if ok {
                    target as u64
                } else {
                    limit.rlim_cur as u64
                },
                limit.rlim_max as u64
            );
        }
    }
}
