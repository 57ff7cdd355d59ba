//! One WebSocket frame header (RFC 6455 5.2): parsed from a buffer without copying,
//! written into one, and the masking both roles apply.

use bytes::BufMut;
use tokio_tungstenite::tungstenite::error::{Error, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// A frame header as read: the payload follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    /// The permessage-deflate bit: set on the first frame of a compressed message.
    pub rsv1: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
}

/// Control frames carry at most this much (RFC 6455 5.5).
pub const MAX_CONTROL_PAYLOAD: u64 = 125;

/// The header at the start of `buf` and its length, or None when more bytes are
/// needed. Reserved bits other than RSV1 and unknown opcodes are protocol errors;
/// RSV1 is the caller's to judge (it means something only with permessage-deflate).
pub fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, Error> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    if first & 0x30 != 0 {
        return Err(Error::Protocol(ProtocolError::NonZeroReservedBits));
    }
    let opcode = OpCode::from(first & 0x0f);
    match opcode {
        OpCode::Data(Data::Reserved(n)) => {
            return Err(Error::Protocol(ProtocolError::UnknownDataFrameType(n)));
        }
        OpCode::Control(Control::Reserved(n)) => {
            return Err(Error::Protocol(ProtocolError::UnknownControlFrameType(n)));
        }
        _ => {}
    }
    let masked = second & 0x80 != 0;
    let (len, mut at) = match second & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    let mask = if masked {
        let Some(key) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some(key.try_into().expect("4 bytes"))
    } else {
        None
    };
    let header = Header {
        fin: first & 0x80 != 0,
        rsv1: first & 0x40 != 0,
        opcode,
        mask,
        len,
    };
    if let OpCode::Control(_) = opcode {
        if !header.fin {
            return Err(Error::Protocol(ProtocolError::FragmentedControlFrame));
        }
        if len > MAX_CONTROL_PAYLOAD {
            return Err(Error::Protocol(ProtocolError::ControlFrameTooBig));
        }
    }
    Ok(Some((header, at)))
}

/// Appends a header for a `len`-byte payload: one final frame (we never fragment).
pub fn write(out: &mut impl BufMut, opcode: OpCode, rsv1: bool, mask: Option<[u8; 4]>, len: usize) {
    out.put_u8(0x80 | if rsv1 { 0x40 } else { 0 } | u8::from(opcode));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.put_u8(mask_bit | len as u8),
        126..=0xffff => {
            out.put_u8(mask_bit | 126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(mask_bit | 127);
            out.put_u64(len as u64);
        }
    }
    if let Some(key) = mask {
        out.put_slice(&key);
    }
}

/// The bytes a header takes for a `len`-byte payload.
pub fn header_len(masked: bool, len: usize) -> usize {
    let length = match len {
        0..=125 => 0,
        126..=0xffff => 2,
        _ => 8,
    };
    2 + length + if masked { 4 } else { 0 }
}

/// XORs `data` with the mask key (both directions: masking is its own inverse).
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let word = u32::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let value = u32::from_ne_bytes(chunk.try_into().expect("4 bytes")) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(opcode: OpCode, rsv1: bool, mask: Option<[u8; 4]>, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, opcode, rsv1, mask, len);
        out
    }

    #[test]
    fn headers_round_trip_at_every_length_encoding() {
        for len in [0usize, 125, 126, 0xffff, 0x1_0000] {
            let bytes = written(OpCode::Data(Data::Text), true, Some([1, 2, 3, 4]), len);
            let (header, at) = parse(&bytes).unwrap().unwrap();
            assert_eq!(at, bytes.len());
            assert_eq!(header_len(true, len), bytes.len());
            assert_eq!(
                header_len(false, len),
                written(OpCode::Data(Data::Text), false, None, len).len()
            );
            assert_eq!(header.len, len as u64);
            assert!(header.fin && header.rsv1);
            assert_eq!(header.mask, Some([1, 2, 3, 4]));
            // Any prefix is "need more", never an error or a wrong header.
            for cut in 0..bytes.len() {
                assert_eq!(parse(&bytes[..cut]).unwrap(), None, "len {len} cut {cut}");
            }
        }
    }

    #[test]
    fn the_rfc_examples_parse() {
        // RFC 6455 5.7: an unmasked "Hello" and a masked one.
        let (h, at) = parse(&[0x81, 0x05, 0x48]).unwrap().unwrap();
        assert_eq!((h.len, at, h.mask), (5, 2, None));
        let (h, at) = parse(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d])
            .unwrap()
            .unwrap();
        assert_eq!((h.len, at, h.mask), (5, 6, Some([0x37, 0xfa, 0x21, 0x3d])));
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, h.mask.unwrap());
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn broken_headers_are_named() {
        let err = |bytes: &[u8]| parse(bytes).unwrap_err().to_string();
        assert!(err(&[0x91, 0]).contains("Reserved bits"));
        assert!(err(&[0x83, 0]).contains("Unknown data frame type"));
        assert!(err(&[0x8b, 0]).contains("Unknown control frame type"));
        assert!(err(&[0x09, 0]).contains("Fragmented control frame"));
        assert!(err(&[0x89, 126, 0, 126]).contains("Control frame too big"));
        // RSV1 alone is the caller's to judge.
        assert!(parse(&[0xc1, 0]).unwrap().unwrap().0.rsv1);
    }

    #[test]
    fn masking_is_its_own_inverse_at_any_length() {
        let original: Vec<u8> = (0..=22).collect();
        let mut data = original.clone();
        apply_mask(&mut data, [9, 8, 7, 6]);
        assert_ne!(data, original);
        assert_eq!(data[5], 5 ^ 8);
        apply_mask(&mut data, [9, 8, 7, 6]);
        assert_eq!(data, original);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any bytes are a header, "need more", or an error; never a panic,
            /// and never a header that claims more bytes than it was given.
            #[test]
            fn any_bytes_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
                if let Ok(Some((header, at))) = parse(&bytes) {
                    prop_assert!((2..=14).contains(&at) && at <= bytes.len());
                    if let OpCode::Control(_) = header.opcode {
                        prop_assert!(header.fin && header.len <= MAX_CONTROL_PAYLOAD);
                    }
                }
            }

            /// Every header this module writes reads back as written.
            #[test]
            fn written_headers_read_back(
                code in prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
                rsv1: bool,
                mask: Option<[u8; 4]>,
                len in 0usize..300_000,
            ) {
                let opcode = OpCode::from(code);
                let len = if code >= 8 { len % 126 } else { len };
                let bytes = written(opcode, rsv1, mask, len);
                let (header, at) = parse(&bytes).unwrap().unwrap();
                prop_assert_eq!(at, bytes.len());
                prop_assert_eq!(header, Header { fin: true, rsv1, opcode, mask, len: len as u64 });
            }

            /// Masking twice gives the payload back, whatever its length.
            #[test]
            fn masking_is_its_own_inverse(data in proptest::collection::vec(any::<u8>(), 0..64), key: [u8; 4]) {
                let mut masked = data.clone();
                apply_mask(&mut masked, key);
                apply_mask(&mut masked, key);
                prop_assert_eq!(masked, data);
            }
        }
    }
}
