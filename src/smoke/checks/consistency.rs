//! Does the server say the same thing twice? A resume (`?since=`) must replay what the
//! main stream sent, frame for frame, and the timeline must hold the same points in
//! the shape of live updates.

use serde_json::Value;

use crate::contract::FrameType;
use crate::contract::check::{FrameChecker, Violation};
use crate::smoke::check::{CheckId, CheckResult};
use crate::smoke::checks::rest::{Targets, fetch_timeline};
use crate::smoke::checks::stream::MainStream;
use crate::smoke::conn::{Frame, Next, kind, open_stream, parse, raw};
use crate::smoke::ctx::Ctx;
use crate::smoke::diff::{first_difference, shape_diff};
use crate::text::excerpt;

/// `?since=` the main stream's snapshot seq replays what the stream sent after it,
/// each frame as first sent, then a snapshot.
pub(crate) async fn resume(ctx: &Ctx<'_>, main: &MainStream) -> CheckResult {
    const ID: CheckId = CheckId::WsResume;
    let (Some(game), Some(since)) = (main.game.as_deref(), main.snapshot_seq) else {
        return CheckResult::skip(ID, main.skip_reason.clone());
    };
    // In the snapshot's epoch when it named one (a 1.1.0 client), else as 1.0.0.
    let resume_at = (since, main.snapshot_epoch.as_deref());
    let opened = match open_stream(ctx, ID, Some(game), "", Some(resume_at)).await {
        Ok(opened) => opened,
        Err(not_run) => return not_run,
    };
    let (mut conn, started) = (opened.conn, opened.started);
    let mut checker = FrameChecker::new(ctx.schemas);
    checker.resume_at(game, since);
    let mut violations = Vec::new();
    let deadline = opened.deadline;
    let mut replayed: Vec<u64> = Vec::new();
    let ended = loop {
        let frame = match conn.next(deadline).await {
            Next::Frame(f) => f,
            other => break Err(other.describe()),
        };
        let mut found = Vec::new();
        let Some(value) = (match &frame.text {
            Ok(t) => checker.check_bytes(frame.n, t.as_bytes(), &mut found),
            Err(_) => None,
        }) else {
            continue;
        };
        // The order of the replay is judged here; the frames' schema is ws.schema's.
        violations.extend(found.into_iter().filter(|v| v.check == "seq"));
        match kind(&value) {
            Some(FrameType::Snapshot) => break Ok(value["seq"].as_u64()),
            Some(FrameType::Error) => violations.push(Violation::new(
                "resume",
                frame.n,
                "/code",
                format!("the frames after seq {since}, which the server sent moments ago"),
                format!("error {}: {}", value["code"], value["message"]),
                &raw(&frame),
            )),
            Some(k) if k.is_data_bearing() => {
                let Some(seq) = value["seq"].as_u64() else {
                    continue;
                };
                replayed.push(seq);
                violations.extend(differs_from_first_send(main, seq, &frame, &value));
            }
            _ => {}
        }
    };
    conn.close().await;
    let sent_up_to = main.data_frames.keys().last().copied().unwrap_or(since);
    let replayed_to = replayed.last().copied().unwrap_or(since);
    violations.extend(replay_ended_short(
        ended,
        replayed.len(),
        replayed_to,
        sent_up_to,
    ));
    let ok = format!(
        "since={since}: {} frames replayed (seq {}..{replayed_to}), each as first sent, then a snapshot",
        replayed.len(),
        since + 1
    );
    CheckResult::judged(ID, started.elapsed(), ok, violations)
}

/// An epoch no server has: a resume in it must be refused.
const FOREIGN_EPOCH: &str = "livegames-smoke-another-run";

