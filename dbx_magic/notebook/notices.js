// The page's notices when background runs end: compact pills in the free right end of the menu bar
// (JupyterLab's #jp-MainMenu, Notebook 7's menu bar), never over a cell or its toolbar. At most three
// show; older ones fold into "N more". A click on a pill opens its details; x dismisses it. Where no
// menu bar exists (another front end) the pills stack in the bottom left corner.

const COLOURS = {success: "#2e7d32", danger: "#c62828", warning: "#ef6c00", info: "#1565c0"};
const ICONS = {success: "\u2713", danger: "\u2717", warning: "!", info: "i"};
const SHOWN = 3;

function menuBar() {
  const bar = document.querySelector("#jp-MainMenu, #jp-menu-panel .lm-MenuBar");
  if (!bar) return null;
  const box = bar.getBoundingClientRect();
  return box.height > 0 && box.width > 0 ? bar : null;
}

function freeSpan(bar) {
  // The empty stretch of the menu bar's row: from the last menu title to the next thing shown on
  // its right (Notebook 7's "Not Trusted"), or to the row's end (JupyterLab).
  const barBox = bar.getBoundingClientRect();
  let row = bar;
  while (row.parentElement && row.getBoundingClientRect().width < barBox.width + 100) row = row.parentElement;
  const items = bar.querySelectorAll(".lm-MenuBar-item");
  const start = items.length ? items[items.length - 1].getBoundingClientRect().right : barBox.left;
  let end = row.getBoundingClientRect().right;
  for (const e of row.querySelectorAll("*")) {
    const content = e.textContent.trim() || ["IMG", "svg", "INPUT", "CANVAS"].includes(e.tagName);
    if (e.childElementCount || bar.contains(e) || !content) continue;
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height || r.left < start || r.bottom <= barBox.top || r.top >= barBox.bottom) continue;
    end = Math.min(end, r.left);
  }
  return {top: barBox.top, height: barBox.height, left: start + 12, right: end - 8};
}

function place(stack) {
  const bar = menuBar();
  const font = "font-family:var(--jp-ui-font-family,sans-serif);font-size:12px;z-index:10000;";
  if (bar) {
    const span = freeSpan(bar);
    stack.dataset.where = "menubar";
    stack.style.cssText = `position:fixed;top:${span.top}px;height:${span.height}px;left:${span.left}px;` +
      `width:${Math.max(0, span.right - span.left)}px;overflow:hidden;display:flex;flex-direction:row;` +
      "align-items:center;justify-content:flex-end;gap:6px;" + font;
  } else {
    stack.dataset.where = "corner";
    stack.style.cssText = "position:fixed;bottom:32px;left:12px;display:flex;flex-direction:column-reverse;" +
      "align-items:flex-start;gap:6px;max-width:420px;" + font;
  }
}

function stack() {
  let found = document.getElementById("dbx-notices");
  if (!found) {
    found = document.createElement("div");
    found.id = "dbx-notices";
    document.body.appendChild(found);
    window.addEventListener("resize", () => place(found));
    document.addEventListener("click", (event) => {  // a click elsewhere closes an open card
      if (!found.contains(event.target)) closeCards(found);
    });
  }
  place(found);
  return found;
}

function closeCards(root) {
  root.querySelectorAll(".dbx-notice-card").forEach((c) => c.remove());
}

function card(anchor, fill) {
  // Details, opened on request: a card under the pill (it covers the page only while asked for).
  const root = stack();
  const open = root.querySelector(".dbx-notice-card");
  const again = open && open.dataset.for === anchor.dataset.key;
  closeCards(root);
  if (again) return;
  const c = document.createElement("div");
  c.className = "dbx-notice-card";
  c.dataset.for = anchor.dataset.key;
  const box = anchor.getBoundingClientRect();
  const below = root.dataset.where === "menubar";
  c.style.cssText = "position:fixed;width:380px;max-width:90vw;background:var(--jp-layout-color1,white);" +
    "color:var(--jp-ui-font-color1,black);box-shadow:0 2px 10px rgba(0,0,0,.35);border-radius:4px;" +
    "padding:8px 12px;font-size:13px;z-index:10001;" +
    (below ? `top:${box.bottom + 4}px;right:${Math.max(4, window.innerWidth - box.right)}px`
           : `bottom:${window.innerHeight - box.top + 4}px;left:${box.left}px`);
  fill(c);
  root.appendChild(c);
}

