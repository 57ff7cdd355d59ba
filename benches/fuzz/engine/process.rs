//! What only the server's host sees: panic lines in its log, and its memory and
//! open files before and after the campaign.

use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A line of the server's stderr that reports a panic (Rust's default hook writes
/// `thread '…' panicked at file:line:col:`, whatever the log format).
pub fn is_panic_line(line: &str) -> bool {
    line.contains("panicked at")
}

/// Reads the server's log: its address once, and every panic with the line after
/// it (the message), escaped.
pub fn watch_log(
    log: impl BufRead,
    tell_addr: std::sync::mpsc::Sender<SocketAddr>,
    panics: Arc<Mutex<Vec<String>>>,
) {
    let mut lines = log.lines().map_while(Result::ok);
    while let Some(line) = lines.next() {
        if is_panic_line(&line) {
            let message = lines.next().unwrap_or_default();
            let said = format!("{line} {message}");
            panics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(super::mutate::escaped(said.as_bytes(), 500));
        } else if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && let Some(addr) = v["local_addr"].as_str().and_then(|a| a.parse().ok())
        {
            let _ = tell_addr.send(addr);
        }
    }
}

/// Resident memory and open files of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub rss_mib: f64,
    pub open_files: u64,
}

/// How much a server may have grown once the campaign's connections are gone.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub rss_mib: f64,
    pub open_files: u64,
}

/// `pid`'s usage now, from /proc (None once it has exited).
pub fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Usage {
        rss_mib: rss_kib / 1024.0,
        open_files,
    })
}

/// What grew past its bound between `before` (warmed up, before the campaign) and
/// `after` (the campaign over, its connections closed), in a sentence.
pub fn grown(before: Usage, after: Usage, bounds: Bounds) -> Option<String> {
    let rss = after.rss_mib - before.rss_mib;
    let files = after.open_files.saturating_sub(before.open_files);
    let mut over = Vec::new();
    if rss > bounds.rss_mib {
        over.push(format!(
            "memory grew {rss:.1} MiB ({:.1} -> {:.1}; bound {} MiB)",
            before.rss_mib, after.rss_mib, bounds.rss_mib
        ));
    }
    if files > bounds.open_files {
        over.push(format!(
            "open files grew by {files} ({} -> {}; bound {})",
            before.open_files, after.open_files, bounds.open_files
        ));
    }
    (!over.is_empty()).then(|| over.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_seen_in_a_text_or_json_log() {
        assert!(is_panic_line(
            "thread 'tokio-runtime-worker' panicked at src/serve/api/admin.rs:140:33:"
        ));
        assert!(!is_panic_line(
            r#"{"level":"WARN","fields":{"message":"upstream error"}}"#
        ));
    }

    #[test]
    fn the_log_watcher_reports_the_address_and_each_panic_with_its_message() {
        let log = concat!(
            "{\"level\":\"INFO\",\"message\":\"listening\",\"local_addr\":\"127.0.0.1:4321\"}\n",
            "{\"level\":\"INFO\",\"fields\":{\"message\":\"fault injected\"}}\n",
            "thread 'tokio-runtime-worker' panicked at src/serve/api/admin.rs:140:33:\n",
            "overflow when adding duration to instant\u{1b}[2J\n",
        );
        let (tell, addr) = std::sync::mpsc::channel();
        let panics = Arc::new(Mutex::new(Vec::new()));
        watch_log(std::io::Cursor::new(log), tell, panics.clone());
        assert_eq!(addr.recv().unwrap(), "127.0.0.1:4321".parse().unwrap());
        let panics = panics.lock().unwrap();
        assert_eq!(panics.len(), 1);
        assert!(
            panics[0].contains("admin.rs:140:33: overflow when adding"),
            "{}",
            panics[0]
        );
        assert!(panics[0].ends_with("\\x1b[2J"), "escaped: {}", panics[0]);
    }

    #[test]
    fn growth_past_either_bound_is_named_and_within_both_is_none() {
        let bounds = Bounds {
            rss_mib: 64.0,
            open_files: 16,
        };
        let before = Usage {
            rss_mib: 40.0,
            open_files: 20,
        };
        let within = Usage {
            rss_mib: 90.0,
            open_files: 30,
        };
        assert_eq!(grown(before, within, bounds), None);
        let leaking = Usage {
            rss_mib: 200.0,
            open_files: 90,
        };
        let said = grown(before, leaking, bounds).unwrap();
        assert!(said.contains("memory grew 160.0 MiB"), "{said}");
        assert!(said.contains("open files grew by 70"), "{said}");
    }

    #[test]
    fn this_process_has_a_usage() {
        let me = usage(std::process::id()).unwrap();
        assert!(me.rss_mib > 0.0 && me.open_files > 0);
    }
}
