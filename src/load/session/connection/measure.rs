//! What a connection does with each frame it reads: time it, read it as JSON (or
//! MessagePack, CBOR, STOMP), follow its seq, settle the replies it answers.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Connection, Pending};
use crate::contract::FrameType;
use crate::contract::rules::{EpochEvent, SeqEvent};
use crate::load::measure::recorder::{Distribution, Recorder};
use crate::load::measure::unreadable::Unreadable;
use crate::load::session::frame::{Decode, FrameFacts};
use crate::load::session::stomp::{self, Stomp};

impl Connection<'_> {
    pub(super) fn on_pong(&mut self, payload: &[u8]) {
        let now = Instant::now();
        self.last_frame = now;
        let Ok(bytes) = <[u8; 8]>::try_from(payload) else {
            return;
        };
        let n = u64::from_be_bytes(bytes);
        if let Some(pos) = self.ws_pings.iter().position(|(k, _)| *k == n) {
            let (_, sent) = self.ws_pings[pos];
            self.ws_pings.drain(..=pos);
            self.record(|r| {
                r.latency(
                    Distribution::WsRtt,
                    now.duration_since(sent).as_micros() as i64,
                )
            });
        }
    }

    /// A data frame arrived: the link is alive, and the first one is timed. Gives the
    /// instant it took, the frame's arrival (one clock read per frame for both).
    pub(super) fn on_frame(&mut self) -> Instant {
        let now = Instant::now();
        self.last_frame = now;
        if self.first_frame {
            self.first_frame = false;
            let since_open = now.duration_since(self.opened).as_micros() as i64;
            let reconnected = self.session.disconnected_at.take();
            self.record(|r| {
                r.latency(Distribution::FirstFrame, since_open);
                if let Some(at) = reconnected {
                    r.counters.reconnect_successes += 1;
                    r.latency(
                        Distribution::Reconnect,
                        now.duration_since(at).as_micros() as i64,
                    );
                }
            });
        }
        now
    }

    /// A STOMP frame: a heart-beat keeps the link alive; a frame is read as JSON,
    /// answered when a reply matches it, measured otherwise.
    pub(super) fn on_stomp(&mut self, bytes: &[u8]) {
        let frame = match stomp::read(bytes) {
            Some(Stomp::HeartBeat) => {
                self.last_frame = Instant::now();
                return;
            }
            Some(Stomp::Frame(frame)) => frame.to_string(),
            None => {
                self.on_frame();
                return self.record(|r| {
                    r.counters.frames += 1;
                    r.counters.bytes += bytes.len() as u64;
                    r.counters.unreadable_frame(Unreadable::NotStomp, bytes);
                });
            }
        };
        let arrived = self.on_frame();
        let config = self.user.config;
        match config.replies.iter().find(|r| r.when.matches(&frame)) {
            Some(reply) => self.reply = Some(reply.send.render(&self.fill(0))),
            None => self.measure(&frame, bytes.len(), arrived),
        }
    }

    /// What a session step matches a frame against: its text, or for `--decode
    /// stomp` the frame as JSON (None: a heart-beat or not a frame).
    pub(super) fn session_view<'t>(&self, bytes: &'t [u8]) -> Option<std::borrow::Cow<'t, str>> {
        match self.user.config.decode {
            Decode::Stomp => match stomp::read(bytes)? {
                Stomp::Frame(frame) => Some(frame.to_string().into()),
                Stomp::HeartBeat => None,
            },
            _ => std::str::from_utf8(bytes).ok().map(Into::into),
        }
    }

    /// A binary frame, read as `--decode` says: JSON in UTF-8 by default,
    /// MessagePack or CBOR decoded into the same pointers, or arrival only.
    pub(super) fn on_binary(&mut self, bytes: &[u8], now: Instant) {
        let decoded = match self.user.config.decode {
            Decode::Bytes => return self.arrived(bytes.len()),
            Decode::Json => match std::str::from_utf8(bytes) {
                Ok(text) => return self.measure(text, bytes.len(), now),
                Err(_) => Err(Unreadable::Binary),
            },
            Decode::Text => Err(Unreadable::Binary),
            Decode::Msgpack => from_msgpack(bytes).ok_or(Unreadable::NotMsgpack),
            Decode::Cbor => from_cbor(bytes).ok_or(Unreadable::NotCbor),
            Decode::Stomp => return self.on_stomp(bytes),
        };
        match decoded {
            Ok(value) => self.measure(&value.to_string(), bytes.len(), now),
            Err(kind) => self.record(|r| {
                r.counters.frames += 1;
                r.counters.bytes += bytes.len() as u64;
                r.counters.unreadable_frame(kind, bytes);
            }),
        }
    }

    /// A frame measured by its arrival alone (`--decode text|bytes`).
    pub(super) fn arrived(&mut self, wire_bytes: usize) {
        self.record(|r| {
            r.counters.frames += 1;
            r.counters.bytes += wire_bytes as u64;
        });
    }

    /// Measures one frame read as JSON text (`wire_bytes` on the wire): counts, seq,
    /// delivery and end-to-end latency, replies.
    pub(super) fn measure(&mut self, text: &str, wire_bytes: usize, received_at: Instant) {
        let received = crate::clock::unix_micros();
        let unreadable = |kind| {
            move |r: &mut Recorder| {
                r.counters.frames += 1;
                r.counters.bytes += wire_bytes as u64;
                r.counters.unreadable_frame(kind, text.as_bytes());
            }
        };
        let facts = match self.user.config.reader.read(text) {
            Ok(facts) => facts,
            Err(_) => return self.record(unreadable(Unreadable::NotJson)),
        };
        if facts.seq.is_none() && facts.ts.is_none() && facts.reply_id.is_none() {
            return self.record(unreadable(Unreadable::NoFields));
        }
        let was_replay = self.replaying;
        if facts.kind == Some(FrameType::Snapshot) {
            self.replaying = false;
        }
        // One lock per frame: the shard is shared by a few connections only.
        let shard = self.user.shard;
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        shard.counters.frames += 1;
        shard.counters.bytes += wire_bytes as u64;
        if let Some(code) = facts.resume_refused {
            self.seq.refused(code);
        }
        if let Some(epoch) = &facts.epoch {
            self.seq.snapshot_epoch(epoch);
            if self.session.epoch.as_deref() != Some(epoch) {
                self.session.epoch = Some(epoch.to_string());
            }
        }
        if let Some(seq) = facts.seq {
            // A frame of no contract type with a seq is data: it steps by one.
            let kind = facts.kind.unwrap_or(FrameType::Update);
            self.follow_seq(kind, seq, &mut shard);
        }
        if facts.kind == Some(FrameType::Error) {
            shard.error("error_frame");
        }
        // Replayed frames carry the time they were first sent: not a delivery latency.
        if !was_replay {
            record_latencies(&facts, received, &mut shard);
        }
        if let Some(id) = facts.reply_id {
            let reply = Reply {
                id,
                server_ts: facts.ts,
                received,
                received_at,
            };
            settle_replies(&mut self.pending, &mut shard, reply);
        }
    }

    /// Counts what a frame's seq says (lost, duplicated, reordered; a server restart)
    /// and remembers where a resume would start.
    pub(super) fn follow_seq(&mut self, kind: FrameType, seq: u64, shard: &mut Recorder) {
        let counters = &mut shard.counters;
        counters.seq_checked();
        match self.seq.observe(kind, seq) {
            EpochEvent::Seq(SeqEvent::InOrder) => {}
            EpochEvent::Seq(SeqEvent::Gap { missing, .. }) => add(&mut counters.lost, missing),
            EpochEvent::Seq(SeqEvent::Duplicate { .. }) => add(&mut counters.duplicates, 1),
            EpochEvent::Seq(SeqEvent::Backwards { .. }) => add(&mut counters.reordered, 1),
            EpochEvent::Restarted { why } => {
                counters.restarts += 1;
                counters.unrecoverable += 1;
                let after = self
                    .session
                    .last_seq
                    .map_or_else(|| "the start".to_owned(), |s| format!("seq {s}"));
                counters.name_unrecoverable(&format!(
                    "{}: what the server sent after {after} is gone ({why}); it went on at seq {seq}",
                    self.user.url
                ));
            }
        }
        // Where a resume starts: the latest data frame, or the snapshot (which is
        // authoritative, also after a server restart lowered the seqs).
        if kind.is_data_bearing() || kind == FrameType::Snapshot {
            self.session.last_seq = Some(seq);
        }
    }
}