function details(c, note) {
  const title = document.createElement("div");
  title.className = "dbx-notice-title";
  title.style.fontWeight = "bold";
  title.textContent = note.msg.title;
  const body = document.createElement("div");
  body.className = "dbx-notice-body";
  body.textContent = note.msg.body;
  c.append(title, body);
  if (note.msg.url && /^https?:\/\//i.test(note.msg.url)) {  // only a web link (the kernel checks it too)
    const link = document.createElement("a");
    link.href = note.msg.url; link.target = "_blank"; link.rel = "noopener"; link.textContent = "open the run";
    link.style.cssText = "color:#1565c0;text-decoration:underline";
    c.append(link);
  }
}

function button(text, title, onclick) {
  const b = document.createElement("button");
  b.textContent = text;
  b.title = title;
  b.style.cssText = "border:none;background:none;cursor:pointer;font-size:14px;padding:0 2px;color:inherit";
  b.onclick = (event) => { event.stopPropagation(); onclick(); };
  return b;
}

function notes(root) {
  return Array.from(root.querySelectorAll(".dbx-notice"));
}

function dismiss(note) {
  note.remove();
  tidy(stack());
}

function tidy(root) {
  // SHOWN notices show (failures first, then the newest); the others fold into one "N more" pill.
  closeCards(root);
  place(root);
  const all = notes(root);  // oldest first
  // which show: failures before successes, then the newest
  const rank = all.map((n, i) => [n.msg.level === "success" ? 0 : 1, i, n]).sort((a, b) => b[0] - a[0] || b[1] - a[1]);
  let shown = Math.min(SHOWN, all.length);
  const lay = () => {
    const keep = new Set(rank.slice(0, shown).map((r) => r[2]));
    all.forEach((n) => { n.style.display = keep.has(n) ? "inline-flex" : "none"; });
  };
  lay();
  let more = root.querySelector(".dbx-notices-more");
  if (shown < all.length) more = moreButton(root, more, all.length - shown);
  while (shown > 1 && root.scrollWidth > root.clientWidth) {  // a narrow window: fewer, never cut
    shown -= 1;
    lay();
    more = moreButton(root, more, all.length - shown);
  }
  const hidden = all.filter((n) => n.style.display === "none");
  if (!hidden.length) { if (more) more.remove(); return; }
  more.textContent = `${hidden.length} more`;
  more.title = hidden.map((n) => n.title).join("\n");
}

function moreButton(root, more, count) {
  if (!more) {
    more = document.createElement("button");
    more.className = "dbx-notices-more";
    more.dataset.key = "more";
    more.style.cssText = "border:1px solid var(--jp-border-color1,#bbb);border-radius:10px;cursor:pointer;" +
      "background:var(--jp-layout-color2,#eee);color:var(--jp-ui-font-color1,black);padding:1px 8px;" +
      "font-size:12px;white-space:nowrap;flex-shrink:0";
    more.onclick = (event) => { event.stopPropagation(); card(more, (c) => list(c)); };
    root.prepend(more);
  }
  more.textContent = `${count} more`;
  return more;
}

