// The livexec playground: pick a runtime, edit code, add stdin and test cases, Run
// (Ctrl/Cmd+Enter); output streams from GET /executions/:id/events. The session id lives in
// the URL (?session=…), so a link reopens the code and its history. Program output is only
// ever inserted as text (textContent), never as HTML.
"use strict";

const MAX_SHOWN = 1 << 20; // characters of output kept on the page; the rest is in the API
const $ = (id) => document.getElementById(id);
const state = { session: null, language: null, runtimes: [], pristine: true, source: null, shown: 0 };

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

// The API key, when the service needs one: pasted into #key-box after a 401, kept in
// localStorage and sent as "Authorization: Bearer KEY".
const KEY_ITEM = "livexec.apiKey";
function storedKey() {
  try { return localStorage.getItem(KEY_ITEM) || ""; } catch (_) { return ""; }
}
function authHeaders() {
  const key = storedKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}
function askForKey(message) {
  $("key-message").textContent = message;
  $("key-box").hidden = false;
  $("key").focus();
}
function saveKey(ev) {
  ev.preventDefault();
  const key = $("key").value.trim();
  try {
    if (key) localStorage.setItem(KEY_ITEM, key); else localStorage.removeItem(KEY_ITEM);
  } catch (_) { /* storage refused: the key lasts for this page only */ }
  location.reload();
}

// fetch JSON; a non-2xx answer throws an Error carrying the API's message. A 401 also shows
// the field to paste a key into.
async function api(method, path, body) {
  const init = { method, headers: authHeaders() };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new Error(`${method} ${path}: the server did not answer (${e.message})`);
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const msg = json && json.message !== undefined ? json.message : text || res.statusText;
    if (res.status === 401) askForKey(Array.isArray(msg) ? msg.join("; ") : msg);
    throw new Error(`${res.status} ${Array.isArray(msg) ? msg.join("; ") : msg}`);
  }
  return json;
}

// Terminal escape sequences (colours, cursor moves) are dropped from what is shown.
const ANSI = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

let pending = [];
let flushing = false;
function append(text, kind) {
  pending.push([text.replace(ANSI, ""), kind]);
  if (!flushing) {
    flushing = true;
    setTimeout(flush, 0);
  }
}
function flush() {
  flushing = false;
  const out = $("output");
  const batch = pending;
  pending = [];
  for (const [text, kind] of batch) {
    if (state.shown >= MAX_SHOWN) break;
    const part = text.slice(0, MAX_SHOWN - state.shown);
    state.shown += part.length;
    const last = out.lastChild;
    if (last && last.dataset && last.dataset.kind === kind) {
      last.appendChild(document.createTextNode(part));
    } else {
      const span = document.createElement("span");
      span.dataset.kind = kind;
      span.className = kind;
      span.textContent = part;
      out.appendChild(span);
    }
    if (state.shown >= MAX_SHOWN) {
      const note = document.createElement("span");
      note.className = "note";
      note.textContent = "\n[output cut here on the page; GET /executions/:id has all of it]\n";
      out.appendChild(note);
    }
  }
  out.scrollTop = out.scrollHeight;
}

function clearOutput() {
  pending = [];
  state.shown = 0;
  $("output").textContent = "";
  $("test-results").textContent = "";
}

function setVerdict(text, status) {
  const v = $("verdict");
  v.textContent = text;
  v.dataset.status = status || "";
}

function describe(e) {
  const parts = [e.status];
  if (e.error_type) parts.push(e.error_type);
  if (e.status !== "QUEUED" && e.status !== "RUNNING") {
    parts.push(`${e.execution_time_ms} ms`);
    if (e.memory_kb != null) parts.push(`${(e.memory_kb / 1024).toFixed(1)} MiB`);
    if (e.exit_code != null) parts.push(`exit ${e.exit_code}`);
  }
  let text = parts.join(" · ");
  if (e.error_message) text += ` — ${e.error_message}`;
  if (e.error_line != null) text += ` (line ${e.error_line})`;
  return text;
}

