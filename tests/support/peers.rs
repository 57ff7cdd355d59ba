//! Real servers from the registries the project uses (npm's socket.io, PyPI's
//! aiohttp and websockets), started as processes on loopback.

use std::time::Duration;

/// Whether a real server's package is installed; if not, skipped (saying how to
/// install it) or, where tools are required, failed.
pub fn peer_installed(what: &str, installed: bool, how: &str) -> bool {
    use crate::support::tools::{Need, env_flag, proceed};
    let need = match (installed, env_flag("LIVEGAMES_REQUIRE_TOOLS")) {
        (true, _) => Need::Run,
        (false, true) => Need::Fail(format!(
            "{what} is required (LIVEGAMES_REQUIRE_TOOLS=1) but not installed: {how}"
        )),
        (false, false) => Need::Skip(format!("SKIPPED: the {what} test: {how}")),
    };
    proceed(need)
}

pub type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// Starts a real server (`program script`), which prints `port N` first; returns it,
/// the rest of what it prints, and its port. It is killed when dropped.
pub async fn spawn_peer(
    program: &std::path::Path,
    script: &std::path::Path,
) -> (tokio::process::Child, Lines, String) {
    spawn_peer_with(program, script, &[]).await
}

/// [`spawn_peer`] with arguments after the script.
pub async fn spawn_peer_with(
    program: &std::path::Path,
    script: &std::path::Path,
    args: &[&str],
) -> (tokio::process::Child, Lines, String) {
    use tokio::io::AsyncBufReadExt;
    let mut server = tokio::process::Command::new(program)
        .arg(script)
        .args(args)
        .current_dir(script.parent().unwrap())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the server says its port")
        .unwrap()
        .and_then(|l| l.strip_prefix("port ").map(str::to_owned))
        .expect("a port line");
    (server, lines, port)
}
