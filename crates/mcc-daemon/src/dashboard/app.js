// mcc's dashboard: what the daemon sees, updated live from its event
// stream. Data is only ever put in the page as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function badge(text, kind) {
  return el("span", { class: "badge " + (kind || text) }, text);
}

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}

function renderCluster(c, svc) {
  const card = el("div", { class: "card", "data-cluster": c.name });
  card.append(el("h2", {}, "cluster ", c.name, " ", badge(c.status)));
  card.append(el("div", { class: "muted" },
    `${c.workers} workers · ${c.running} running · network ${c.network} ${c.subnet}`));
  // a cluster over several hosts: where each node runs
  const spans = c.nodes.some((n) => n.host);
  const where = (n) => (spans ? [n.host || "-", n.zone || "-"] : []);
  card.append(table(["node", "role", "IP", "state", "image"].concat(spans ? ["host", "zone"] : []),
    c.nodes.map((n) => [n.name, n.role, n.ip || "-", badge(n.state), n.image].concat(where(n)))));
  if (svc && (svc.workers.length || svc.services.length)) {
    card.append(el("h2", {}, "Workers"));
    const ws = el("div", { class: "workers" });
    for (const w of svc.workers) {
      const box = el("div", { class: "worker" + (w.healthy ? "" : " down"), "data-worker": w.name },
        el("h3", {}, w.name, " ", badge(w.healthy ? "healthy" : "down")));
      for (const r of w.replicas) {
        box.append(el("span", { class: "chip " + r.state, "data-replica": `${r.service}.${r.replica}` },
          `${r.service}.${r.replica}`));
      }
      if (!w.replicas.length) box.append(el("span", { class: "muted" }, "no replicas"));
      ws.append(box);
    }
    card.append(ws);
    card.append(el("h2", {}, "Services"));
    card.append(table(["service", "image", "replicas", "running", "where"],
      svc.services.map((s) => [s.service, s.image, s.replicas,
        badge(`${s.running}/${s.replicas}`, s.running === s.replicas ? "running" : "partial"),
        s.instances.map((i) => `${i.replica}@${i.worker}`).join(" ")])));
  }
  return card;
}

let stream = null;

async function refresh() {
  const r = await fetch("/ui/state", { credentials: "same-origin" });
  if (r.status === 401) { showLogin(); return; }
  if (!r.ok) return;
  const s = await r.json();
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = s.token;
  const root = $("clusters");
  root.replaceChildren(...s.clusters.map((c) => renderCluster(c, s.services[c.name])));
  if (!s.clusters.length) root.append(el("p", { class: "muted" }, "No clusters. Make one with mcc create."));
  if (!stream) listen();
}

let pending = null;
function soon() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh(); }, 150);
}

function listen() {
  stream = new EventSource("/ui/events");
  stream.onopen = () => { const b = $("live"); b.textContent = "live"; b.className = "badge on"; };
  stream.onerror = () => { const b = $("live"); b.textContent = "reconnecting"; b.className = "badge off"; };
  stream.onmessage = stream.onerror;
  for (const kind of ["engine", "service", "operation", "daemon", "token"]) {
    stream.addEventListener(kind, (m) => {
      const e = JSON.parse(m.data);
      const list = $("events");
      const when = new Date(e.time * 1000).toISOString().slice(11, 19);
      list.prepend(el("li", { value: e.seq }, `${when} [${e.kind}] ${e.message}`));
      while (list.children.length > 200) list.lastChild.remove();
      soon();
    });
  }
}

function showLogin() {
  if (stream) { stream.close(); stream = null; }
  $("app").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  const b = $("live"); b.textContent = "offline"; b.className = "badge off";
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const r = await fetch("/ui/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("token").value.trim(), secret: $("secret").value.trim() }),
  });
  $("secret").value = "";
  if (r.ok) refresh(); else $("login-error").textContent = "Unauthorized: check the token and secret key.";
});

$("logout").addEventListener("click", async () => {
  await fetch("/ui/logout", { method: "POST", credentials: "same-origin" });
  showLogin();
});

refresh();
