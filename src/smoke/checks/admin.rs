//! `admin.faults`: an ESPN outage injected through livegames' `/admin/faults` shows in
//! the stream's status frames and in `/health`, and clears again. Opt-in: it changes
//! the server it checks.

use std::time::Instant;

use serde_json::Value;

use crate::client::http::Answer;
use crate::contract::FrameType;
use crate::contract::check::Violation;
use crate::smoke::check::{CheckId, CheckResult};
use crate::smoke::conn::{Conn, Next, kind, open_stream, parse, secs};
use crate::smoke::ctx::Ctx;
use crate::smoke::rest::expect_ok;

const ID: CheckId = CheckId::AdminFaults;

/// Injects an ESPN outage through `/admin/faults`, sees it in status frames and
/// `/health`, clears it and sees the recovery.
pub(crate) async fn admin_faults(ctx: &Ctx<'_>, game: Option<&str>, no_game: &str) -> CheckResult {
    let Some(token) = ctx.config.admin_token.as_deref() else {
        return CheckResult::skip(
            ID,
            "needs --admin-token (and a server with livegames' /admin/faults API)",
        );
    };
    let opened = match open_stream(ctx, ID, game, no_game, None).await {
        Ok(opened) => opened,
        Err(not_run) => return not_run,
    };
    let (mut conn, started) = (opened.conn, opened.started);
    let deadline = opened.deadline;
    // Start from a healthy ESPN, as the stream shows it: a status frame from before
    // the fault (a server that just started, say) must not pass for its effect.
    if let Err(why) = await_espn(&mut conn, deadline, Frames::Any, |s| s == "ok").await {
        conn.close().await;
        let why = format!("espn never showed ok on the stream before the fault: {why}");
        return CheckResult::fail(ID, started.elapsed(), why);
    }
    let faults = ctx.target().api("/admin/faults");
    let inject = ctx
        .client
        .post(faults.clone())
        .bearer_auth(token)
        .json(&serde_json::json!({"source": "espn", "mode": "down", "duration": "2m"}));
    if let Some(failed) = expect_ok(ctx.send(inject).await, "POST /admin/faults") {
        conn.close().await;
        return CheckResult::fail(ID, started.elapsed(), failed);
    }
    // The whole round trip is bounded by --timeout (its deadline above): a server
    // whose --stale-after is longer needs a longer --timeout.
    let mut violations = Vec::new();
    let injected = Instant::now();
    let down = await_espn(&mut conn, deadline, Frames::Status, |s| s != "ok").await;
    let down_after = injected.elapsed();
    match &down {
        Ok(_) => violations.extend(health_degraded(ctx).await),
        Err(why) => violations.push(Violation::new(
            "admin",
            0,
            "/sources/espn",
            "a status frame with espn stale or down after the fault",
            why.clone(),
            "",
        )),
    }
    let mut clear_url = faults;
    clear_url.set_query(Some("source=espn"));
    let clear = ctx.client.delete(clear_url).bearer_auth(token);
    if let Some(failed) = expect_ok(ctx.send(clear).await, "DELETE /admin/faults") {
        violations.push(Violation::new("admin", 0, "", "200", failed, ""));
    }
    let cleared = Instant::now();
    let up = await_espn(&mut conn, deadline, Frames::Status, |s| s == "ok").await;
    if let Err(why) = &up {
        violations.push(Violation::new(
            "admin",
            0,
            "/sources/espn",
            "a status frame with espn ok after the fault was cleared",
            why.clone(),
            "",
        ));
    }
    conn.close().await;
    let (state, age) = down.unwrap_or_default();
    let ok = format!(
        "espn {state} after {}{age}, /health degraded; ok again {} after clearing",
        secs(down_after),
        secs(cleared.elapsed())
    );
    CheckResult::judged(ID, started.elapsed(), ok, violations)
}

/// During the outage `/health` must say degraded, with espn not ok.
async fn health_degraded(ctx: &Ctx<'_>) -> Option<Violation> {
    let Answer::Reply { body, .. } = ctx.get("/health").await else {
        return None;
    };
    let health: Value = serde_json::from_slice(&body).unwrap_or_default();
    let espn = health["sources"]["espn"]["state"].as_str().unwrap_or("?");
    if health["status"] == "degraded" && espn != "ok" {
        return None;
    }
    Some(Violation::new(
        "admin",
        0,
        "/status",
        "/health: degraded, espn not ok",
        format!("{}, espn {espn}", health["status"]),
        &health.to_string(),
    ))
}

/// How old ESPN's data was when a status frame said it was not ok, from the frame's
/// `as_of` (contract 1.2.0): " (its data 0.6 s old)", or what the frame lacked.
fn data_age(status: &Value) -> String {
    if status["sources"]["espn"] == "ok" {
        return String::new();
    }
    let (Some(ts), Some(heard)) = (status["ts"].as_i64(), status["as_of"]["espn"].as_i64()) else {
        return " (the status frame does not say how old ESPN's data is: no as_of.espn, contract 1.2.0)".into();
    };
    let age = std::time::Duration::from_micros(ts.saturating_sub(heard).max(0) as u64);
    format!(" (its data {} old)", secs(age))
}

/// Which frames may answer [`await_espn`].
#[derive(Clone, Copy, PartialEq)]
enum Frames {
    /// Only `status` frames: a change of a source's health.
    Status,
    /// Any frame that carries the sources (snapshot, update, final, status).
    Any,
}

/// Waits for a frame (of the kinds `frames` allows) whose `sources.espn` satisfies
/// `wanted`; returns the state it showed and, for a state other than ok, how old the
/// frame said ESPN's data was.
async fn await_espn(
    conn: &mut Conn,
    deadline: tokio::time::Instant,
    frames: Frames,
    wanted: impl Fn(&str) -> bool,
) -> Result<(String, String), String> {
    loop {
        match conn.next(deadline).await {
            Next::Frame(frame) => {
                let Some(value) = parse(&frame) else { continue };
                let is_status = kind(&value) == Some(FrameType::Status);
                if frames == Frames::Status && !is_status {
                    continue;
                }
                let state = value["sources"]["espn"]
                    .as_str()
                    .or_else(|| value["data"]["sources"]["espn"].as_str());
                if let Some(state) = state
                    && wanted(state)
                {
                    return Ok((state.to_owned(), data_age(&value)));
                }
            }
            Next::TimedOut => return Err("no such frame in time".into()),
            other => return Err(other.describe()),
        }
    }
}
