// The livegames dashboard: #/live lists the games, #/live/{id} follows one, #/scores
// shows NFL and NHL, #/ops what an operator looks at first.
// No build step, no dependencies, no network beyond this server.
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  // Points kept per chart; past this the series is thinned to every other point,
  // so memory stays bounded however long the page stays open.
  const MAX_POINTS = Math.max(100, Number(params.get("cap")) || 20000);
  const FLUSH_MS = 200; // frames are applied and drawn at most 5 times a second
  const LIST_REFRESH_MS = 2000;
  const SCORES_REFRESH_MS = Math.max(1000, Number(params.get("scoresEvery")) || 10000);
  const OPS_REFRESH_MS = Math.max(200, Number(params.get("opsEvery")) || 5000);
  const RECONNECT_MAX_MS = 10000;
  const view = document.getElementById("view");
  const subtitle = document.getElementById("subtitle");
  const conn = document.getElementById("conn");
  let page = null;

  // Builds an element; strings become text nodes (never HTML).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  function setConn(state, text) {
    const kind = { live: "pass", connecting: "muted", reconnecting: "warn", offline: "fail", idle: "muted" }[state];
    conn.className = "badge " + kind;
    conn.dataset.state = state;
    conn.textContent = text || state;
  }

  const pct = (v) => (v == null ? "–" : Math.round(v * 100) + "%");
  // A market that never traded has no last price; a settled one shows what it paid.
  const cents = (m) => {
    if (m == null) return "–";
    if (m.settlement != null) return m.settlement >= 0.5 ? "settled YES" : "settled NO";
    return m.last_price == null ? "–" : Math.round(m.last_price * 100) + "¢";
  };
  const score = (s) => (s == null ? "–" : s.away + " – " + s.home);
  // ESPN's period and clock as a fan reads them: "Q2 5:32", "End of Q2", "OT 1:05",
  // "Final", "Postponed"; nothing before the tip.
  const OFF_STATES = { final: "Final", postponed: "Postponed", canceled: "Canceled", suspended: "Suspended" };
  const clock = (p) => {
    if (OFF_STATES[p.state]) return OFF_STATES[p.state];
    if (p.state !== "live" || p.period == null) return "";
    const extra = p.period - 4;
    const period = extra > 0 ? (extra > 1 ? extra + "OT" : "OT") : "Q" + p.period;
    const c = (p.clock || "").trim();
    return c === "" || c === "0.0" || c === "0:00" ? "End of " + period : period + " " + c;
  };
  // A finished game has no win probability left: say who won instead of a dash.
  const homeWin = (p, home) => {
    if (p.home_win_prob != null) return pct(p.home_win_prob);
    if (p.state === "final" && p.score) {
      if (p.score.home === p.score.away) return "tied";
      return home + (p.score.home > p.score.away ? " won" : " lost");
    }
    return "–";
  };
  // Times as the chart's axis writes them: "19:42:05", local.
  const hms = (ms) => window.LivegamesChart.timeLabel(ms, 1000);
  // "12 s", "2 min 5 s", "1 h 3 min".
  const age = (ms) => {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
    return Math.floor(s / 3600) + " h" + (Math.floor(s / 60) % 60 ? " " + (Math.floor(s / 60) % 60) + " min" : "");
  };
  // Each source's health, and for one that is not ok how old its data is (contract
  // 1.2.0 `as_of`): "espn stale, data 12 s old", "espn down, last heard 2 min ago".
  const sourceStates = (p, now) => ["espn", "kalshi"].map((name) => {
    const health = p.sources ? p.sources[name] : null;
    const heard = p.as_of ? p.as_of[name] : null;
    let text = name + " " + (health || "–");
    if (health && health !== "ok" && heard != null) {
      text += (health === "down" ? ", last heard " : ", data ") + age(now - heard / 1000) + (health === "down" ? " ago" : " old");
    }
    return { name, health, heard, text };
  });
  const sources = (p, now) => sourceStates(p, now).map((s) => s.text).join(" · ");
  const allOk = (p) => !!p.sources && p.sources.espn === "ok" && p.sources.kalshi === "ok";

  function listPage() {
    let stopped = false;
    let timer = null;
    subtitle.textContent = "live games";
    const body = el("tbody");
    const table = el("table", { id: "games", "aria-label": "Live games" },
      el("thead", {}, el("tr", {}, ...["Game", "Score", "Clock", "State", "Home win", "Market", "Sources"].map((h) => el("th", {}, h)))),
      body);
    const note = el("p", { class: "muted", id: "list-note" }, "Loading…");
    view.replaceChildren(el("section", { class: "wide" }, el("h2", {}, "Games"), table, note));
    setConn("connecting", "loading");

    function row(g) {
      const p = g.latest || {};
      const link = el("a", { href: "#/live/" + encodeURIComponent(g.id), class: "game-link" },
        g.away.abbreviation + " @ " + g.home.abbreviation);
      return el("tr", { class: p.state || "", "data-game": g.id },
        el("td", { class: "teams" }, link, " ", el("span", { class: "muted" }, g.league.toUpperCase() + " · " + g.away.name + " at " + g.home.name)),
        el("td", {}, score(p.score)), el("td", {}, clock(p)), el("td", { class: "state" }, p.state || "–"),
        el("td", { class: "home-win" }, homeWin(p, g.home.abbreviation)), el("td", {}, cents(p.market)),
        el("td", { class: "sources" + (p.sources && !allOk(p) ? " warn" : "") }, sources(p, Date.now())));
    }

    async function refresh() {
      try {
        const res = await fetch("/api/live/games", { cache: "no-store" });
        if (!res.ok) throw new Error("HTTP " + res.status);
        const list = await res.json();
        if (stopped) return;
        body.replaceChildren(...list.games.map(row));
        const live = list.games.filter((g) => g.latest && g.latest.state === "live").length;
        note.textContent = list.games.length ? live + " of " + list.games.length + " games live" : "No games on this server.";
        setConn("live", "updated " + hms(Date.now()));
      } catch (e) {
        if (!stopped) setConn("offline", "list unavailable (" + e.message + ")");
      }
      if (!stopped) timer = setTimeout(refresh, LIST_REFRESH_MS);
    }
    refresh();
    return { stop() { stopped = true; clearTimeout(timer); } };
  }

  // A game's series for LivegamesChart (assets/chart.js): drawn whole at most once
  // per flush, so the axes always fit the data and the series spans the full width.
  function chart(canvas) {
    const keys = ["seq", "times", "prob", "price", "periods", "clocks", "plays"];
    const series = Object.fromEntries(keys.map((k) => [k, []]));
    let league = "nba";
    let dirty = true;
    let last = null;
    const tzOffsetMs = -new Date().getTimezoneOffset() * 60000;

    function add(seq, point) {
      series.seq.push(seq);
      series.times.push(point.observed_at / 1000);
      series.prob.push(point.home_win_prob);
      series.price.push(point.market ? point.market.last_price : null);
      series.periods.push(point.period);
      series.clocks.push(clock(point));
      series.plays.push(point.last_play);
      if (series.seq.length > MAX_POINTS) thin();
      dirty = true;
    }
    function thin() {
      for (const k of keys) series[k] = series[k].filter((_, i) => i % 2 === 1);
    }
    function render() {
      if (!dirty) return last;
      dirty = false;
      last = window.LivegamesChart.draw(canvas, { ...series, league, tzOffsetMs });
      canvas.dataset.points = series.seq.length;
      return last;
    }
    function setLeague(l) { if (l && l !== league) { league = l; dirty = true; } }
    function clear() { for (const k of keys) series[k] = []; dirty = true; }
    const onResize = () => { dirty = true; render(); };
    window.addEventListener("resize", onResize);
    // What the chart shows, in numbers: for the end-to-end tests.
    function shown() {
      const L = render();
      const n = series.times.length;
      return {
        points: n, yLo: L.y.lo, yHi: L.y.hi, yTicks: L.y.ticks, xTicks: L.x.ticks, xStep: L.x.step,
        plotLeft: L.pad.l, plotRight: L.pad.l + L.w,
        xFirst: n ? L.px(series.times[0]) : null, xLast: n ? L.px(series.times[n - 1]) : null,
        periods: L.periods.map((p) => p.label), moves: L.moves, gap: L.gap,
        values: series.prob.concat(series.price).filter((v) => v != null),
      };
    }
    return { add, render, clear, setLeague, shown, series: () => series, seqs: () => series.seq.slice(), stop: () => window.removeEventListener("resize", onResize) };
  }

  function unknownGame(id) {
    setConn("idle", "no stream");
    subtitle.textContent = "unknown game";
    view.replaceChildren(el("section", { class: "wide notice", id: "unknown" },
      el("h2", {}, "No game “" + id + "” on this server."),
      el("p", {}, el("a", { href: "#/live", id: "back" }, "← Back to the live games"))));
  }

  function gamePage(id) {
    let stopped = false;
    let ws = null;
    let attempt = 0;
    let reconnectTimer = null;
    let flushTimer = null;
    let queue = [];
    let lastSeq = 0;
    let epoch = null; // the server run lastSeq belongs to (contract 1.1.0)
    let holes = 0;
    let loaded = false; // the timeline has been drawn; reconnects resume from lastSeq
    subtitle.textContent = "game " + id;
    const scoreline = el("div", { class: "scoreline", id: "scoreline" }, "–");
    const detail = el("div", { class: "muted", id: "detail" }, "");
    const staleNote = el("p", { class: "warn", id: "stale" }, "");
    const note = el("p", { class: "warn", id: "game-note" }, "");
    const canvas = el("canvas", { class: "chart tall", id: "chart", "data-points": "0", role: "img", "aria-label": "Win probability and market price chart" });
    const gapLine = el("span", { id: "gap", class: "gap" }, "");
    const legend = el("div", { class: "legend" },
      el("span", {}, el("i", { style: "background: var(--accent)" }), "ESPN home win probability"),
      el("span", {}, el("i", { style: "background: var(--c3)" }), "Kalshi last price (yes = home wins)"),
      el("span", {}, el("i", { style: "background: var(--c2); opacity: .45" }), "gap between them"),
      gapLine);
    const moves = el("tbody", { id: "moves" });
    view.replaceChildren(
      el("section", {}, el("p", {}, el("a", { href: "#/live" }, "← All games")), scoreline, detail, staleNote, note),
      el("section", {}, el("h2", {}, "Biggest moves"),
        el("table", { class: "moves", "aria-label": "Biggest moves" }, el("thead", {}, el("tr", {}, ...["", "Move", "When", "Clock", "Play"].map((h) => el("th", {}, h)))), moves)),
      el("section", { class: "wide" }, el("h2", {}, "Win probability and market price"), canvas, legend));
    const plot = chart(canvas);
    let info = null;
    let current = null; // the game now: the latest point, with any status since
    let lastKnown = null; // the latest point with ESPN's score, for an ESPN outage
    const ticker = setInterval(() => header(current), 1000); // ages keep moving

    function header(point) {
      if (!point) return;
      current = point;
      if (point.score) lastKnown = point;
      const teams = info ? [info.away.abbreviation, info.home.abbreviation] : ["away", "home"];
      const shown = point.score ? point : lastKnown;
      scoreline.textContent = shown && shown.score ? teams[0] + " " + shown.score.away + " – " + shown.score.home + " " + teams[1] : teams[0] + " @ " + teams[1];
      const now = Date.now();
      detail.textContent = [point.state, clock(shown || point), (point.state === "final" && point.home_win_prob == null ? "" : "home win ") + homeWin(shown || point, teams[1]), "market " + cents(point.market), sources(point, now)].filter(Boolean).join(" · ");
      staleNote.textContent = staleness(point, shown, now);
      staleNote.dataset.stale = staleNote.textContent ? "yes" : "no";
    }

    // What an ESPN outage means for the numbers on screen, with their age.
    function staleness(point, shown, now) {
      const espn = sourceStates(point, now)[0];
      if (!espn.health || espn.health === "ok" || !shown || !shown.score) return "";
      const heard = espn.heard != null ? espn.heard / 1000 : shown.observed_at / 1000;
      const when = hms(heard);
      return "ESPN is " + espn.health + ": the score, clock and win probability are from " + when + ", " + age(now - heard) + " ago.";
    }

    // The gap now and at its widest, and the biggest moves, from what the chart drew.
    function readouts() {
      const L = plot.render();
      const s = plot.series();
      const pts = (g) => Math.round(Math.abs(g) * 100) + " pts";
      const side = (g) => (Math.round(g * 100) === 0 ? "level with ESPN" : pts(g) + (g > 0 ? " above" : " below") + " ESPN");
      const parts = [];
      if (L.gap.now) parts.push("market " + side(L.gap.now.gap) + " now");
      if (L.gap.widest) parts.push("widest " + pts(L.gap.widest.gap) + " at " + hms(L.gap.widest.t) + (s.clocks[L.gap.widest.i] ? " (" + s.clocks[L.gap.widest.i] + ")" : ""));
      gapLine.textContent = parts.join(" · ");
      const rows = [["ESPN", "prob", "var(--accent)"], ["Market", "price", "var(--c3)"]].flatMap(([name, key, colour]) =>
        L.moves[key].map((m) => ({ name, colour, m })));
      rows.sort((a, b) => a.m.t0 - b.m.t0);
      moves.replaceChildren(...rows.map(({ name, colour, m }) => el("tr", {},
        el("td", {}, el("i", { class: "swatch", style: "background: " + colour }), name),
        el("td", {}, pct(m.from) + " → " + pct(m.to)),
        el("td", {}, hms(m.t0) === hms(m.t1) ? hms(m.t1) : hms(m.t0) + "–" + hms(m.t1)),
        el("td", {}, [s.clocks[m.i0], s.clocks[m.i1]].filter(Boolean).filter((c, i, a) => a.indexOf(c) === i).join(" → ") || "–"),
        el("td", {}, el("div", { class: "play", title: s.plays[m.i1] || "" }, s.plays[m.i1] || "")))));
      if (!rows.length) moves.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No move of 5 points or more yet.")));
    }

    async function load() {
      setConn("connecting", "loading");
      let res;
      try {
        res = await fetch("/api/games/" + encodeURIComponent(id) + "/timeline", { cache: "no-store" });
      } catch (e) {
        return retry("timeline unavailable");
      }
      if (stopped) return;
      if (res.status === 404 || res.status === 400) return unknownGame(id);
      if (!res.ok) return retry("timeline HTTP " + res.status);
      const timeline = await res.json();
      if (stopped) return;
      plot.clear();
      for (const p of timeline.points) plot.add(p.seq, p.data);
      lastSeq = timeline.last_seq;
      epoch = timeline.epoch || null;
      loaded = true;
      const latest = timeline.points.length ? timeline.points[timeline.points.length - 1].data : null;
      header(latest);
      readouts();
      connect();
    }

    function connect() {
      if (stopped) return;
      setConn("connecting", "connecting");
      const base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
      const resume = "?since=" + lastSeq + (epoch ? "&epoch=" + encodeURIComponent(epoch) : "");
      ws = new WebSocket(base + "/ws/live/" + encodeURIComponent(id) + resume, "livegames.v1");
      ws.onopen = () => { attempt = 0; setConn("live", "live"); };
      ws.onmessage = (event) => {
        queue.push(event.data);
        if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
      };
      ws.onclose = (event) => {
        ws = null;
        if (stopped) return;
        flush();
        if (event.code === 4404) return unknownGame(id);
        retry("disconnected (" + event.code + ")");
      };
    }

    // Reconnects after a growing, jittered delay; resumes from lastSeq.
    function retry(why) {
      if (stopped) return;
      const delay = Math.min(RECONNECT_MAX_MS, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt++;
      setConn("reconnecting", why + "; retrying in " + (delay / 1000).toFixed(1) + " s");
      reconnectTimer = setTimeout(() => (loaded ? connect() : load()), delay);
    }

    function flush() {
      clearTimeout(flushTimer);
      flushTimer = null;
      const frames = queue;
      queue = [];
      let latest = null;
      for (const text of frames) {
        let f;
        try { f = JSON.parse(text); } catch (e) { continue; }
        switch (f.type) {
          case "snapshot":
            if (epoch && f.epoch && f.epoch !== epoch) { restart(); return; }
            info = f.game;
            plot.setLeague(info && info.league);
            latest = f.data;
            break;
          case "update":
          case "final":
          case "status":
            if (f.seq <= lastSeq) break; // already shown (a replay overlapping the timeline)
            if (f.seq > lastSeq + 1) holes += f.seq - lastSeq - 1;
            lastSeq = f.seq;
            if (f.type === "status") {
              note.textContent = f.message;
              // The sources' health and ages change; the data is the latest point's.
              latest = { ...(latest || current || {}), state: f.state, sources: f.sources, as_of: f.as_of || (current && current.as_of) };
              break;
            }
            plot.add(f.seq, f.data);
            latest = f.data;
            break;
          case "error":
            if (f.code === "resume_ahead" || f.code === "epoch_changed") { restart(); return; }
            if (f.code === "resume_gap") { holes++; note.textContent = f.message; }
            break;
        }
      }
      canvas.dataset.lastSeq = lastSeq;
      canvas.dataset.holes = holes;
      header(latest);
      readouts();
    }

    // The server no longer knows our seq (it restarted): start again from its timeline.
    function restart() {
      note.textContent = "The server restarted; reloading the game.";
      if (ws) { ws.onclose = null; ws.close(1000); ws = null; }
      queue = [];
      lastSeq = 0;
      loaded = false;
      load();
    }

    load();
    return {
      stop() {
        stopped = true;
        clearTimeout(reconnectTimer);
        clearTimeout(flushTimer);
        clearInterval(ticker);
        plot.stop();
        if (ws) {
          // The close event says whether the closing handshake completed; kept for the
          // end-to-end tests.
          ws.onclose = (event) => {
            window.__livegamesLastClose = { code: event.code, wasClean: event.wasClean };
          };
          ws.close(1000, "left the page");
          ws = null;
        }
      },
      seqs: () => plot.seqs(),
      chart: () => plot.shown(),
    };
  }

  // #/scores: NFL and NHL from /api/{league}/scores, refreshed; each league shows
  // loading, its scores with the cache state (HIT/MISS and age), or the reason the
  // server gave for not having them (no key, quota spent, circuit open...).
  function scoresPage() {
    let stopped = false;
    let timer = null;
    subtitle.textContent = "NFL and NHL scores";
    const leagues = ["nfl", "nhl"].map((league) => {
      const badge = el("span", { class: "badge muted cache", id: "cache-" + league, "data-state": "loading" }, "loading");
      const body = el("div", { id: "scores-" + league, "data-state": "loading" },
        el("p", { class: "muted" }, "Loading " + league.toUpperCase() + " scores…"));
      const section = el("section", { "aria-label": league.toUpperCase() + " scores" }, el("h2", {}, league.toUpperCase() + " ", badge), body);
      return { league, badge, body, section, table: null, fetchedAt: null };
    });
    view.replaceChildren(...leagues.map((l) => l.section));
    setConn("connecting", "loading");

    function table(l, scores) {
      const rows = scores.games.map((g) => el("tr", { "data-game": String(g.id), class: g.status },
        el("td", { class: "teams" }, g.away.name + " @ " + g.home.name),
        el("td", {}, g.away.score == null ? "–" : g.away.score + " – " + g.home.score),
        el("td", {}, g.status_detail), el("td", {}, g.clock || "")));
      return el("table", { class: "scores", "aria-label": l.league.toUpperCase() + " scores" },
        el("thead", {}, el("tr", {}, ...["Game", "Score", "Status", "Clock"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, "No " + l.league.toUpperCase() + " games today."))])));
    }

    function showScores(l, scores, cache, age) {
      l.table = table(l, scores);
      l.fetchedAt = Date.now() - age * 1000;
      l.body.dataset.state = "ok";
      l.body.replaceChildren(l.table);
      l.badge.className = "badge " + (cache === "HIT" ? "pass" : "muted") + " cache";
      l.badge.dataset.state = "ok";
      l.badge.dataset.cache = cache || "";
      l.badge.dataset.age = String(age);
      l.badge.textContent = (cache || "?") + (cache === "HIT" ? " · cached " + age + " s ago" : " · fetched just now");
    }

    function showError(l, code, message) {
      l.body.dataset.state = "error";
      l.body.dataset.code = code;
      l.badge.className = "badge fail cache";
      l.badge.dataset.state = "error";
      l.badge.textContent = code;
      const box = el("p", { class: "fail error-reason" }, "Scores unavailable (" + code + "): " + message);
      const stale = l.table ? [el("p", { class: "muted" }, "Last scores, from " + hms(l.fetchedAt) + ":"), l.table] : [];
      l.body.replaceChildren(box, ...stale);
    }

    async function load(l) {
      let res;
      try {
        res = await fetch("/api/" + l.league + "/scores", { cache: "no-store" });
      } catch (e) {
        return stopped || showError(l, "offline", "cannot reach the server (" + e.message + ")");
      }
      let body = null;
      try { body = await res.json(); } catch (e) { /* judged below */ }
      if (stopped) return;
      if (res.ok && body && Array.isArray(body.games)) {
        return showScores(l, body, res.headers.get("x-cache"), Number(res.headers.get("age")) || 0);
      }
      const code = (body && typeof body.error === "string" && body.error) || "HTTP " + res.status;
      const retry = res.headers.get("retry-after");
      const reason = ((body && body.message) || "the server gave no reason").replace(/[.\s]*$/, ".");
      const message = reason + (retry ? " Retry in " + retry + " s." : "");
      showError(l, code, message);
    }

    async function refresh() {
      await Promise.all(leagues.map(load));
      if (stopped) return;
      const failing = leagues.filter((l) => l.body.dataset.state === "error").length;
      if (failing) setConn("reconnecting", "updated " + hms(Date.now()) + ", " + failing + " of 2 unavailable");
      else setConn("live", "updated " + hms(Date.now()));
      timer = setTimeout(refresh, SCORES_REFRESH_MS);
    }
    refresh();
    return { stop() { stopped = true; clearTimeout(timer); } };
  }

  // #/ops: what the operator on call looks at first, from /api/ops (serve's own
  // metrics, read back): the alerts that would fire now with the thresholds of
  // deploy/prometheus/alerts.yml, then service health, API usage, the scores cache,
  // InfluxDB writes and the circuit breakers, each as figures (their meaning on hover)
  // and charts over the last minutes.
  function opsPage() {
    let stopped = false;
    let timer = null;
    let last = null;
    subtitle.textContent = "operations";
    const alertsBox = el("section", { id: "ops-alerts", class: "wide" }, el("h2", {}, "Alerts"), el("p", { class: "muted" }, "Loading…"));
    const groupsBox = el("div", { id: "ops-groups", class: "ops-groups wide" });
    view.replaceChildren(alertsBox, groupsBox);
    setConn("connecting", "loading");

    const duration = (s) => {
      if (s < 1) return Math.round(s * 1000) + " ms";
      if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
      const m = Math.floor(s / 60), hrs = Math.floor(m / 60), days = Math.floor(hrs / 24);
      if (days) return days + " d " + (hrs % 24) + " h";
      if (hrs) return hrs + " h " + String(m % 60).padStart(2, "0") + " m";
      return Math.floor(s % 60) ? m + " m " + String(Math.floor(s % 60)).padStart(2, "0") + " s" : m + " m";
    };
    const number = (v) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(2));
    // A figure as a person reads it; a value that was not measured is a dash, never 0.
    function shown(f) {
      if (f.value == null) return "–";
      if (f.text) return f.text.replace("_", "-");
      switch (f.unit) {
        case "s": return duration(f.value);
        case "ratio": return (Math.round(f.value * 1000) / 10) + "%";
        case "/s": return number(f.value) + "/s";
        case "/min": return number(f.value) + "/min";
        case "lines": return number(f.value) + " lines";
        default: return number(f.value);
      }
    }
    const axis = (unit) => (v) => unit === "ratio" ? Math.round(v * 100) + "%" : unit === "s" ? duration(v) : number(v);

    function renderAlerts(alerts) {
      const order = { firing: 0, pending: 1, not_measured: 2, ok: 3 };
      const rows = alerts.slice().sort((a, b) => order[a.state] - order[b.state]).map((a) => {
        const kind = { firing: "fail", pending: "warn", ok: "pass", not_measured: "muted" }[a.state];
        const words = { firing: "firing", pending: "pending", ok: "ok", not_measured: "no data" }[a.state];
        const observed = a.observed == null ? "nothing to judge yet" : "now " + number(a.observed) + (a.threshold == null ? "" : ", threshold " + number(a.threshold));
        return el("tr", { "data-alert": a.name, "data-state": a.state, title: a.summary },
          el("td", {}, el("span", { class: "badge " + kind }, words)),
          el("td", {}, a.name), el("td", { class: "muted" }, a.severity + (a.for_s ? ", for " + duration(a.for_s) : "")),
          el("td", {}, observed));
      });
      const firing = alerts.filter((a) => a.state === "firing").length;
      const heading = el("h2", {}, "Alerts ", el("span", { class: "badge " + (firing ? "fail" : "pass"), id: "ops-firing", "data-firing": String(firing) },
        firing ? firing + " firing" : "none firing"));
      alertsBox.replaceChildren(heading, el("table", { class: "scores", "aria-label": "Alerts" }, el("tbody", {}, ...rows)));
    }

    function renderGroup(g) {
      const figures = g.figures.map((f) => el("div", { class: "figure", role: "group", "aria-label": f.label, "data-figure": f.id, "data-value": f.value == null ? "" : String(f.value), title: f.help },
        el("div", { class: "muted" }, f.label), el("div", { class: "value" }, shown(f))));
      const charts = g.series.map((s) => {
        const canvas = el("canvas", { class: "ops-chart", "data-series": s.id });
        return { s, canvas, box: el("div", { class: "ops-series" }, el("div", { class: "muted" }, s.label), canvas) };
      });
      const section = el("section", { class: "ops-group", id: "ops-" + g.id, "aria-label": g.title }, el("h2", {}, g.title),
        el("div", { class: "figures" }, ...figures), ...charts.map((c) => c.box));
      return { section, charts };
    }

    function render(body) {
      renderAlerts(body.alerts);
      const groups = body.groups.map(renderGroup);
      groupsBox.replaceChildren(...groups.map((g) => g.section));
      for (const g of groups) for (const c of g.charts) c.canvas.__axes = window.LivegamesChart.drawSeries(c.canvas, [c.s], axis(c.s.unit));
    }

    async function refresh() {
      try {
        const res = await fetch("/api/ops", { cache: "no-store" });
        if (!res.ok) throw new Error("HTTP " + res.status);
        last = await res.json();
        if (stopped) return;
        render(last);
        setConn("live", "updated " + hms(Date.now()));
      } catch (e) {
        if (stopped) return;
        setConn("offline", "cannot reach the server (" + e.message + ")");
      }
      timer = setTimeout(refresh, OPS_REFRESH_MS);
    }
    const onResize = () => last && render(last);
    window.addEventListener("resize", onResize);
    refresh();
    return { stop() { stopped = true; clearTimeout(timer); window.removeEventListener("resize", onResize); }, data: () => last };
  }

  function route() {
    if (page) page.stop();
    const match = location.hash.match(/^#\/live\/([^/?#]+)$/);
    if (location.hash === "#/scores") page = scoresPage();
    else if (location.hash === "#/ops") page = opsPage();
    else page = match ? gamePage(decodeURIComponent(match[1])) : listPage();
    window.__livegames = page; // for the end-to-end tests
  }
  window.addEventListener("hashchange", route);
  if (location.hash.startsWith("#/live") || location.hash === "#/scores" || location.hash === "#/ops") route(); else location.hash = "#/live";
})();
