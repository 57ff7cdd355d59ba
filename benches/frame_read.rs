//! What reading one frame costs `load`, hot in cache: the contract reader (the few
//! fields `load` reads, every frame validated as JSON), the pointer reader (a foreign
//! server's shape from `--ts-field`/`--seq-field`), a full `serde_json::Value` (what
//! `load` avoids), and the minimal client's substring search for `ts` (no validation).
//!
//! The last row is what permessage-deflate adds: the frame compressed on its own (as
//! `serve --ws-compress shared` sends it) inflated with the thread's decompressor.
//!
//! Run: `cargo bench --bench frame_read` (a few seconds). Frames: benches/data, recorded
//! from `livegames serve` (a 694-byte snapshot and a 472-byte update).

use std::hint::black_box;
use std::time::Instant;

use livegames::load::session::frame::{FrameReader, FrameShape, TsSpec, TsUnit};

const ROUNDS: u32 = 1_000_000;

fn main() {
    let update = include_str!("data/update-frame.json");
    let snapshot = include_str!("data/snapshot-frame.json");
    let contract = FrameReader::new(&FrameShape::default()).expect("contract shape");
    let foreign = FrameReader::new(&FrameShape {
        ts: TsSpec {
            pointer: "/data/observed_at".into(),
            unit: TsUnit::Us,
        },
        seq: Some("/seq".into()),
        reply_id: None,
    })
    .expect("pointers");
    println!("{:<44} {:>10} {:>10}", "reader", "update ns", "snapshot ns");
    for (name, read) in [
        (
            "contract reader (load's default)",
            &(|t: &str| contract.read(t).map(|f| f.seq).ok().flatten())
                as &dyn Fn(&str) -> Option<u64>,
        ),
        ("pointer reader (--ts-field/--seq-field)", &|t: &str| {
            foreign.read(t).map(|f| f.seq).ok().flatten()
        }),
        ("serde_json::Value (full document)", &|t: &str| {
            serde_json::from_str::<serde_json::Value>(t)
                .ok()
                .and_then(|v| v["seq"].as_u64())
        }),
        ("validation alone (serde_json IgnoredAny)", &|t: &str| {
            serde_json::from_str::<serde::de::IgnoredAny>(t)
                .ok()
                .map(|_| 0)
        }),
        ("substring search for ts (minimal client)", &|t: &str| {
            let at = t.find("\"ts\":")? + 5;
            let digits = &t[at..];
            let end = digits.find(|c: char| !c.is_ascii_digit())?;
            digits[..end].parse().ok()
        }),
    ] {
        println!(
            "{name:<44} {:>10.0} {:>10.0}",
            nanos_per_read(read, update),
            nanos_per_read(read, snapshot)
        );
    }
    let compressed = |frame: &str| {
        let mut out = Vec::new();
        livegames::wire::deflate::compress_one(frame.as_bytes(), &mut out);
        out
    };
    let (update_z, snapshot_z) = (compressed(update), compressed(snapshot));
    let inflate = |z: &[u8]| {
        let mut out = Vec::with_capacity(1024);
        livegames::wire::deflate::inflate_one(z, 1 << 20, &mut out).ok()?;
        Some(out.len() as u64)
    };
    println!(
        "{:<44} {:>10.0} {:>10.0}   ({} and {} bytes compressed)",
        "inflate, compressed on its own",
        nanos_per_read(&|_| inflate(&update_z), update),
        nanos_per_read(&|_| inflate(&snapshot_z), snapshot),
        update_z.len(),
        snapshot_z.len()
    );
}

/// The median over 5 batches of the time per read.
fn nanos_per_read(read: &dyn Fn(&str) -> Option<u64>, frame: &str) -> f64 {
    let mut batches: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..ROUNDS / 5 {
                black_box(read(black_box(frame)));
            }
            started.elapsed().as_nanos() as f64 / f64::from(ROUNDS / 5)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[2]
}