// Per-test verdicts of a finished execution, as a table.
function showTests(tests) {
  const box = $("test-results");
  box.textContent = "";
  if (!tests || !tests.length) return;
  const table = document.createElement("table");
  const head = table.insertRow();
  for (const h of ["#", "verdict", "time", "stdout", "message"]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  tests.forEach((t, i) => {
    const row = table.insertRow();
    row.className = "test-result";
    const cells = [String(i + 1), t.verdict, `${t.time_ms} ms`, (t.stdout || "").replace(ANSI, ""), t.message || ""];
    cells.forEach((c, j) => {
      const td = row.insertCell();
      td.textContent = c;
      if (j === 1) td.className = t.verdict;
    });
  });
  box.appendChild(table);
}

function showExecution(e) {
  clearOutput();
  // A compiled language's compiler output (warnings, errors) comes first, as it did live.
  append((e.compile && e.compile.stdout) || "", "compile");
  append((e.compile && e.compile.stderr) || "", "compile");
  append(e.stdout || "", "stdout");
  append(e.stderr || "", "stderr");
  setVerdict(describe(e), e.status);
  showTests(e.tests);
}

async function loadHistory() {
  const list = $("history");
  if (!state.session) { list.textContent = ""; return; }
  const items = await api("GET", `/executions/sessions/${state.session}?limit=20`);
  list.textContent = "";
  for (const e of items) {
    const li = document.createElement("li");
    li.textContent = `${e.queued_at} · ${e.language} · ${describe(e)}`;
    li.addEventListener("click", () => showExecution(e));
    list.appendChild(li);
  }
}

function runtimeOf(id) {
  return state.runtimes.find((r) => r.id === id);
}

function modeOf(id) {
  const rt = runtimeOf(id);
  return id === "c" || id === "cpp" || !rt ? id : rt.language;
}

function setSession(id) {
  state.session = id;
  const url = new URL(location.href);
  if (id) url.searchParams.set("session", id); else url.searchParams.delete("session");
  history.replaceState(null, "", url);
  const link = $("session-link");
  link.textContent = id ? `session ${id}` : "";
}

// A fresh session of `language` with the runtime's template as its code.
async function newSession(language) {
  const created = await api("POST", "/code-sessions", { language });
  const s = await api("GET", `/code-sessions/${created.session_id}`);
  setSession(s.session_id);
  state.language = language;
  state.source = s.source_code;
  state.pristine = true;
  editor.set(s.source_code);
  editor.setLanguage(modeOf(language));
  await loadHistory();
}

function testRow(stdin, expected) {
  const row = document.createElement("div");
  row.className = "test";
  const a = document.createElement("textarea");
  a.placeholder = "stdin";
  a.className = "test-stdin";
  a.rows = 2;
  a.value = stdin || "";
  const b = document.createElement("textarea");
  b.placeholder = "expected stdout";
  b.className = "test-expected";
  b.rows = 2;
  b.value = expected || "";
  const x = document.createElement("button");
  x.type = "button";
  x.textContent = "✕";
  x.addEventListener("click", () => row.remove());
  row.append(a, b, x);
  $("tests").appendChild(row);
}

function runBody() {
  const body = {};
  const stdin = $("stdin").value;
  if (stdin) body.stdin = stdin;
  const tests = [...document.querySelectorAll("#tests .test")].map((row) => ({
    stdin: row.querySelector(".test-stdin").value,
    expected_stdout: row.querySelector(".test-expected").value,
  }));
  if (tests.length) body.tests = tests;
  return Object.keys(body).length ? body : undefined;
}

let source = null;
async function run() {
  showError(null);
  const button = $("run");
  button.disabled = true;
  try {
    const code = editor.get();
    const language = $("language").value;
    if (!state.session) {
      const created = await api("POST", "/code-sessions", { language, templateCode: code });
      setSession(created.session_id);
    } else if (code !== state.source || language !== state.language) {
      await api("PATCH", `/code-sessions/${state.session}`, { source_code: code, language });
    }
    state.source = code;
    state.language = language;
    const accepted = await api("POST", `/code-sessions/${state.session}/run`, runBody());
    clearOutput();
    setVerdict("QUEUED", "QUEUED");
    watch(accepted.execution_id, button);
  } catch (e) {
    showError(e);
    button.disabled = false;
  }
}

// EventSource cannot send a key: with one, read the same stream with fetch and hand each
// event to the same listeners (no automatic reconnection on this path).
class KeyedEventSource {
  constructor(url) {
    this.listeners = {};
    this.readyState = 0;
    this.onerror = null;
    this.abort = new AbortController();
    this.read(url).catch((e) => {
      if (this.readyState === 2) return;
      this.readyState = 2;
      showError(e);
      if (this.onerror) this.onerror(e);
    });
  }
  addEventListener(type, fn) { this.listeners[type] = fn; }
  close() { this.readyState = 2; this.abort.abort(); }
  async read(url) {
    const res = await fetch(url, { headers: authHeaders(), signal: this.abort.signal });
    if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
    this.readyState = 1;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let type = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) type = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        const fn = this.listeners[type];
        if (data.length && fn) fn({ data: data.join("\n") });
      }
    }
  }
}

