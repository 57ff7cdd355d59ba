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
pub fn raise_open_files_limit(wanted: u64) {
    let Some((_, hard)) = crate::fdlimit::open_files() else {
        return;
    };
    match crate::fdlimit::raise_open_files(wanted) {
        Some(now) if now < wanted => note!(
            "livegames load: the OS allows {now} open files (hard limit {hard}), fewer than the {wanted} this run needs; connections beyond it will fail with 'io' errors (raise it with `ulimit -Hn`)"
        ),
        _ => {}
    }
}
