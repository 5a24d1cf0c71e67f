// The dashboard's only script: live updates over server-sent events, actions as POSTs with the
// page's anti-CSRF token, and ages that tick in the page (no request is made for them).
(() => {
  "use strict";
  const body = document.body;
  const page = body.dataset.page;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  // Server time minus page time, so ages are right on a device whose clock is off.
  const skew = body.dataset.now ? Number(body.dataset.now) - Date.now() / 1000 : 0;
  const now = () => Date.now() / 1000 + skew;

  function age(seconds) {
    seconds = Math.max(0, seconds);
    if (seconds < 60) return `${Math.floor(seconds)}s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
    return `${Math.floor(seconds / 86400)}d`;
  }

  function tickCard(card) {
    const t0 = Number(card.dataset.t0);
    const t1 = card.dataset.t1 ? Number(card.dataset.t1) : null;
    const ageEl = card.querySelector("[data-age]");
    if (ageEl && t1 === null) ageEl.textContent = age(now() - t0);
    const quietEl = card.querySelector("[data-quiet-label]");
    if (quietEl && card.dataset.quiet) {
      const quiet = now() - Number(card.dataset.quiet);
      quietEl.hidden = quiet < 10;
      quietEl.textContent = `quiet ${age(quiet)}`;
    }
  }

  function tick() {
    for (const card of document.querySelectorAll(".card")) tickCard(card);
  }

  function toast(message, isError) {
    const el = document.getElementById("toast");
    if (!el || !message) return;
    el.textContent = message;
    el.classList.toggle("error", Boolean(isError));
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, isError ? 8000 : 4000);
  }

  function connection(state) {
    const el = document.getElementById("conn");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = { live: "live", connecting: "reconnecting…", closed: "disconnected: reload the page" }[state];
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // -- actions ------------------------------------------------------------------------------------
  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.action");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        body: new FormData(form),
        credentials: "same-origin",
      });
      if (form.dataset.navigate && response.redirected) {
        window.location.assign(response.url);
        return;
      }
      const answer = await response.json().catch(() => ({}));
      toast(response.ok ? answer.message : answer.error || response.statusText, !response.ok);
      if (response.ok && form.dataset.reset) form.reset();
    } catch (error) {
      toast(`the server did not answer: ${error}`, true);
    } finally {
      if (button) button.disabled = false;
    }
  });

  function follow(url, handlers) {
    const source = new EventSource(url);
    connection("connecting");
    source.onopen = () => connection("live");
    source.onerror = () => connection(source.readyState === EventSource.CLOSED ? "closed" : "connecting");
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handler(JSON.parse(event.data), event));
    }
    return source;
  }

  // -- the board ----------------------------------------------------------------------------------
  function applyBoard(update) {
    const board = document.getElementById("board");
    const fresh = new Map();
    for (const [id, html] of Object.entries(update.cards)) {
      const card = fragment(html);
      fresh.set(id, card);
      const old = document.getElementById(`m-${id}`);
      if (old && !update.groups) {
        old.replaceWith(card);
        tickCard(card);
      }
    }
    if (update.groups) {
      // Re-laid out: the cards that did not change are moved, not made again.
      const sections = document.createDocumentFragment();
      for (const group of update.groups) {
        const section = document.createElement("section");
        section.className = `group att-${group.key}`;
        section.dataset.group = group.key;
        const heading = document.createElement("h2");
        heading.textContent = `${group.title} `;
        const count = document.createElement("span");
        count.className = "count";
        count.textContent = String(group.ids.length);
        heading.append(count);
        const cards = document.createElement("div");
        cards.className = "cards";
        for (const id of group.ids) {
          const card = fresh.get(id) || document.getElementById(`m-${id}`);
          if (card) {
            cards.append(card);
            tickCard(card);
          }
        }
        section.append(heading, cards);
        sections.append(section);
      }
      for (const section of board.querySelectorAll("section.group")) section.remove();
      board.prepend(sections);
      document.getElementById("empty").hidden = update.groups.length > 0;
    }
    if (update.totals !== undefined) document.getElementById("totals").innerHTML = update.totals;
    for (const [name, html] of Object.entries(update.panels || {})) {
      const panel = document.getElementById(`panel-${name}`);
      if (panel) panel.innerHTML = html;
    }
    body.dataset.version = String(update.version);
  }

  // -- one mission ---------------------------------------------------------------------------------
  const MAX_LOG_LINES = 5000;

  function appendLog(update) {
    const log = document.getElementById("log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    const lines = document.createDocumentFragment();
    for (const text of update.lines) {
      const line = document.createElement("span");
      line.className = "ln";
      line.textContent = text;
      lines.append(line, "\n");
    }
    log.append(lines);
    while (log.childElementCount > MAX_LOG_LINES) {
      log.firstElementChild.nextSibling.remove();
      log.firstElementChild.remove();
    }
    body.dataset.cursor = String(update.cursor);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function replaceKeepingInput(container, html) {
    const focused = document.activeElement;
    // A message being typed is not thrown away by an update.
    if (focused && container.contains(focused) && focused.id && focused.matches("textarea, input[type=text]")) {
      const kept = focused.value;
      container.innerHTML = html;
      const again = container.querySelector(`#${focused.id}`);
      if (again) {
        again.value = kept;
        again.focus();
      }
    } else {
      container.innerHTML = html;
    }
  }

  function applyHead(update) {
    replaceKeepingInput(document.getElementById("head-top"), update.top);
    replaceKeepingInput(document.getElementById("head-bottom"), update.bottom);
    tick();
  }

  if (page === "board") {
    follow(`/events?v=${encodeURIComponent(body.dataset.version)}`, { board: applyBoard });
  } else if (page === "mission") {
    const log = document.getElementById("log");
    log.scrollTop = log.scrollHeight;
    const id = encodeURIComponent(body.dataset.mission);
    follow(`/missions/${id}/events?cursor=${encodeURIComponent(body.dataset.cursor)}`, {
      log: appendLog,
      head: applyHead,
    });
  }
  tick();
  setInterval(tick, 1000);
})();