// Follow the execution's events until its result.
function watch(id, button) {
  if (source) source.close();
  const url = `/executions/${id}/events`;
  source = storedKey() ? new KeyedEventSource(url) : new EventSource(url);
  const chunk = (kind) => (ev) => append(JSON.parse(ev.data).data, kind);
  source.addEventListener("stdout", chunk("stdout"));
  source.addEventListener("stderr", chunk("stderr"));
  source.addEventListener("compile_stdout", chunk("compile"));
  source.addEventListener("compile_stderr", chunk("compile"));
  source.addEventListener("status", (ev) => {
    const s = JSON.parse(ev.data).status;
    setVerdict(s, s);
  });
  source.addEventListener("result", (ev) => {
    source.close();
    source = null;
    const e = JSON.parse(ev.data);
    flush();
    setVerdict(describe(e), e.status);
    showTests(e.tests);
    button.disabled = false;
    loadHistory().catch(showError);
  });
  source.onerror = () => {
    // EventSource reconnects by itself (with Last-Event-ID); say so instead of going blank.
    if (source && source.readyState === EventSource.CONNECTING) setVerdict("reconnecting…", "");
  };
}

let editor;
async function start() {
  editor = LivexecEditor.create($("editor"), "", "python", () => { run(); });
  editor.view.dom.addEventListener("keyup", () => { state.pristine = editor.get() === state.source; });
  $("run").addEventListener("click", run);
  $("add-test").addEventListener("click", () => testRow("", ""));
  $("key-form").addEventListener("submit", saveKey);
  $("key").value = storedKey();
  state.runtimes = await api("GET", "/runtimes");
  const select = $("language");
  for (const rt of state.runtimes.filter((r) => r.available)) {
    const opt = document.createElement("option");
    opt.value = rt.id;
    opt.textContent = rt.version ? `${rt.name} (${rt.version})` : rt.name;
    select.appendChild(opt);
  }
  select.addEventListener("change", async () => {
    try {
      if (state.pristine || !state.session) await newSession(select.value);
      else editor.setLanguage(modeOf(select.value));
    } catch (e) { showError(e); }
  });
  const wanted = new URL(location.href).searchParams.get("session");
  if (wanted) {
    try {
      const s = await api("GET", `/code-sessions/${wanted}`);
      setSession(s.session_id);
      state.language = s.language;
      state.source = s.source_code;
      select.value = s.language;
      editor.set(s.source_code);
      editor.setLanguage(modeOf(s.language));
      await loadHistory();
      return;
    } catch (e) {
      showError(e);
      setSession(null);
    }
  }
  const first = runtimeOf("python") ? "python" : select.value;
  select.value = first;
  await newSession(first);
}

start().catch(showError);
