//! permessage-deflate (RFC 7692): what each side offers and agrees in
//! `Sec-WebSocket-Extensions`, and the raw-DEFLATE compressor and decompressor a
//! message goes through.
//!
//! The compressor always uses a 32 KiB window (the Rust backend cannot make it
//! smaller), so a server that accepts an offer asking for `server_max_window_bits`
//! below 15 is declined, and a client never compresses what it sends (a client may
//! always send a message uncompressed), which makes any `client_max_window_bits`
//! the server asks for acceptable. Decompressing with the full window reads any
//! window the peer chose.

use std::cell::RefCell;
use std::fmt::Write as _;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension's token.
pub const NAME: &str = "permessage-deflate";

/// The four bytes a sync flush ends with: removed after compressing, added back
/// before decompressing (RFC 7692 7.2.1).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What a client asks for (`load --compress`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Offer {
    /// No extension offered: frames travel uncompressed.
    #[default]
    Off,
    /// What browsers offer: `permessage-deflate; client_max_window_bits`. The server
    /// may keep its compression context between messages (best ratio).
    On,
    /// Asks the server to compress each message on its own
    /// (`server_no_context_takeover`): what lets a server compress a broadcast once
    /// for every client.
    NoContext,
}

impl Offer {
    /// The `Sec-WebSocket-Extensions` value, None when nothing is offered.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Offer::Off => None,
            Offer::On => Some("permessage-deflate; client_max_window_bits"),
            Offer::NoContext => Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits",
            ),
        }
    }
}

/// The parameters both sides agreed (RFC 7692 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Agreed {
    /// The server compresses each message on its own.
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own.
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window (bits); None: 15.
    pub server_max_window_bits: Option<u8>,
    /// The client's LZ77 window (bits); None: 15.
    pub client_max_window_bits: Option<u8>,
}

impl Agreed {
    /// As the response header writes it.
    pub fn header(&self) -> String {
        let mut out = NAME.to_owned();
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            let _ = write!(out, "; server_max_window_bits={bits}");
        }
        if let Some(bits) = self.client_max_window_bits {
            let _ = write!(out, "; client_max_window_bits={bits}");
        }
        out
    }

    /// Whether the peer in `role` keeps its context between messages (so our
    /// decompressor for its messages must too).
    pub fn keeps_context(&self, server: bool) -> bool {
        if server {
            !self.server_no_context_takeover
        } else {
            !self.client_no_context_takeover
        }
    }
}

/// One extension of a `Sec-WebSocket-Extensions` value: its name and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Extension {
    name: String,
    params: Vec<(String, Option<String>)>,
}

/// Splits a header value into extensions (`,`) and their parameters (`;`), values
/// unquoted.
fn extensions(value: &str) -> Vec<Extension> {
    value
        .split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|extension| {
            let mut parts = extension.split(';').map(str::trim);
            let name = parts.next().unwrap_or("").to_ascii_lowercase();
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_ascii_lowercase(),
                        Some(v.trim().trim_matches('"').to_owned()),
                    ),
                    None => (p.to_ascii_lowercase(), None),
                })
                .collect();
            Extension { name, params }
        })
        .collect()
}

fn window_bits(value: Option<&str>) -> Result<u8, String> {
    match value.map(str::parse::<u8>) {
        Some(Ok(bits @ 8..=15)) => Ok(bits),
        _ => Err(format!(
            "window bits must be 8 to 15, got {}",
            value.map_or("nothing".into(), |v| format!("{v:?}"))
        )),
    }
}

/// Reads the server's answer to our offer: None when it declined (no
/// permessage-deflate in it); an error for anything a client must fail the
/// connection over (an extension not offered, an unknown or repeated parameter, a
/// bad window, an answer when nothing was offered).
pub fn read_answer(answer: &str, offered: Offer) -> Result<Option<Agreed>, String> {
    let mut found = extensions(answer);
    if found.is_empty() {
        return Ok(None);
    }
    if offered == Offer::Off {
        return Err(format!(
            "the server agreed to {answer:?}, which was not offered"
        ));
    }
    if found.len() > 1 || found[0].name != NAME {
        return Err(format!(
            "the server agreed to {answer:?}: only {NAME} was offered"
        ));
    }
    let mut agreed = Agreed::default();
    let mut seen = Vec::new();
    for (key, value) in found.remove(0).params {
        if seen.contains(&key) {
            return Err(format!("the server repeated {key} in {answer:?}"));
        }
        seen.push(key.clone());
        match key.as_str() {
            "server_no_context_takeover" if value.is_none() => {
                agreed.server_no_context_takeover = true
            }
            "client_no_context_takeover" if value.is_none() => {
                agreed.client_no_context_takeover = true
            }
            "server_max_window_bits" => {
                agreed.server_max_window_bits = Some(window_bits(value.as_deref())?)
            }
            "client_max_window_bits" => {
                agreed.client_max_window_bits = Some(window_bits(value.as_deref())?)
            }
            _ => {
                return Err(format!(
                    "the server answered with an unknown parameter {key:?} in {answer:?}"
                ));
            }
        }
    }
    Ok(Some(agreed))
}