function list(c) {
  // Every notice, newest first, each with its own x; and "dismiss all".
  const root = stack();
  for (const note of notes(root).reverse()) {
    const row = document.createElement("div");
    row.className = "dbx-notices-list-row";
    row.style.cssText = `border-left:4px solid ${COLOURS[note.msg.level] || COLOURS.info};padding:2px 6px;` +
      "margin:4px 0;display:flex;justify-content:space-between;gap:6px";
    const text = document.createElement("div");
    details(text, note);
    row.append(text, button("\u00d7", "dismiss", () => { dismiss(note); }));
    c.append(row);
  }
  const all = document.createElement("button");
  all.className = "dbx-notices-dismiss";
  all.textContent = "dismiss all";
  all.style.cssText = "border:none;background:var(--jp-layout-color2,#eee);cursor:pointer;font-size:11px;" +
    "padding:2px 8px;border-radius:4px";
  all.onclick = (event) => {
    event.stopPropagation();
    notes(root).forEach((n) => n.remove());
    tidy(root);
  };
  c.append(all);
}

function pill(msg) {
  const note = document.createElement("div");
  note.className = "dbx-notice dbx-notice-" + msg.level;
  note.msg = msg;
  note.dataset.key = msg.id;
  note.dataset.runId = String(msg.run_id);
  note.setAttribute("role", "status");
  note.title = msg.title + (msg.body ? "\n" + msg.body : "");
  const colour = COLOURS[msg.level] || COLOURS.info;
  note.style.cssText = `align-items:center;gap:4px;border:1px solid ${colour};border-left:6px solid ${colour};` +
    "border-radius:10px;padding:0 2px 0 6px;background:var(--jp-layout-color1,white);" +
    "color:var(--jp-ui-font-color1,black);white-space:nowrap;cursor:pointer;max-width:220px;line-height:18px;" +
    "flex-shrink:0";
  const label = document.createElement("span");
  label.className = "dbx-notice-label";
  label.style.cssText = "overflow:hidden;text-overflow:ellipsis";
  label.textContent = `${ICONS[msg.level] || ""} ${msg.short}`;
  const close = button("\u00d7", "dismiss", () => dismiss(note));
  close.className = "dbx-notice-close";
  note.append(label, close);
  note.onclick = (event) => { event.stopPropagation(); card(note, (c) => details(c, note)); };
  return note;
}

function show(msg) {
  if (!msg || msg.kind !== "dbx-run-ended") return;
  const seen = (window.__dbxNoticesSeen = window.__dbxNoticesSeen || new Set());
  if (seen.has(msg.id)) return;  // several views of the channel: one notice
  seen.add(msg.id);
  const root = stack();
  const note = pill(msg);
  root.appendChild(note);
  if (msg.level === "success" && msg.fade) {  // a failure stays until dismissed
    setTimeout(() => { if (note.isConnected) dismiss(note); }, msg.fade * 1000);
  }
  tidy(root);
  try {
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(msg.title, {body: msg.body, tag: msg.id});
    }
  } catch (e) { /* notifications are a bonus */ }
  try {
    const app = window.jupyterapp;
    if (app && app.commands && app.commands.hasCommand("apputils:notify")) {
      app.commands.execute("apputils:notify", {
        message: msg.title + " " + msg.body,
        type: msg.level === "success" ? "success" : (msg.level === "danger" ? "error" : "warning"),
        // into JupyterLab's notification list (the status bar's bell) without a toast over the cells
        options: {autoClose: 0},  // 0: kept in the notification center, no toast
      });
    }
  } catch (e) { /* the toast is a bonus */ }
}

export default {
  initialize({ model }) { model.on("msg:custom", show); },
  render({ model, el }) {
    model.on("msg:custom", show);
    el.className = "dbx-notice-channel";
    if ("Notification" in window && Notification.permission === "default") {
      const ask = document.createElement("a");
      ask.href = "#";
      ask.textContent = "Also tell me through browser notifications";
      ask.style.fontSize = "11px";
      ask.onclick = (event) => {
        event.preventDefault();
        Notification.requestPermission().then(() => ask.remove());
      };
      el.append(ask);
    }
  },
};
