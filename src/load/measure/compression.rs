//! What permessage-deflate came to on a run that offered it (`--compress`): what the
//! server agreed, on how many connections, the bytes on the wire against the bytes
//! of the messages, and the CPU spent inflating.

use serde::{Deserialize, Serialize};

/// Counted over every connection of a run that offered permessage-deflate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressionCounts {
    /// The offer, as sent in `Sec-WebSocket-Extensions`.
    pub offered: String,
    /// What the server answered, as first seen (None: it declined every time).
    pub agreed: Option<String>,
    /// Connections on which the server agreed, and on which it declined.
    pub agreed_conns: u64,
    pub declined_conns: u64,
    /// Bytes read off the sockets after the handshake: frame headers and payloads
    /// as they travelled (compressed or not).
    pub wire_bytes: u64,
    /// Bytes of the messages those frames carried, inflated.
    pub message_bytes: u64,
    /// Messages that arrived compressed, and the CPU time inflating them took.
    pub inflated: u64,
    pub inflate_micros: u64,
}

impl CompressionCounts {
    pub fn add(&mut self, o: &CompressionCounts) {
        if self.offered.is_empty() {
            self.offered.clone_from(&o.offered);
        }
        if self.agreed.is_none() {
            self.agreed.clone_from(&o.agreed);
        }
        self.agreed_conns += o.agreed_conns;
        self.declined_conns += o.declined_conns;
        self.wire_bytes += o.wire_bytes;
        self.message_bytes += o.message_bytes;
        self.inflated += o.inflated;
        self.inflate_micros += o.inflate_micros;
    }

    /// The run check: the server agreed on every connection.
    pub fn agreed_everywhere(&self) -> bool {
        self.agreed_conns > 0 && self.declined_conns == 0
    }

    /// In a sentence: what was agreed where, and what it saved.
    pub fn observed(&self) -> String {
        let conns = self.agreed_conns + self.declined_conns;
        let agreed = match &self.agreed {
            Some(header) => format!(
                "{} agreed on {} of {conns} connections",
                crate::text::printable(header),
                self.agreed_conns
            ),
            None => format!(
                "the server declined permessage-deflate on all {conns} connections (offered {:?})",
                self.offered
            ),
        };
        format!("{agreed}; {}", self.wire_sentence())
    }

    /// Bytes on the wire against bytes of messages, and the inflating cost.
    pub fn wire_sentence(&self) -> String {
        if self.wire_bytes == 0 {
            return "no bytes came on the wire".into();
        }
        let ratio = self.message_bytes as f64 / self.wire_bytes as f64;
        let mut out = format!(
            "{} on the wire for {} of messages ({ratio:.1}x)",
            decimal_bytes(self.wire_bytes),
            decimal_bytes(self.message_bytes),
        );
        if self.inflated > 0 {
            out.push_str(&format!(
                ", {} messages inflated in {:.1} ms CPU ({:.2} µs each)",
                self.inflated,
                self.inflate_micros as f64 / 1000.0,
                self.inflate_micros as f64 / self.inflated as f64
            ));
        }
        out
    }
}

/// Bytes as measured volumes are written: `850 B`, `4.3 kB`, `8.23 MB`.
fn decimal_bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        _ if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        _ if n >= 1e6 => format!("{:.2} MB", n / 1e6),
        _ if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        _ => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentence_says_what_was_agreed_and_saved() {
        let mut c = CompressionCounts {
            offered: "permessage-deflate; client_max_window_bits".into(),
            agreed: Some("permessage-deflate; server_no_context_takeover".into()),
            agreed_conns: 2,
            wire_bytes: 1000,
            message_bytes: 19_000,
            inflated: 10,
            inflate_micros: 25,
            ..Default::default()
        };
        c.add(&c.clone());
        assert!(c.agreed_everywhere());
        assert_eq!(
            c.observed(),
            "permessage-deflate; server_no_context_takeover agreed on 4 of 4 connections; 2.0 kB on the wire for 38.0 kB of messages (19.0x), 20 messages inflated in 0.1 ms CPU (2.50 µs each)"
        );
        let declined = CompressionCounts {
            offered: "permessage-deflate".into(),
            declined_conns: 3,
            ..Default::default()
        };
        assert!(!declined.agreed_everywhere());
        assert!(
            declined
                .observed()
                .starts_with("the server declined permessage-deflate on all 3 connections")
        );
        assert!(declined.observed().ends_with("no bytes came on the wire"));
    }
}
