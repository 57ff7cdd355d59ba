//! Standard streams a command can rely on.

/// Opens `/dev/null` on any of fds 0, 1 and 2 the process was started without
/// (`2>&-`). Otherwise the next socket the server opens takes that number, and log
/// lines meant for stderr would be written into a client's connection.
pub(super) fn reserve_standard_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only asks whether `fd` is open; it changes nothing.
        let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
        if !open {
            // open() returns the lowest free number, which is `fd`; leaving it open
            // for the life of the process is the point.
            // SAFETY: a constant NUL-terminated path; the result is checked.
            let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if got != fd && got >= 0 {
                // Someone else took `fd` between the two calls: give ours back.
                // SAFETY: `got` is a descriptor this function just opened.
                unsafe { libc::close(got) };
            }
        }
    }
}
