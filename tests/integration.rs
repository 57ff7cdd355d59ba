//! The one integration-test binary: each module starts real servers on 127.0.0.1:0.

// Shared harness: servers, WebSocket clients that check every frame, waiting helpers.
mod support;

// GET /api/live/games, timeline, /health, /metrics, 404s.
mod serve_rest;
// The WebSocket stream: snapshot, seq, ts, ping/pong, junk, limits, unknown games.
mod serve_ws;
// The WebSocket protocol's rules: refused handshakes, and Close codes for broken frames.
mod serve_ws_protocol;
// The fuzz bench's engine: each broken server found out, serve left with no finding.
mod fuzz_harness;
// Lossless resume with ?since=.
mod serve_resume;
// The stream as Server-Sent Events, with Last-Event-ID resume.
mod serve_sse;
// A slow client is closed with 4008 while others keep their latency.
mod serve_slow;
// Connection hygiene: header and idle timeouts, the cap on open connections, the
// client frame rate limit.
mod serve_conns;
// What strangers are told: advertised URLs, no upstream URLs, page policy, auth scheme.
mod serve_exposure;
// Upstream faults: the stream goes on, marks what is unavailable, and recovers.
mod serve_faults;
// Kalshi sign-in: signed requests, a mock that checks them, streaming vs polling.
mod serve_kalshi;
// The mock upstreams' other endpoints, as a user's own code calls them.
mod mock_upstreams;
// The day's games found on ESPN's scoreboard and matched to Kalshi's markets.
mod serve_discovery;
// ESPN's scoreboard as the real one shows it: states, probabilities, games dropping off.
mod serve_espn;
// API-SPORTS as the real one answers: the league's day, quota and plan errors.
mod serve_apisports;
// Scores: cache, quota, circuit breaker, missing key.
mod serve_scores;
// InfluxDB (Debian's, on loopback): what serve writes, and a store outage the stream
// does not notice.
mod serve_store;
// Graceful shutdown: every client gets close 1001.
mod serve_shutdown;
// The serve binary as a process: signals with its log output gone, a paused process.
mod serve_process;
// permessage-deflate at both ends: load vs PyPI's websockets and serve, and back.
mod compression;
// load against in-process servers: figures match what the servers did.
mod load_measures;
// Verdicts that say what was measured: frames by kind, drops, shares, back-off.
mod load_verdicts;
// load as a CI gate: budgets and exit codes.
mod load_budgets;
// A run over several workers (--shard, --start-at) merged into one verdict.
mod load_shards;
// Workers in their own network namespaces (deploy/netns/run-shards.sh), merged.
mod netns_shards;
// smoke against our server and an independent one broken one way at a time.
mod smoke;
// load, smoke and record against servers that are not ours: tokens, subprotocols, TLS.
mod foreign;
// The dashboard's page and assets as served.
mod dashboard;
// The dashboard's pages in Chromium: the Playwright specs of tests/e2e.
mod playwright;
// deploy/'s alerting: promtool and amtool checks, and an alert delivered for real
// (serve -> Prometheus -> Alertmanager -> webhook).
mod alerting;
// deploy/ as far as this machine can check it: systemd unit, Dockerfile, compose.
mod deploy;
// The image built around this binary and run with podman: user, read-only root,
// health, a stream from outside, the HEALTHCHECK, SIGTERM.
mod container;
// deploy/staging.sh: the compose stack on the mocks with podman-compose, checked from
// outside (smoke, Prometheus, InfluxDB, an alert in Alertmanager), then down.
mod staging;
// deploy/k8s: kustomize, strict schemas, the workers' arguments, the merge Job's script.
mod deploy_k8s;
// The binary: exit codes and messages for bad usage.
mod cli;
// Module boundaries: the contract stays pure; parts do not reach into each other.
mod layering;
// Packaging: the declared minimum Rust is what the lockfile really needs.
mod packaging;
