// The livegames dashboard: #/live lists the games, #/live/{id} follows one.
// No build step, no dependencies, no network beyond this server.
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  // Points kept per chart; past this the series is thinned to every other point,
  // so memory stays bounded however long the page stays open.
  const MAX_POINTS = Math.max(100, Number(params.get("cap")) || 20000);
  const FLUSH_MS = 200; // frames are applied and drawn at most 5 times a second
  const LIST_REFRESH_MS = 2000;
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
  const cents = (m) => (m == null ? "–" : Math.round(m.last_price * 100) + "¢");
  const score = (s) => (s == null ? "–" : s.away + " – " + s.home);
  // ESPN's period and clock as a fan reads them: "Q2 5:32", "End of Q2", "OT 1:05",
  // "Final"; nothing before the tip.
  const clock = (p) => {
    if (p.state === "final") return "Final";
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
  const sources = (s) => (s ? "espn " + s.espn + " · kalshi " + s.kalshi : "–");

  function listPage() {
    let stopped = false;
    let timer = null;
    subtitle.textContent = "live games";
    const body = el("tbody");
    const table = el("table", { id: "games" },
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
        el("td", { class: "home-win" }, homeWin(p, g.home.abbreviation)), el("td", {}, cents(p.market)), el("td", {}, sources(p.sources)));
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
        setConn("live", "updated " + new Date().toLocaleTimeString());
      } catch (e) {
        if (!stopped) setConn("offline", "list unavailable (" + e.message + ")");
      }
      if (!stopped) timer = setTimeout(refresh, LIST_REFRESH_MS);
    }
    refresh();
    return { stop() { stopped = true; clearTimeout(timer); } };
  }

  // A canvas line chart that draws only new segments; it redraws fully only when
  // the x range doubles or the series is thinned (a logarithmic number of times).
  function chart(canvas) {
    const series = { prob: [], price: [], seq: [] };
    let capacity = 64;
    let drawn = 0;
    let redraws = 0;
    const ctx = canvas.getContext("2d");
    const pad = { l: 40, r: 10, t: 10, b: 20 };
    let w = 0, h = 0;

    function size() {
      const ratio = window.devicePixelRatio || 1;
      const box = canvas.getBoundingClientRect();
      canvas.width = Math.max(1, Math.round(box.width * ratio));
      canvas.height = Math.max(1, Math.round(box.height * ratio));
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      w = box.width - pad.l - pad.r;
      h = box.height - pad.t - pad.b;
    }
    const x = (i) => pad.l + (i / (capacity - 1)) * w;
    const y = (v) => pad.t + (1 - v) * h;
    const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

    function segment(values, colour, from) {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      let pen = false;
      for (let i = Math.max(0, from - 1); i < values.length; i++) {
        const v = values[i];
        if (v == null) { pen = false; continue; }
        if (pen) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v));
        pen = true;
      }
      ctx.stroke();
    }

    function full() {
      redraws++;
      size();
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = css("--line");
      ctx.fillStyle = css("--muted");
      ctx.font = "11px system-ui, sans-serif";
      ctx.lineWidth = 1;
      for (const v of [0, 0.25, 0.5, 0.75, 1]) {
        ctx.beginPath(); ctx.moveTo(pad.l, y(v)); ctx.lineTo(pad.l + w, y(v)); ctx.stroke();
        ctx.fillText(Math.round(v * 100) + "%", 4, y(v) + 4);
      }
      drawn = 0;
      draw();
    }

    function draw() {
      const n = series.seq.length;
      if (n > capacity) {
        while (n > capacity) capacity *= 2;
        return full();
      }
      segment(series.prob, css("--accent"), drawn);
      segment(series.price, css("--c3"), drawn);
      drawn = n;
      canvas.dataset.points = n;
      canvas.dataset.redraws = redraws;
    }

    function add(seq, point) {
      series.seq.push(seq);
      series.prob.push(point.home_win_prob);
      series.price.push(point.market ? point.market.last_price : null);
      if (series.seq.length > MAX_POINTS) thin();
    }

    function thin() {
      for (const key of Object.keys(series)) series[key] = series[key].filter((_, i) => i % 2 === 1);
      capacity = 64;
      while (series.seq.length > capacity) capacity *= 2;
      drawn = -1; // a full redraw is due
    }

    function render() { if (drawn < 0) full(); else draw(); }
    function clear() { for (const key of Object.keys(series)) series[key] = []; capacity = 64; drawn = -1; }
    const onResize = () => full();
    window.addEventListener("resize", onResize);
    size();
    return { add, render, clear, full, seqs: () => series.seq.slice(), stop: () => window.removeEventListener("resize", onResize) };
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
    const note = el("p", { class: "warn", id: "game-note" }, "");
    const canvas = el("canvas", { class: "chart", id: "chart", "data-points": "0" });
    const legend = el("div", { class: "legend" },
      el("span", {}, el("i", { style: "background: var(--accent)" }), "ESPN home win probability"),
      el("span", {}, el("i", { style: "background: var(--c3)" }), "Kalshi last price (yes = home wins)"));
    view.replaceChildren(
      el("section", { class: "wide" }, el("p", {}, el("a", { href: "#/live" }, "← All games")), scoreline, detail, note),
      el("section", { class: "wide" }, el("h2", {}, "Win probability and market price"), canvas, legend));
    const plot = chart(canvas);
    let info = null;

    function header(point) {
      if (!point) return;
      const teams = info ? [info.away.abbreviation, info.home.abbreviation] : ["away", "home"];
      scoreline.textContent = point.score ? teams[0] + " " + point.score.away + " – " + point.score.home + " " + teams[1] : teams[0] + " @ " + teams[1];
      detail.textContent = [point.state, clock(point), (point.state === "final" && point.home_win_prob == null ? "" : "home win ") + homeWin(point, teams[1]), "market " + cents(point.market), sources(point.sources)].filter(Boolean).join(" · ");
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
      plot.render();
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
            latest = f.data;
            break;
          case "update":
          case "final":
          case "status":
            if (f.seq <= lastSeq) break; // already shown (a replay overlapping the timeline)
            if (f.seq > lastSeq + 1) holes += f.seq - lastSeq - 1;
            lastSeq = f.seq;
            if (f.type === "status") { note.textContent = f.message; break; }
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
      plot.render();
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
    };
  }

  function route() {
    if (page) page.stop();
    const match = location.hash.match(/^#\/live\/([^/?#]+)$/);
    page = match ? gamePage(decodeURIComponent(match[1])) : listPage();
    window.__livegames = page; // for the end-to-end tests
  }
  window.addEventListener("hashchange", route);
  if (location.hash.startsWith("#/live")) route(); else location.hash = "#/live";
})();
