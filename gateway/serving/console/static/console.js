// The Recloser console: asks for an admin key (the form, or #key=… in the address, read once and then
// cleared from it), reads GET /admin/state with it every 2 s, and draws what it says. Text goes in with
// textContent only: nothing the gateway reports is ever parsed as HTML.
"use strict";

(function () {
  const REFRESH_MS = 2000;
  let key = "";
  let timer = null;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else if (name.startsWith("data-")) node.setAttribute(name, value);
      else node[name] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function table(headers, rows) {
    const head = el("tr", {}, ...headers.map((h) => el("th", { class: h.endsWith(" ") ? "num" : "" }, h.trim())));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(x > 0 && x < 0.1 ? 1 : 0)} %`);
  const ms = (s) => (s === null || s === undefined ? "–" : `${Math.round(1000 * s)} ms`);
  const usd = (x) => `$${x.toFixed(x < 1 ? 4 : 2)}`;

  function ago(at, now) {
    const s = Math.max(0, Math.round(now - at));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  }

  const clock = (at) => new Date(at * 1000).toLocaleTimeString([], { hour12: false });

  function bar(share, over) {
    const fill = el("span");
    fill.style.width = `${Math.round(100 * Math.min(1, share))}%`;   // CSSOM: allowed by the page's CSP
    return el("span", { class: over ? "bar over" : "bar" }, fill);
  }

  function badge(state) {
    return el("span", { class: `badge ${state}` }, state);
  }

  function drawRoutes(state) {
    const cards = state.routes.map((route) => {
      const rows = route.targets.map((t) => {
        const why = t.reason + (t.back_in_s !== null ? ` · back in ${Math.ceil(t.back_in_s)} s` : "");
        return el("tr", { class: t.state, "data-target": t.target, "data-state": t.state },
          el("td", {}, t.target),
          el("td", {}, `${t.tier}${t.below_best_tier ? " ↓" : ""}`),
          el("td", {}, badge(t.state)),
          el("td", { class: "why" }, why || "–"),
          el("td", {}, ago(t.since, state.at)),
          el("td", {}, t.quality),
          el("td", { class: "num" }, bar(t.share_1m, false), ` ${pct(t.share_1m)}`),
          el("td", { class: "num" }, t.attempts_1m ? pct(t.error_rate_1m) : "–"),
          el("td", { class: "num" }, String(t.attempts_1m)),
          el("td", { class: "num" }, ms(t.ttft_p50_s)));
      });
      const held = route.hold_s > 0 ? ` · holds up to ${route.hold_s} s: ${route.held ?? 0} held now` : "";
      const title = el("h3", {}, route.name, el("span", { class: "desc", "data-held": String(route.held ?? 0) },
        `${route.description ? route.description + " · " : ""}${route.available} of ${route.targets.length} available${held}`));
      return el("div", { class: "card", "data-route": route.name }, title,
        table(["target", "tier", "state", "why", "since", "quality", "share (1 min) ", "errors ", "attempts ",
               "TTFT p50 "], rows));
    });
    $("routes").replaceChildren(...cards);
  }

  function drawPools(state) {
    if (!state.pools.length) {
      $("pools").replaceChildren(el("p", { class: "muted" }, "This policy has no pools."));
      return;
    }
    $("pools").replaceChildren(...state.pools.map((pool) => {
      const rows = pool.replicas.map((r) => el("tr", { "data-endpoint": r.endpoint, "data-state": r.state },
        el("td", {}, r.endpoint), el("td", {}, badge(r.state)),
        el("td", { class: "num" }, r.running === null ? "–" : String(r.running)),
        el("td", { class: "num" }, r.waiting === null ? "–" : String(r.waiting)),
        el("td", { class: "num" }, r.kv_cache === null ? "–" : pct(r.kv_cache)),
        el("td", { class: "num" }, String(r.in_flight)),
        el("td", { class: "num" }, bar(r.utilisation, r.utilisation >= 1), ` ${pct(r.utilisation)}`),
        el("td", { class: "num" }, r.read_age_s === null ? "never" : `${r.read_age_s} s ago`)));
      return el("div", { class: "card", "data-pool": pool.provider },
        el("h3", {}, pool.provider, el("span", { class: "desc" },
          `${pool.server} · ${pool.queued} queued (at most ${pool.queue_max}) · ${pct(pool.utilisation)} used`)),
        table(["replica", "state", "running ", "waiting ", "KV cache ", "in flight ", "load ", "read "], rows));
    }));
  }

  function drawWaiting(state) {
    const w = state.waiting;
    $("waiting").replaceChildren(table(["", "requests "], [
      el("tr", {}, el("td", {}, "held for a target to come back"),
        el("td", { class: "num" }, w.held === null ? "not held here" : `${w.held} (at most ${w.max_held})`)),
      el("tr", {}, el("td", {}, "queued for a full pool"),
        el("td", { class: "num", "data-queued": "" }, String(w.queued_for_pools))),
    ]));
  }

  function drawSpend(state) {
    const s = state.spend;
    const teams = s.teams.length ? table(["team", "spent today "], s.teams.map((t) =>
      el("tr", { "data-team": t.team }, el("td", {}, t.team), el("td", { class: "num" }, usd(t.spent_usd)))))
      : el("p", { class: "muted" }, `Nothing spent on ${s.day} (UTC) yet.`);
    const budgets = s.budgets.length ? table(["budget", "for", "spent ", "limit ", "used ", "then"],
      s.budgets.map((b) => el("tr", { "data-budget": b.name },
        el("td", {}, b.name), el("td", {}, b.team !== null ? `team ${b.team}` : `key ${b.key}`),
        el("td", { class: "num" }, usd(b.spent_usd)), el("td", { class: "num" }, `${usd(b.limit_usd)} / ${b.period}`),
        el("td", { class: "num" }, bar(b.used, b.used >= 1), ` ${pct(b.used)}`), el("td", {}, b.action))))
      : el("p", { class: "muted" }, "No budgets in this policy.");
    $("spend").replaceChildren(teams, budgets);
  }

  function drawFailovers(state) {
    if (!state.failovers.length) {
      $("failovers").replaceChildren(el("p", { class: "muted" }, "No failover since the gateway started."));
      return;
    }
    $("failovers").replaceChildren(el("div", { class: "card" }, table(["when", "route", "from", "", "to", "why"],
      state.failovers.map((f) => el("tr", { "data-failover": f.route },
        el("td", {}, `${clock(f.at)} (${ago(f.at, state.at)})`), el("td", {}, f.route), el("td", {}, f.from),
        el("td", {}, "→"), el("td", {}, f.to), el("td", {}, f.reason))))));
  }

  function draw(state) {
    $("policy").textContent = `${state.policy.source} · ${state.policy.sha256.slice(0, 12)} · pid ${state.pid}`;
    drawRoutes(state);
    drawPools(state);
    drawWaiting(state);
    drawSpend(state);
    drawFailovers(state);
    const status = $("status");
    status.textContent = `updated ${clock(state.at)}`;
    status.className = "status";
    document.body.setAttribute("data-updated", String(state.at));
  }

  function signOut(message) {
    key = "";
    if (timer !== null) clearTimeout(timer);
    timer = null;
    $("console").hidden = true;
    $("signout").hidden = true;
    $("login").hidden = false;
    $("status").textContent = "not signed in";
    $("policy").textContent = "";
    for (const id of ["routes", "pools", "waiting", "spend", "failovers"]) $(id).replaceChildren();
    const refused = $("refused");
    refused.textContent = message || "";
    refused.hidden = !message;
  }

  async function refresh() {
    timer = null;
    if (!key) return;
    try {
      const answer = await fetch("/admin/state", {
        headers: { Authorization: `Bearer ${key}` }, cache: "no-store", credentials: "omit",
      });
      if (answer.status === 401 || answer.status === 403) {
        signOut("That key was refused: an admin key is needed.");
        return;
      }
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const state = await answer.json();
      if (!key) return;
      $("login").hidden = true;
      $("console").hidden = false;
      $("signout").hidden = false;
      draw(state);
    } catch (err) {
      const status = $("status");
      status.textContent = `gateway unreachable (${err.message}); retrying`;
      status.className = "status stale";
    }
    if (key) timer = setTimeout(refresh, REFRESH_MS);
  }

  function signIn(given) {
    key = given;
    $("refused").hidden = true;
    if (timer !== null) clearTimeout(timer);
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("key");
      const given = input.value.trim();
      input.value = "";
      if (given) signIn(given);
    });
    $("signout").addEventListener("click", () => signOut(""));
    // #key=… never reaches the server; it is read once and taken out of the address bar and history.
    const fragment = new URLSearchParams(location.hash.slice(1));
    const given = fragment.get("key");
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
    if (given) signIn(given);
  });
})();
