//! Byte-level mutations: what a fuzzer does to a valid input to find the parser's
//! edges. Each mutation is one of a few kinds a hand-written attack would also try:
//! flipped bits, bytes cut or repeated, tokens that mean something to an HTTP or
//! JSON parser, huge numbers, and long runs that cross a size limit.

use fastrand::Rng;

/// Tokens with a meaning to some parser on the way: separators, escapes, encodings,
/// numbers at the edges of their types, path tricks.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\0",
    b"%00",
    b"%",
    b"%2e%2e/",
    b"../",
    b"/./",
    b"//",
    b"?",
    b"&",
    b"=",
    b"#",
    b";",
    b":",
    b",",
    b" ",
    b"\t",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"{",
    b"}",
    b"[",
    b"]",
    b"-1",
    b"0",
    b"1e300",
    b"-0",
    b"NaN",
    b"18446744073709551615",
    b"18446744073709551616",
    b"9223372036854775808",
    b"340282366920938463463374607431768211456",
    b"0.000000000000000000001",
    b"null",
    b"true",
    b"\xc3\x28",
    b"\xf0\x9f\x8f\x88",
    b"\xff\xfe",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 99999999999\r\n",
    b"Content-Length: -1\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: Upgrade\r\n",
    b"Upgrade: h2c\r\n",
];

/// A header line smuggled into a path, query or header value, raw and
/// percent-encoded (a server that decodes a path and copies it into `Location`).
const INJECTIONS: [&[u8]; 3] = [
    b"\r\nX-Fuzz-Injected: 1",
    b"%0d%0aX-Fuzz-Injected:%201",
    b"%0D%0AX-Fuzz-Injected: 1",
];

/// The header a request must never get back: a mutation puts it after a CR LF in
/// a path, query or header value, and a server that copies such text into its
/// answer's head has a header-injection hole.
pub const INJECTED_HEADER: &str = "x-fuzz-injected";

/// `input` with between one and `most` mutations applied.
pub fn mutate(rng: &mut Rng, input: &[u8], most: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.usize(1..=most.max(1)) {
        mutate_once(rng, &mut out);
    }
    out
}

fn mutate_once(rng: &mut Rng, out: &mut Vec<u8>) {
    let at = if out.is_empty() {
        0
    } else {
        rng.usize(0..=out.len())
    };
    match rng.u8(0..10) {
        0 if !out.is_empty() => {
            let i = rng.usize(0..out.len());
            out[i] ^= 1 << rng.u8(0..8);
        }
        1 if !out.is_empty() => {
            let i = rng.usize(0..out.len());
            out[i] = rng.u8(..);
        }
        2 => {
            let token = TOKENS[rng.usize(0..TOKENS.len())];
            out.splice(at..at, token.iter().copied());
        }
        3 if at < out.len() => {
            let end = (at + rng.usize(1..=16)).min(out.len());
            out.drain(at..end);
        }
        4 if at < out.len() => {
            let end = (at + rng.usize(1..=32)).min(out.len());
            let copy: Vec<u8> = out[at..end].to_vec();
            for _ in 0..rng.usize(1..=4) {
                out.splice(end..end, copy.iter().copied());
            }
        }
        5 => {
            // Long enough to cross a limit: a 64 KiB head, a 16 KiB header, a path.
            let len = rng
                .choice([100usize, 1_000, 8_200, 17_000, 66_000])
                .expect("a length");
            let byte = *rng.choice(b"A/%9[{").expect("a byte");
            out.splice(at..at, std::iter::repeat_n(byte, len));
        }
        6 => {
            let number = rng.choice(NUMBERS).expect("a number");
            out.splice(at..at, number.bytes());
        }
        8 => {
            let injection = INJECTIONS[rng.usize(0..INJECTIONS.len())];
            out.splice(at..at, injection.iter().copied());
        }
        7 if out.len() > 1 => {
            let cut = rng.usize(1..out.len());
            out.truncate(cut);
        }
        _ => {
            let n = rng.usize(1..=8);
            out.splice(at..at, (0..n).map(|_| rng.u8(..)));
        }
    }
}

const NUMBERS: [&str; 8] = [
    "0",
    "-1",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "1e999",
    "0x10",
    "99999999999999999999999999",
];

/// `text` with every byte outside printable ASCII written as `\xNN`, so an input
/// or a peer's answer cannot move a terminal's cursor or forge a line.
pub fn escaped(text: &[u8], most: usize) -> String {
    let mut out = String::new();
    for &b in text.iter().take(most) {
        match b {
            b' '..=b'~' if b != b'\\' => out.push(b as char),
            b'\\' => out.push_str("\\\\"),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if text.len() > most {
        out.push_str(&format!("... ({} bytes)", text.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_change_the_input_and_are_reproducible_from_the_seed() {
        let seed = b"GET /api/live/games HTTP/1.1\r\nHost: x\r\n\r\n";
        let first: Vec<Vec<u8>> = {
            let mut rng = Rng::with_seed(7);
            (0..50).map(|_| mutate(&mut rng, seed, 3)).collect()
        };
        let again: Vec<Vec<u8>> = {
            let mut rng = Rng::with_seed(7);
            (0..50).map(|_| mutate(&mut rng, seed, 3)).collect()
        };
        assert_eq!(first, again);
        assert!(first.iter().filter(|m| m.as_slice() != seed).count() > 40);
    }

    #[test]
    fn escaping_leaves_no_control_byte() {
        assert_eq!(escaped(b"a\r\n\x1b[2J\\", 100), "a\\x0d\\x0a\\x1b[2J\\\\");
        assert_eq!(escaped(b"abcdef", 3), "abc... (6 bytes)");
    }
}
