//! Memory bounds, measured as the process's peak resident size: this binary holds one
//! test, so no other test's allocations run beside it and move the peak; the peak is
//! reset between the checks it runs in turn.

use std::io::Read as _;

use livegames::contract::schema::Schemas;
use livegames::inspect::validate::{MAX_LISTED, validate};

/// Growth of the peak resident size while `run` runs, in MiB: the kernel's peak mark
/// is reset first (`/proc/self/clear_refs`), so an earlier peak cannot hide this one.
fn peak_growth_mib(run: impl FnOnce()) -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS mark");
    let before = peak_rss_kib();
    run();
    peak_rss_kib().saturating_sub(before) / 1024
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Repeats a reader's content `n` times without holding the copies.
trait RepeatReader: Sized {
    fn repeat_reader(self, n: usize) -> Repeated;
}
impl RepeatReader for std::io::Cursor<Vec<u8>> {
    fn repeat_reader(self, n: usize) -> Repeated {
        Repeated {
            cursor: self,
            left: n,
        }
    }
}
struct Repeated {
    cursor: std::io::Cursor<Vec<u8>>,
    left: usize,
}
impl std::io::Read for Repeated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.left == 0 {
                return Ok(0);
            }
            let n = self.cursor.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.left -= 1;
            self.cursor.set_position(0);
        }
    }
}

const GOOD: &str = r#"{"type":"heartbeat","game_id":"g","seq":3,"ts":1763900000000000}"#;

#[test]
fn contract_validate_reads_huge_inputs_in_bounded_memory() {
    // 100 MiB: 100,000 lines of 1 KiB that are not JSON, then one 8 MiB line.
    let grown = peak_growth_mib(|| {
        let line: Vec<u8> = [vec![b'x'; 1023], vec![b'\n']].concat();
        let lines = std::io::Cursor::new(line).repeat_reader(100_000);
        let giant = std::io::repeat(b'y').take(8 << 20);
        let input = std::io::BufReader::new(lines.chain(giant));
        let r = validate(input, Schemas::builtin(false)).unwrap();
        assert_eq!(r.frames, 100_001);
        assert_eq!(r.violation_count, 100_001);
        assert_eq!(r.violations.len(), MAX_LISTED, "only so many are kept");
    });
    assert!(
        grown < 40,
        "peak memory grew by {grown} MiB reading 100 MiB"
    );

    // One 64 MiB element inside a JSON array.
    let grown = peak_growth_mib(|| {
        let head = std::io::Cursor::new(br#"[{"type":"heartbeat","pad":""#.to_vec());
        let pad = std::io::repeat(b'z').take(64 << 20);
        let tail = std::io::Cursor::new(format!(r#""}},{GOOD}]"#).into_bytes());
        let input = std::io::BufReader::new(head.chain(pad).chain(tail));
        let r = validate(input, Schemas::builtin(false)).unwrap();
        assert_eq!((r.frames, r.valid_frames), (2, 1), "{:?}", r.violations);
        assert_eq!(r.violations[0].check, "size");
    });
    assert!(
        grown < 40,
        "peak memory grew by {grown} MiB reading a 64 MiB element"
    );
}