/// Contract 1.1.0: the server names one epoch in `/api/live/games` and in the
/// snapshot, and answers a resume from another epoch with `epoch_changed` and a fresh
/// snapshot, replaying nothing. A 1.0.0 server (no epoch anywhere) is skipped, saying so.
pub(crate) async fn epoch(ctx: &Ctx<'_>, targets: &Targets, main: &MainStream) -> CheckResult {
    const ID: CheckId = CheckId::WsEpoch;
    let (Some(game), Some(since)) = (main.game.as_deref(), main.snapshot_seq) else {
        return CheckResult::skip(ID, main.skip_reason.clone());
    };
    let version = targets.contract_version.as_deref().unwrap_or("unknown");
    let (listed, streamed) = (targets.epoch.as_deref(), main.snapshot_epoch.as_deref());
    if listed.is_none() && streamed.is_none() && !has_epochs(version) {
        return CheckResult::skip(
            ID,
            format!("the server speaks contract {version}, without epochs (they came in 1.1.0)"),
        );
    }
    let started = std::time::Instant::now();
    let mut violations = Vec::new();
    if listed != streamed || listed.is_none() {
        violations.push(Violation::new(
            "epoch",
            1,
            "/epoch",
            match listed {
                Some(e) => format!("the snapshot to name the epoch /api/live/games named ({e:?})"),
                None => {
                    format!("an epoch in /api/live/games and the snapshot (contract {version})")
                }
            },
            match streamed {
                Some(e) => format!("{e:?}"),
                None => "no epoch in the snapshot".into(),
            },
            "",
        ));
    }
    let Some(current) = streamed.or(listed) else {
        return CheckResult::judged(ID, started.elapsed(), "", violations);
    };
    match refused_as_another_epoch(ctx, game, since, current).await {
        Ok(found) => violations.extend(found),
        Err(failed) => return failed,
    }
    let ok = format!(
        "epoch {current:?} in /api/live/games and the snapshot; a resume from another epoch got epoch_changed and a fresh snapshot"
    );
    CheckResult::judged(ID, started.elapsed(), ok, violations)
}

/// Whether a contract version has epochs (1.1.0 and later).
fn has_epochs(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => major > 1 || (major == 1 && minor >= 1),
        _ => false,
    }
}

/// Resumes after `since` in [`FOREIGN_EPOCH`]: expects `epoch_changed`, then a
/// snapshot in `current`, and nothing replayed between them.
async fn refused_as_another_epoch(
    ctx: &Ctx<'_>,
    game: &str,
    since: u64,
    current: &str,
) -> Result<Vec<Violation>, CheckResult> {
    const ID: CheckId = CheckId::WsEpoch;
    let opened = open_stream(ctx, ID, Some(game), "", Some((since, Some(FOREIGN_EPOCH)))).await?;
    let (mut conn, deadline) = (opened.conn, opened.deadline);
    let mut violations = Vec::new();
    let mut refusal = None;
    let snapshot = loop {
        let frame = match conn.next(deadline).await {
            Next::Frame(f) => f,
            other => break Err(other.describe()),
        };
        let Some(value) = parse(&frame) else { continue };
        match kind(&value) {
            Some(FrameType::Snapshot) => break Ok((frame, value)),
            Some(FrameType::Error) => refusal = value["code"].as_str().map(str::to_owned),
            Some(k) if k.is_data_bearing() => violations.push(Violation::new(
                "epoch",
                frame.n,
                "/seq",
                format!("no replay for a client from another epoch (since={since}&epoch={FOREIGN_EPOCH})"),
                format!("seq {} replayed", excerpt(&value["seq"], 24)),
                &raw(&frame),
            )),
            _ => {}
        }
    };
    conn.close().await;
    if refusal.as_deref() != Some("epoch_changed") {
        violations.push(Violation::new(
            "epoch",
            0,
            "/code",
            "an error frame with code epoch_changed before the snapshot",
            match &refusal {
                Some(code) => format!("error {code:?}"),
                None => "no error frame".into(),
            },
            "",
        ));
    }
    match snapshot {
        Ok((frame, value)) if value["epoch"].as_str() != Some(current) => {
            violations.push(Violation::new(
                "epoch",
                frame.n,
                "/epoch",
                format!("a fresh snapshot in the server's epoch ({current:?})"),
                excerpt(&value["epoch"], 80),
                &raw(&frame),
            ));
        }
        Ok(_) => {}
        Err(why) => violations.push(Violation::new(
            "epoch",
            0,
            "",
            "a fresh snapshot after epoch_changed",
            why,
            "",
        )),
    }
    Ok(violations)
}