/// Delivery (receive time minus the frame's send time) and end to end (minus the
/// upstream observation time, for updates).
fn record_latencies(facts: &FrameFacts, received: i64, shard: &mut Recorder) {
    if let Some(ts) = facts.ts {
        shard.latency(Distribution::Delivery, received - ts);
    }
    if matches!(facts.kind, Some(FrameType::Update | FrameType::Final))
        && let Some(observed) = facts.observed_at
    {
        shard.latency(Distribution::EndToEnd, received - observed);
    }
}

fn add(count: &mut Option<u64>, n: u64) {
    *count.get_or_insert(0) += n;
}

/// A pong as it arrived.
struct Reply {
    id: u64,
    server_ts: Option<i64>,
    /// Unix µs.
    received: i64,
    received_at: Instant,
}

/// Matches a pong to its ping: earlier pings still waiting are counted as missing.
fn settle_replies(pending: &mut VecDeque<Pending>, shard: &mut Recorder, reply: Reply) {
    while let Some(p) = pending.front().copied() {
        if p.id > reply.id {
            break;
        }
        pending.pop_front();
        if p.id != reply.id {
            shard.error("pong_missing");
            continue;
        }
        shard.counters.pongs += 1;
        shard.latency(
            Distribution::Rtt,
            reply.received_at.duration_since(p.due).as_micros() as i64,
        );
        // The pong's ts is the server's clock between our send and receive.
        if let Some(server_ts) = reply.server_ts {
            let actual_rtt = (reply.received - p.sent_us).max(0);
            shard.counters.observe_offset(
                actual_rtt as u64,
                server_ts - (p.sent_us + reply.received) / 2,
            );
        }
    }
}

/// One MessagePack value that is the whole frame (a decoder that stops early has not
/// read this frame: other bytes can start like a short MessagePack value).
fn from_msgpack(bytes: &[u8]) -> Option<serde_json::Value> {
    use serde::Deserialize;
    let mut decoder = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let value = serde_json::Value::deserialize(&mut decoder).ok()?;
    (decoder.get_ref().position() == bytes.len() as u64).then_some(value)
}

/// One CBOR value that is the whole frame.
fn from_cbor(bytes: &[u8]) -> Option<serde_json::Value> {
    let mut rest = bytes;
    let value = ciborium::from_reader::<serde_json::Value, _>(&mut rest).ok()?;
    rest.is_empty().then_some(value)
}