/// How a server takes offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerMode {
    /// Declines every offer.
    Off,
    /// Compresses each message on its own (`server_no_context_takeover`, whether
    /// asked or not): a broadcast is compressed once and the same bytes go to every
    /// client, so the cost does not grow with clients.
    #[default]
    Shared,
    /// Keeps a compressor per client (better ratio, a compressor's memory and CPU per
    /// client), unless the client asked for `server_no_context_takeover`.
    PerClient,
}

/// The first offer a server in `mode` can accept, as agreed. Clients always get
/// `client_no_context_takeover` (so their messages are read with no state kept
/// between them); an offer the compressor cannot honour (a window below 15 bits)
/// or with parameters we do not know is passed over.
pub fn accept<'a>(offers: impl IntoIterator<Item = &'a str>, mode: ServerMode) -> Option<Agreed> {
    if mode == ServerMode::Off {
        return None;
    }
    offers
        .into_iter()
        .flat_map(extensions)
        .filter(|e| e.name == NAME)
        .find_map(|offer| accept_one(&offer, mode))
}

fn accept_one(offer: &Extension, mode: ServerMode) -> Option<Agreed> {
    let mut agreed = Agreed {
        server_no_context_takeover: mode == ServerMode::Shared,
        client_no_context_takeover: true,
        ..Agreed::default()
    };
    for (key, value) in &offer.params {
        match (key.as_str(), value.as_deref()) {
            ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => {}
            ("server_max_window_bits", bits) => {
                if window_bits(bits).ok()? != 15 {
                    return None;
                }
                agreed.server_max_window_bits = Some(15);
            }
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", bits) => {
                window_bits(bits).ok()?;
            }
            _ => return None,
        }
    }
    Some(agreed)
}

/// Compresses messages: with the context kept between them, or each on its own.
pub struct Deflater {
    inner: Compress,
    keep_context: bool,
}

impl Deflater {
    pub fn new(keep_context: bool) -> Self {
        Self {
            inner: Compress::new(Compression::default(), false),
            keep_context,
        }
    }

    /// Appends `input` compressed (without the sync-flush tail) to `out`.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(input.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            let before = self.inner.total_in();
            // Compressing into a Vec's spare room cannot fail on a valid stream.
            let _ = self
                .inner
                .compress_vec(&input[consumed..], out, FlushCompress::Sync);
            consumed += (self.inner.total_in() - before) as usize;
            // The flush is complete once it had room to spare.
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        if out[start..].ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
        }
        if !self.keep_context {
            self.inner.reset();
        }
    }
}

/// Why a compressed message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    #[error("a compressed message inflates past {max} bytes")]
    TooLarge { max: usize },
    #[error("a compressed message is not valid DEFLATE data: {0}")]
    Corrupt(String),
}

/// Decompresses messages: with the context kept between them, or each on its own.
pub struct Inflater {
    inner: Decompress,
    keep_context: bool,
}

impl Inflater {
    pub fn new(keep_context: bool) -> Self {
        Self {
            inner: Decompress::new(false),
            keep_context,
        }
    }

    /// Appends the message `payload` inflates to (at most `max` bytes) to `out`.
    pub fn inflate(
        &mut self,
        payload: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let result = self.run(payload, max, out);
        if !self.keep_context || result.is_err() {
            self.inner.reset(false);
        }
        result
    }

    fn run(&mut self, payload: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
        let start = out.len();
        for input in [payload, &SYNC_TAIL[..]] {
            let mut consumed = 0;
            loop {
                if out.len() == out.capacity() {
                    // Grow by steps, never past the cap (plus the byte that shows it
                    // was passed): a bomb costs at most `max` of memory.
                    let so_far = out.len() - start;
                    let room = so_far.clamp(256, 64 * 1024).min(max + 1 - so_far.min(max));
                    out.reserve_exact(room.max(1));
                }
                let before = self.inner.total_in();
                let status = self
                    .inner
                    .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                    .map_err(|e| InflateError::Corrupt(e.to_string()))?;
                consumed += (self.inner.total_in() - before) as usize;
                if out.len() - start > max {
                    return Err(InflateError::TooLarge { max });
                }
                let done = consumed == input.len() && out.len() < out.capacity();
                if done || status == Status::StreamEnd {
                    break;
                }
                if status == Status::BufError && out.len() < out.capacity() {
                    // No progress possible with room to spare: the input is used up.
                    break;
                }
            }
        }
        Ok(())
    }
}

thread_local! {
    /// Messages compressed on their own need no state kept per connection: one
    /// compressor and one decompressor per thread serve them all (each is tens of
    /// KiB, which per connection would dominate a many-connection process).
    static ONE_OFF_DEFLATER: RefCell<Deflater> = RefCell::new(Deflater::new(false));
    static ONE_OFF_INFLATER: RefCell<Inflater> = RefCell::new(Inflater::new(false));
}

