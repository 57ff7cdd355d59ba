//! What this machine allows and what the run costs it: the open-files limit (each
//! connection is a file descriptor) and this process's CPU time.

use crate::console::note;

/// CPU time (user + system) this process has used, all threads, to the nanosecond
/// (the kernel's own run-time accounting, not /proc's 10 ms ticks: a short benchmark
/// window at a low frame rate is only a few ticks long).
pub fn process_cpu_seconds() -> Option<f64> {
    cpu_clock_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// The CPU time another process of this user has used, as [`process_cpu_seconds`]
/// (for benchmarks measuring a peer tool from outside); None once it has exited.
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: clock points to a clockid_t that outlives the call.
    let found = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
    (found == 0).then_some(())?;
    cpu_clock_seconds(clock)
}

fn cpu_clock_seconds(clock: libc::clockid_t) -> Option<f64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: now points to a timespec that outlives the call.
    let read = unsafe { libc::clock_gettime(clock, &mut now) };
    (read == 0).then(|| now.tv_sec as f64 + now.tv_nsec as f64 / 1e9)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest step the clock is seen to take while this thread spins.
    fn smallest_step(clock: impl Fn() -> f64) -> f64 {
        (0..5)
            .map(|_| {
                let start = clock();
                loop {
                    let now = clock();
                    if now != start {
                        return now - start;
                    }
                }
            })
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn cpu_time_is_finer_than_procs_ticks() {
        // /proc counts in 10 ms ticks; the kernel's run-time clock in nanoseconds.
        let step = smallest_step(|| process_cpu_seconds().unwrap());
        assert!(step < 0.001, "the CPU clock moved in steps of {step} s");
    }

    #[test]
    fn another_process_s_clock_is_read_by_pid() {
        let mine = process_cpu_seconds().unwrap();
        let by_pid = cpu_seconds_of(std::process::id()).unwrap();
        assert!(by_pid >= mine, "{by_pid} < {mine}");
        // No such process: pids stop below 2^22 (the kernel's PID_MAX_LIMIT).
        assert_eq!(cpu_seconds_of((1 << 22) + 1), None);
    }
}