/// A replayed frame must be exactly what the main stream was sent under that seq.
fn differs_from_first_send(
    main: &MainStream,
    seq: u64,
    frame: &Frame,
    value: &Value,
) -> Option<Violation> {
    let (_, sent) = main.data_frames.get(&seq)?;
    let at = first_difference(sent, value, String::new())?;
    Some(Violation::new(
        "resume",
        frame.n,
        at.clone(),
        format!(
            "seq {seq} exactly as first sent: {}",
            excerpt(sent.pointer(&at).unwrap_or(sent), 80)
        ),
        excerpt(value.pointer(&at).unwrap_or(&Value::Null), 80),
        &raw(frame),
    ))
}

/// The replay must end with a snapshot, after everything the main stream was sent.
fn replay_ended_short(
    ended: Result<Option<u64>, String>,
    replayed: usize,
    replayed_to: u64,
    sent_up_to: u64,
) -> Option<Violation> {
    match ended {
        Err(why) => Some(Violation::new(
            "resume",
            0,
            "",
            "the replay, then a snapshot",
            format!("{replayed} frames replayed, then {why}"),
            "",
        )),
        Ok(_) if replayed_to < sent_up_to => Some(Violation::new(
            "resume",
            0,
            "/seq",
            format!("a replay up to at least seq {sent_up_to} (sent on the first connection)"),
            format!("a snapshot after seq {replayed_to}"),
            "",
        )),
        Ok(_) => None,
    }
}

/// The timeline, fetched after the stream, holds every point the stream sent with the
/// same data, and every point has the shape of live update data.
pub(crate) async fn timeline_matches(ctx: &Ctx<'_>, main: &MainStream) -> CheckResult {
    const ID: CheckId = CheckId::TimelineMatchesStream;
    let (Some(game), Some(since)) = (main.game.as_deref(), main.snapshot_seq) else {
        return CheckResult::skip(ID, main.skip_reason.clone());
    };
    let Some(reference) = main.points().next().map(|(_, _, data)| data) else {
        return CheckResult::skip(ID, "the stream sent no update or final frame to compare");
    };
    let (value, took) = match fetch_timeline(ctx, ID, game, Some(since)).await {
        Ok(v) => v,
        Err(failed) => return failed,
    };
    let points = value["points"].as_array().cloned().unwrap_or_default();
    let first_retained = value["first_retained_seq"].as_u64().unwrap_or(0);
    let last_seq = value["last_seq"].as_u64().unwrap_or(0);
    let mut violations = Vec::new();
    for (i, point) in points.iter().enumerate() {
        if let Some((pointer, expected, actual)) = shape_diff(reference, &point["data"], "") {
            violations.push(Violation::new(
                "shape",
                0,
                format!("/points/{i}/data{pointer}"),
                format!("the shape of live update data: {expected}"),
                actual,
                &point.to_string(),
            ));
        }
    }
    let mut compared = 0;
    for (seq, frame_no, data) in main.points() {
        let point = points.iter().find(|p| p["seq"].as_u64() == Some(seq));
        match point {
            Some(point) => {
                compared += 1;
                if let Some(pointer) = first_difference(data, &point["data"], String::new()) {
                    violations.push(Violation::new(
                        "timeline",
                        frame_no,
                        format!("/data{pointer}"),
                        format!(
                            "the timeline's point {seq} to hold what the stream sent: {}",
                            excerpt(data.pointer(&pointer).unwrap_or(data), 80)
                        ),
                        excerpt(point["data"].pointer(&pointer).unwrap_or(&Value::Null), 80),
                        &point.to_string(),
                    ));
                }
            }
            None if seq >= first_retained && seq <= last_seq => {
                violations.push(Violation::new(
                    "timeline",
                    frame_no,
                    "/seq",
                    format!("the timeline to hold point {seq}, which the stream sent"),
                    "no such point",
                    "",
                ));
            }
            None => {}
        }
    }
    let ok =
        format!("{compared} points equal to what the stream sent; every point has the live shape");
    CheckResult::judged(ID, took, ok, violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_came_in_1_1_0() {
        assert!(!has_epochs("1.0.0") && !has_epochs("unknown") && !has_epochs("1"));
        assert!(has_epochs("1.1.0") && has_epochs("1.12.3") && has_epochs("2.0.0"));
    }
}