/// Compresses one message on its own (no context), with this thread's compressor.
pub fn compress_one(input: &[u8], out: &mut Vec<u8>) {
    ONE_OFF_DEFLATER.with(|d| d.borrow_mut().compress(input, out));
}

/// Inflates one message compressed on its own, with this thread's decompressor.
pub fn inflate_one(payload: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
    ONE_OFF_INFLATER.with(|i| i.borrow_mut().inflate(payload, max, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_hello_inflates() {
        // RFC 7692 7.2.3.1: "Hello" compressed in one block.
        let mut out = Vec::new();
        inflate_one(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
        // 7.2.3.2: the second "Hello" refers back into the first one's window.
        let mut inflater = Inflater::new(true);
        let mut out = Vec::new();
        inflater
            .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100, &mut out)
            .unwrap();
        inflater
            .inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100, &mut out)
            .unwrap();
        assert_eq!(out, b"HelloHello");
    }

    #[test]
    fn messages_round_trip_with_and_without_context() {
        let frame = br#"{"type":"score","game_id":"0022400196","seq":42,"ts":1733000000000000,"home":101,"away":99}"#;
        for keep in [true, false] {
            let (mut deflater, mut inflater) = (Deflater::new(keep), Inflater::new(keep));
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let mut compressed = Vec::new();
                deflater.compress(frame, &mut compressed);
                assert!(!compressed.ends_with(&SYNC_TAIL));
                sizes.push(compressed.len());
                let mut out = Vec::new();
                inflater.inflate(&compressed, 4096, &mut out).unwrap();
                assert_eq!(out, frame);
            }
            // With the context kept, a repeat is a back-reference: much smaller.
            if keep {
                assert!(sizes[1] < sizes[0] / 2, "{sizes:?}");
            } else {
                assert_eq!(sizes[0], sizes[1]);
            }
        }
    }

    #[test]
    fn large_and_hostile_inputs() {
        let big: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut compressed = Vec::new();
        compress_one(&big, &mut compressed);
        let mut out = Vec::new();
        inflate_one(&compressed, big.len(), &mut out).unwrap();
        assert_eq!(out, big);
        // A bomb is stopped at the cap, not inflated whole.
        let zeros = vec![0u8; 10_000_000];
        let mut bomb = Vec::new();
        compress_one(&zeros, &mut bomb);
        assert!(bomb.len() < 20_000);
        let mut out = Vec::new();
        assert_eq!(
            inflate_one(&bomb, 1 << 20, &mut out),
            Err(InflateError::TooLarge { max: 1 << 20 })
        );
        assert!(out.capacity() < 2 << 20);
        let mut out = Vec::new();
        assert!(matches!(
            inflate_one(&[0xff, 0xff, 0xff], 100, &mut out),
            Err(InflateError::Corrupt(_))
        ));
        // The thread's decompressor is usable after a failure.
        let mut out = Vec::new();
        inflate_one(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn a_client_reads_the_servers_answer() {
        let on = Offer::On;
        assert_eq!(read_answer("", on), Ok(None));
        assert_eq!(
            read_answer("permessage-deflate", on),
            Ok(Some(Agreed::default()))
        );
        let agreed = read_answer(
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12; server_no_context_takeover",
            on,
        )
        .unwrap()
        .unwrap();
        assert_eq!(agreed.server_max_window_bits, Some(12));
        assert!(agreed.server_no_context_takeover && !agreed.keeps_context(true));
        assert_eq!(
            agreed.header(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12"
        );
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate, permessage-deflate",
        ] {
            assert!(read_answer(bad, on).is_err(), "{bad}");
        }
        assert!(read_answer("permessage-deflate", Offer::Off).is_err());
    }

    #[test]
    fn a_server_accepts_what_it_can_honour() {
        use ServerMode::*;
        let browser = "permessage-deflate; client_max_window_bits";
        assert_eq!(accept([browser], Off), None);
        let shared = accept([browser], Shared).unwrap();
        assert_eq!(
            shared.header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        let per_client = accept([browser], PerClient).unwrap();
        assert!(per_client.keeps_context(true) && !per_client.keeps_context(false));
        // A client that asks for no context gets it in every mode.
        assert!(
            accept([Offer::NoContext.header().unwrap()], PerClient)
                .unwrap()
                .server_no_context_takeover
        );
        // A small server window cannot be honoured: the next offer is taken.
        let offers = "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=15";
        assert_eq!(
            accept([offers], Shared).unwrap().server_max_window_bits,
            Some(15)
        );
        assert_eq!(
            accept(["permessage-deflate; server_max_window_bits=10"], Shared),
            None
        );
        assert_eq!(accept(["permessage-deflate; mystery"], Shared), None);
        assert_eq!(accept(["x-webkit-deflate-frame"], Shared), None);
        assert!(accept(["foo", "permessage-deflate"], Shared).is_some());
    }
}
