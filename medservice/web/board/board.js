// The shift lead's live board: the facility's unacknowledged alerts as they arrive, and
// acknowledging them. It uses only the public HTTP/JSON API and the token the user pastes.
//
// EventSource cannot send an Authorization header, so the alert watch (Server-Sent Events)
// is read with fetch() and a stream reader; on reconnect it sends Last-Event-ID itself, and
// the server replays only what this page missed. Every alert is keyed by its name, so an
// alert the list and the stream both bring is shown once.
"use strict";

(() => {
  const TOKEN_KEY = "medservice.board.token";
  const FACILITY_KEY = "medservice.board.facility";
  const PAGE_SIZE = 500;
  const RELIST_MS = 30000; // acknowledgements made elsewhere reach the board this late at most
  const ACK_TRIES = 3;
  const CALL_TIMEOUT_MS = 20000;
  // A stream that brings nothing, not even a heartbeat, for this long is taken for dead (a
  // network path that dropped without closing) and opened again: three heartbeat gaps once
  // two heartbeats were seen, before that the server's default gap (10 s) three times.
  const STALL_DEFAULT_MS = 30000;
  const STALL_MIN_MS = 2000;

  const DA = {
    title: "Alarmtavle",
    titleFacility: "Alarmer – {facility}",
    idle: "Ikke forbundet",
    connecting: "Forbinder …",
    live: "Forbundet – alarmer vises, når de opstår",
    waiting: "Forbindelsen er afbrudt – forbinder igen om {seconds} s",
    stopped: "Afbrudt",
    zone: "Alle tider er lokal tid ({zone}).",
    kind: {
      ALERT_KIND_MISSED_DOSE: "Glemt dosis",
      ALERT_KIND_DISCREPANCY: "Afvigelse",
      ALERT_KIND_ESCALATION: "Eskalering: ikke kvitteret i tide",
      ALERT_KIND_CARD_CHANGE: "Ændring fra FMK skal godkendes",
    },
    kindOther: "Alarm",
    discrepancyCode: "Afvigelse: {code}",
    severity: {
      SEVERITY_HIGH: "Høj", SEVERITY_MEDIUM: "Middel", SEVERITY_LOW: "Lav",
      SEVERITY_INFO: "Information",
    },
    severityLabel: "Alvor",
    resident: "Beboer",
    room: "værelse",
    dueAt: "Dosis planlagt",
    occurredAt: "Tidspunkt",
    created: "Opstået",
    shift: "Vagt",
    details: "Detaljer",
    acknowledge: "Kvittér",
    acknowledging: "Kvitterer …",
    ackFailed: "Kunne ikke kvittere: {why}",
    unauthenticated: "Adgangstokenet er ugyldigt eller udløbet. Indsæt et nyt.",
    forbidden: "Dette token giver ikke adgang til alarmerne på plejehjemmet {facility}.",
    notFound: "Plejehjemmet {facility} findes ikke.",
    failed: "Fejl fra serveren: {why}",
    network: "Serveren svarer ikke",
  };

  // Readable by the browser test: what arrived and how often the stream was (re)opened.
  const stats = { connects: 0, alertEvents: 0, heartbeats: 0, lists: 0, stalls: 0 };
  window.medserviceBoard = stats;

  const $ = (id) => document.getElementById(id);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));

  let session = null; // {token, facility, zone, shifts, generation, abort}
  let generation = 0;
  const alerts = new Map(); // name -> alert (JSON form), the unacknowledged ones shown
  // Acknowledged from this page: a list answered just before the acknowledgement committed
  // must not bring them back.
  const acknowledged = new Set();
  const residents = new Map(); // name -> Promise of {displayName, room}
  const discrepancies = new Map(); // name -> Promise of the discrepancy's occurrenceTime
  let lastEventId = "";
  const beats = []; // arrival of the stream's last two heartbeats (ms)
  let relistTimer = 0;
  // Words the server's Danish catalogue has (discrepancy codes), fetched once.
  let texts = null;

  class ApiError extends Error {
    constructor(http, status) {
      super((status && status.message) || `HTTP ${http}`);
      this.http = http;
      this.code = status ? status.code : 0;
      this.details = (status && status.details) || [];
    }
  }

  async function api(method, path, body) {
    // The page is Danish: the server's texts in Danish too, whatever the browser's language.
    const headers = { authorization: `Bearer ${session.token}`, "accept-language": "da" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(path, {
      method, headers, cache: "no-store", signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const document = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, document);
    return document;
  }

  // A request id (a UUID) that a retried acknowledgement sends again. crypto.randomUUID
  // exists only in secure contexts; a board served over plain HTTP inside a ward network
  // still has getRandomValues.
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // "06.12.2026 kl. 09:05 CET": the facility's local time, with its zone.
  function localTime(iso) {
    if (!iso) return "";
    const parts = {};
    new Intl.DateTimeFormat("da-DK", {
      timeZone: session.zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
    }).formatToParts(new Date(iso)).forEach((p) => { parts[p.type] = p.value; });
    return `${parts.day}.${parts.month}.${parts.year} kl. ${parts.hour}:${parts.minute} ${parts.timeZoneName}`;
  }

  function setConnection(state, text) {
    const element = $("connection");
    element.dataset.state = state;
    element.textContent = text;
  }

  function showError(text) {
    const element = $("error");
    element.textContent = text;
    element.hidden = !text;
  }

  function describe(error) {
    const facility = session ? session.facility : "";
    if (!(error instanceof ApiError)) return DA.network;
    if (error.http === 401) return DA.unauthenticated;
    if (error.http === 403) return fill(DA.forbidden, { facility });
    return fill(DA.failed, { why: error.message });
  }

  // -- the alerts on the board ---------------------------------------------------------

  function lookup(cache, path, pick) {
    if (!cache.has(path)) {
      cache.set(path, api("GET", `/v1/${path}`).then(pick, () => null));
    }
    return cache.get(path);
  }

  function line(className, text) {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    return p;
  }

  function render() {
    const list = $("alerts");
    const shown = new Map(Array.from(list.children, (li) => [li.dataset.name, li]));
    const wanted = Array.from(alerts.values())
      .sort((a, b) => Number(b.position) - Number(a.position)); // newest first
    for (const [name, li] of shown) if (!alerts.has(name)) li.remove();
    let before = list.firstChild;
    for (const alert of wanted) {
      let li = shown.get(alert.name);
      if (!li) li = item(alert);
      if (li !== before) list.insertBefore(li, before);
      before = li.nextSibling;
    }
    $("empty").hidden = alerts.size > 0;
  }

  function item(alert) {
    const li = document.createElement("li");
    li.className = "alert";
    li.dataset.name = alert.name;
    li.dataset.severity = alert.severity || "";
    const heading = document.createElement("h2");
    heading.textContent = DA.kind[alert.kind] || DA.kindOther;
    li.append(heading);
    const who = line("resident", alert.resident ? `${DA.resident}: …` : "");
    li.append(who);
    if (alert.resident) {
      lookup(residents, alert.resident, (r) => r).then((r) => {
        const id = alert.resident.split("/").pop();
        who.textContent = r
          ? `${DA.resident}: ${r.displayName}${r.room ? `, ${DA.room} ${r.room}` : ""}`
          : `${DA.resident}: ${id}`;
      });
    }
    const due = line("due", "");
    li.append(due);
    if (alert.discrepancy && alert.kind !== "ALERT_KIND_ESCALATION") {
      lookup(discrepancies, alert.discrepancy, (d) => d).then((d) => {
        if (!d) return;
        if (alert.kind === "ALERT_KIND_MISSED_DOSE") {
          due.textContent = `${DA.dueAt}: ${localTime(d.occurrenceTime)}`;
          return;
        }
        const code = texts.discrepancyCode[d.code];
        if (code) heading.textContent = fill(DA.discrepancyCode, { code });
        if (d.occurrenceTime) due.textContent = `${DA.occurredAt}: ${localTime(d.occurrenceTime)}`;
      });
    }
    const shift = session.shifts[alert.shiftId] || alert.shiftId;
    const when = [`${DA.created}: ${localTime(alert.createTime)}`];
    if (shift) when.push(`${DA.shift}: ${shift}${alert.shiftDate ? ` (${alert.shiftDate})` : ""}`);
    if (alert.severity) when.push(`${DA.severityLabel}: ${DA.severity[alert.severity] || alert.severity}`);
    li.append(line("when", when.join(" · ")));
    if (alert.kind !== "ALERT_KIND_MISSED_DOSE") { // the lines above say all of a missed dose
      li.append(line("summary", `${DA.details}: ${alert.summary || ""}`));
    }
    const problem = line("problem", "");
    problem.hidden = true;
    li.append(problem);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "acknowledge";
    button.textContent = DA.acknowledge;
    button.addEventListener("click", () => acknowledge(alert, li, button, problem));
    li.append(button);
    return li;
  }

  function take(alert) {
    if (alert.acknowledged || acknowledged.has(alert.name)) alerts.delete(alert.name);
    else if (!alerts.has(alert.name)) alerts.set(alert.name, alert);
  }

  async function acknowledge(alert, li, button, problem) {
    button.disabled = true;
    button.textContent = DA.acknowledging;
    problem.hidden = true;
    alert.requestId = alert.requestId || uuid(); // a retry is the same request, done once
    for (let attempt = 1; ; attempt++) {
      try {
        await api("POST", `/v1/${alert.name}:acknowledge`, { requestId: alert.requestId });
        acknowledged.add(alert.name);
        alerts.delete(alert.name);
        render();
        return;
      } catch (error) {
        if (error instanceof ApiError && error.http === 404) { // gone from the log
          acknowledged.add(alert.name);
          alerts.delete(alert.name);
          render();
          return;
        }
        if (error instanceof ApiError && error.http === 401) return stop(describe(error));
        const retry = !(error instanceof ApiError) || error.http >= 500 || error.code === 8;
        if (!retry || attempt >= ACK_TRIES) {
          problem.textContent = fill(DA.ackFailed, { why: describe(error) });
          problem.hidden = false;
          button.disabled = false;
          button.textContent = DA.acknowledge;
          return;
        }
        await sleep(500 * attempt);
      }
    }
  }

  // -- the list and the watch ----------------------------------------------------------

  // Adds what the list has; removes what was on the board before the list was asked for
  // and is no longer unacknowledged (acknowledged elsewhere). Alerts the stream brings
  // meanwhile stay.
  async function relist(mine) {
    const before = new Set(alerts.keys());
    const listed = new Map();
    let pageToken = "";
    do {
      const query = new URLSearchParams({ unacknowledged_only: "true", page_size: String(PAGE_SIZE) });
      if (pageToken) query.set("page_token", pageToken);
      const page = await api("GET", `/v1/facilities/${encodeURIComponent(session.facility)}/alerts?${query}`);
      for (const alert of page.alerts || []) listed.set(alert.name, alert);
      pageToken = page.nextPageToken || "";
    } while (pageToken && mine === generation);
    if (mine !== generation) return;
    stats.lists += 1;
    for (const name of before) if (!listed.has(name)) alerts.delete(name);
    for (const alert of listed.values()) take(alert);
    render();
  }

  function scheduleRelist(mine) {
    clearTimeout(relistTimer);
    relistTimer = setTimeout(async () => {
      if (mine !== generation) return;
      try { await relist(mine); } catch (error) { /* the stream's own errors say it */ }
      scheduleRelist(mine);
    }, RELIST_MS);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Reads one event stream until it ends. Returns the retry delay the server asked for;
  // throws ApiError for a refusal or an `error` event.
  async function readStream(mine, retryMs) {
    const controller = new AbortController();
    session.abort = () => controller.abort();
    const headers = { authorization: `Bearer ${session.token}`, accept: "text/event-stream",
                      "accept-language": "da" };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    const response = await fetch(`/v1/facilities/${encodeURIComponent(session.facility)}/alerts:watch`,
      { headers, cache: "no-store", signal: controller.signal });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    stats.connects += 1;
    const stream = { reader: response.body.getReader(), heard: Date.now(), retryMs };
    beats.length = 0;
    const watchdog = setInterval(() => {
      const gap = beats.length === 2 ? beats[1] - beats[0] : 0;
      const limit = gap ? Math.max(3 * gap, STALL_MIN_MS) : STALL_DEFAULT_MS;
      if (Date.now() - stream.heard > limit) {
        stats.stalls += 1;
        controller.abort(); // the pending read fails, and watch() opens the stream again
      }
    }, 250);
    try {
      return await readEvents(mine, stream);
    } finally {
      clearInterval(watchdog);
    }
  }

  // The Server-Sent Events parser (the fields this API sends: id, event, data, retry).
  async function readEvents(mine, stream) {
    const decoder = new TextDecoder();
    let buffer = "";
    let fields = { data: [] };
    let opened = false;
    for (;;) {
      const { value, done } = await stream.reader.read();
      if (done || mine !== generation) return stream.retryMs;
      stream.heard = Date.now();
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const text of lines) {
        if (text === "") {
          if (fields.data.length) {
            const event = { id: fields.id, kind: fields.event || "message", data: fields.data.join("\n") };
            if (!opened) { // the first event: the watch is live, so the list misses nothing
              opened = true;
              await relist(mine);
              stream.heard = Date.now();
              setConnection("live", DA.live);
              showError("");
            }
            const status = dispatch(event);
            if (status) throw new ApiError(0, status);
          }
          fields = { data: [] };
          continue;
        }
        if (text.startsWith(":")) continue; // a comment
        const at = text.indexOf(":");
        const key = at < 0 ? text : text.slice(0, at);
        let value = at < 0 ? "" : text.slice(at + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (key === "data") fields.data.push(value);
        else if (key === "id") fields.id = value;
        else if (key === "event") fields.event = value;
        else if (key === "retry" && /^\d+$/.test(value)) stream.retryMs = Number(value);
      }
    }
  }

  // One event; a google.rpc.Status for an `error` event (the stream ends with it).
  function dispatch(event) {
    const data = JSON.parse(event.data);
    if (event.kind === "error") return data;
    if (event.kind === "alert") {
      stats.alertEvents += 1;
      take(data.alert);
      render();
    } else if (event.kind === "heartbeat") {
      stats.heartbeats += 1;
      beats.push(Date.now());
      if (beats.length > 2) beats.shift();
    }
    if (event.id) lastEventId = event.id; // only once the event is on the board
    return null;
  }

  async function watch(mine) {
    let retryMs = 2000;
    while (mine === generation) {
      setConnection("connecting", DA.connecting);
      try {
        retryMs = await readStream(mine, retryMs);
      } catch (error) {
        if (mine !== generation) return;
        if (error instanceof ApiError) {
          if (error.http === 401 || error.http === 403 || error.http === 404) {
            return stop(error.http === 404
              ? fill(DA.notFound, { facility: session.facility }) : describe(error));
          }
          if (error.code === 11 || isBadResumeToken(error)) {
            lastEventId = ""; // older than the log keeps: start from now; the list has the rest
          }
          if (error.http) showError(describe(error));
        }
      }
      if (mine !== generation) return;
      setConnection("waiting", fill(DA.waiting, { seconds: Math.round(retryMs / 1000) }));
      await sleep(retryMs);
    }
  }

  function isBadResumeToken(error) {
    return error.code === 3 && error.details.some((d) => (d.fieldViolations || [])
      .some((v) => v.field === "resume_token"));
  }

  // -- signing in and out --------------------------------------------------------------

  async function start(token, facility) {
    const mine = ++generation;
    session = { token, facility, zone: "Europe/Copenhagen", shifts: {}, abort: () => {} };
    alerts.clear();
    acknowledged.clear();
    residents.clear();
    discrepancies.clear();
    lastEventId = "";
    $("login").hidden = true;
    $("board").hidden = false;
    $("alerts").replaceChildren();
    showError("");
    setConnection("connecting", DA.connecting);
    let place;
    try {
      texts = texts || await fetch("/board/texts.json").then((r) => r.json());
      place = await api("GET", `/v1/facilities/${encodeURIComponent(facility)}`);
    } catch (error) {
      if (mine !== generation) return;
      return stop(error instanceof ApiError && error.http === 404
        ? fill(DA.notFound, { facility }) : describe(error));
    }
    if (mine !== generation) return;
    session.zone = place.timeZone || session.zone;
    for (const shift of place.shifts || []) session.shifts[shift.shiftId] = shift.displayName || shift.shiftId;
    $("title").textContent = fill(DA.titleFacility, { facility: place.displayName || facility });
    $("zone").textContent = fill(DA.zone, { zone: session.zone });
    render();
    scheduleRelist(mine);
    watch(mine);
  }

  // Stops watching and asks for a token again, saying why.
  function stop(why) {
    generation += 1;
    clearTimeout(relistTimer);
    if (session) session.abort();
    setConnection("stopped", DA.stopped);
    $("board").hidden = true;
    $("login").hidden = false;
    const problem = $("login-problem") || document.createElement("p");
    problem.id = "login-problem";
    problem.setAttribute("role", "alert");
    problem.textContent = why;
    problem.hidden = !why;
    $("login").prepend(problem);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const given = new URLSearchParams(location.search).get("facility");
    $("facility").value = given || sessionStorage.getItem(FACILITY_KEY) || "";
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim().replace(/^Bearer\s+/i, "");
      const facility = $("facility").value.trim();
      sessionStorage.setItem(TOKEN_KEY, token);
      sessionStorage.setItem(FACILITY_KEY, facility);
      $("token").value = "";
      start(token, facility);
    });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      stop("");
      $("title").textContent = DA.title;
      setConnection("idle", DA.idle);
    });
    const token = sessionStorage.getItem(TOKEN_KEY);
    const facility = sessionStorage.getItem(FACILITY_KEY);
    if (token && facility && (!given || given === facility)) start(token, facility);
  });
})();
