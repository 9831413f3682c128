// The playground page: a small Slack client for the simulator. Plain JS, no build step.
// Every piece of text from the bot or a user goes into the DOM as textContent, never as HTML.
"use strict";

(() => {
  const S = {
    team: null,
    teams: [],
    currentTeam: null, // the workspace shown; in OAuth mode there are two
    homeViews: new Map(), // "team user" -> the Home view the bot published for that person
    showingHome: false,
    app: { name: "Twilio", bot_user_id: "U0BOT" },
    users: new Map(),
    channels: [],
    messages: {}, // channel id -> [message]
    ephemerals: [],
    echoes: [],
    views: new Map(), // view id -> {view, user_id, seq, errors}
    viewProblems: new Map(), // view id -> text
    commands: [],
    subcommands: [],
    currentChannel: "C0GENERAL",
    currentUser: "U0ADMIN",
    unread: new Map(),
    problems: 0,
    dismissed: new Set(),
    renderedViewId: null,
    history: [],
    historyIndex: -1,
    completion: { items: [], index: 0, replace: null },
  };

  const controlSpecs = new WeakMap(); // form control -> Block Kit element it was built from
  const $ = (sel) => document.querySelector(sel);

  // ---------------------------------------------------------------- DOM helpers

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "data") for (const [k, v] of Object.entries(value)) { if (v != null) node.dataset[k] = v; }
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function toast(text) {
    const t = $("#toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  async function post(path, body) {
    const resp = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let data = null;
    try { data = await resp.json(); } catch (_) { data = { ok: false, error: `HTTP ${resp.status}` }; }
    if (!resp.ok && data && data.error) toast(data.error);
    return data;
  }

  // ---------------------------------------------------------------- names and times

  const userName = (id) => (S.users.get(id) || {}).real_name || id;
  const channelById = (id) => S.channels.find((c) => c.id === id);

  function tsDate(ts) { return new Date(parseFloat(ts) * 1000); }

  function clock(date, secs) {
    return date.toLocaleTimeString([], { hour: "numeric", minute: "2-digit", second: secs ? "2-digit" : undefined });
  }

  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December"];
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

  function ordinal(n) {
    const s = ["th", "st", "nd", "rd"], v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function relativeDay(d) {
    const start = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
    const diff = Math.round((start(d) - start(new Date())) / 86400000);
    return { 0: "today", [-1]: "yesterday", 1: "tomorrow" }[diff] || null;
  }

  function ago(d) {
    const secs = Math.round((Date.now() - d.getTime()) / 1000);
    const abs = Math.abs(secs);
    const units = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
    for (const [size, name] of units) {
      if (abs >= size || size === 1) {
        const n = Math.floor(abs / size);
        const word = `${n} ${name}${n === 1 ? "" : "s"}`;
        return secs >= 0 ? `${word} ago` : `in ${word}`;
      }
    }
    return "";
  }

  function formatSlackDate(unix, format) {
    const d = new Date(unix * 1000);
    const date = `${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`;
    const short = `${MONTHS[d.getMonth()].slice(0, 3)} ${d.getDate()}, ${d.getFullYear()}`;
    const long = `${DAYS[d.getDay()]}, ${date}`;
    const rel = relativeDay(d);
    const tokens = {
      date_num: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
      date, date_short: short, date_long: long,
      date_pretty: rel || date, date_short_pretty: rel || short, date_long_pretty: rel || long,
      time: clock(d, false), time_secs: clock(d, true), ago: ago(d),
    };
    return format.replace(/\{(\w+)\}/g, (m, name) => (name in tokens ? tokens[name] : m));
  }

  // ---------------------------------------------------------------- mrkdwn

  const EMOJI = {
    white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️", no_entry: "⛔",
    no_entry_sign: "🚫", hourglass: "⌛", hourglass_flowing_sand: "⏳", calendar: "📆", date: "📅",
    spiral_calendar_pad: "🗓️", iphone: "📱", phone: "☎️", telephone_receiver: "📞", speech_balloon: "💬",
    lock: "🔒", key: "🔑", wastebasket: "🗑️", mag: "🔍", rocket: "🚀", tada: "🎉", email: "📧",
    envelope: "✉️", outbox_tray: "📤", inbox_tray: "📥", clock1: "🕐", alarm_clock: "⏰", stopwatch: "⏱️",
    information_source: "ℹ️", bulb: "💡", gear: "⚙️", link: "🔗", memo: "📝", page_facing_up: "📄",
    clipboard: "📋", bell: "🔔", red_circle: "🔴", large_green_circle: "🟢", large_yellow_circle: "🟡",
    large_blue_circle: "🔵", white_circle: "⚪", black_circle: "⚫", eyes: "👀", wave: "👋",
    thumbsup: "👍", "+1": "👍", thumbsdown: "👎", "-1": "👎", sos: "🆘", arrows_counterclockwise: "🔄",
    leftwards_arrow_with_hook: "↩️", money_with_wings: "💸", moneybag: "💰", robot_face: "🤖",
    shield: "🛡️", zap: "⚡", fire: "🔥", question: "❓", exclamation: "❗", heavy_plus_sign: "➕",
    pencil2: "✏️", busts_in_silhouette: "👥", bust_in_silhouette: "👤", hash: "#️⃣", globe_with_meridians: "🌐",
  };

  function decodeEntities(s) {
    return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function emojify(s) {
    return s.replace(/:([a-z0-9_+\-]+):/g, (m, name) => EMOJI[name] || m);
  }

  // Without a colour emoji font (common on Linux servers and in headless browsers) emoji are drawn as
  // empty boxes. Then the ones the bot uses become small drawn badges, and any other shows as :name:.
  const EMOJI_NAMES = new Map(Object.entries(EMOJI).map(([name, ch]) => [ch.replace(/\uFE0F/g, ""), name]));
  const BADGES = {
    "✅": ["✔", "ok"], "✔": ["✔", "ok"], "☑": ["✔", "ok"],
    "❌": ["✖", "bad"], "✖": ["✖", "bad"], "❎": ["✖", "bad"],
    "⛔": ["–", "bad"], "🚫": ["–", "bad"], "🔴": ["", "bad"],
    "⏳": ["◷", "wait"], "⌛": ["◷", "wait"], "⏰": ["◷", "wait"], "⏱": ["◷", "wait"], "🕐": ["◷", "wait"],
    "⚠": ["!", "warn"], "❗": ["!", "warn"], "❕": ["!", "warn"], "🟡": ["", "warn"],
    "❔": ["?", "muted"], "❓": ["?", "muted"], "⚪": ["", "muted"],
    "ℹ": ["i", "info"], "🔵": ["", "info"], "🟢": ["", "ok"],
  };
  const EMOJI_RUN = /(?:[\u{1F000}-\u{1FAFF}]|[\u2190-\u2BFF](?=\uFE0F)|[✅❌❎⛔⏳⌛⏰⏱❔❓❗❕✔✖☑⚠ℹ⚪])\uFE0F?/gu;

  function hasEmojiFont() {
    try {
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 24;
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.textBaseline = "top";
      ctx.font = "20px sans-serif";
      ctx.fillText("\u{1F600}", 0, 0);
      const px = ctx.getImageData(0, 0, 24, 24).data;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] > 0 && (Math.abs(px[i] - px[i + 1]) > 30 || Math.abs(px[i + 1] - px[i + 2]) > 30)) return true;
      }
      return false;
    } catch (_) {
      return true;
    }
  }

  let colourEmoji = true; // decided once the page has loaded

  // Text with emoji, as nodes: the emoji themselves, or badges standing in for them.
  function emojiNodes(text) {
    const s = String(text ?? "");
    if (colourEmoji) return [s];
    const out = [];
    let last = 0;
    for (const m of s.matchAll(EMOJI_RUN)) {
      const ch = m[0].replace(/\uFE0F/g, "");
      if (m.index > last) out.push(s.slice(last, m.index));
      const badge = BADGES[ch];
      const name = EMOJI_NAMES.get(ch);
      if (badge) out.push(h("span", { class: `emoji-badge ${badge[1]}`, role: "img", "aria-label": name || ch, title: name ? `:${name}:` : ch }, badge[0]));
      else out.push(h("span", { class: "emoji-name", title: ch }, name ? `:${name}:` : "◆"));
      last = m.index + m[0].length;
    }
    if (last < s.length) out.push(s.slice(last));
    return out;
  }

  function plainNodes(obj) { return emojiNodes(plain(obj)); }

  function safeHref(url) {
    return /^(https?:|mailto:|tel:|slack:)/i.test(url) ? url : null;
  }

  // <…> control sequences: mentions, channels, dates, broadcasts and links.
  function renderAngle(inner) {
    const [target, label] = splitOnce(inner, "|");
    if (target.startsWith("@U") || target.startsWith("@W") || target.startsWith("@B")) {
      const id = target.slice(1);
      const name = label || (S.users.has(id) ? userName(id) : id);
      return h("span", { class: "mention", data: { userId: id } }, `@${decodeEntities(name)}`);
    }
    if (target.startsWith("#C") || target.startsWith("#G")) {
      const id = target.slice(1);
      const ch = channelById(id);
      const text = `#${label ? decodeEntities(label) : ch ? ch.name : id}`;
      if (!ch) return h("span", { class: "mention", data: { channelId: id } }, text);
      return h("button", { type: "button", class: "mention channel-mention", data: { channelId: id }, onclick: () => switchChannel(id) }, text);
    }
    if (target.startsWith("!date^")) {
      const parts = target.split("^");
      const unix = parseInt(parts[1], 10);
      const text = Number.isFinite(unix) ? formatSlackDate(unix, decodeEntities(parts[2] || "{date}")) : decodeEntities(label || "");
      const span = h("span", { class: "slack-date", title: label ? decodeEntities(label) : null }, text);
      const href = parts[3] ? safeHref(decodeEntities(parts[3])) : null;
      return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, span) : span;
    }
    if (target.startsWith("!subteam^")) {
      return h("span", { class: "mention broadcast" }, decodeEntities(label || "@group"));
    }
    if (target.startsWith("!")) {
      const word = target.slice(1).split("^")[0];
      return h("span", { class: "mention broadcast" }, `@${word}`);
    }
    const url = decodeEntities(target);
    const href = safeHref(url);
    const text = decodeEntities(label || target);
    return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, text) : document.createTextNode(text);
  }

  function splitOnce(s, sep) {
    const i = s.indexOf(sep);
    return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1)];
  }

  const INLINE = /`([^`\n]+)`|<([^<>\n]+)>|\*([^*\n]+)\*|_([^_\n]+)_|~([^~\n]+)~/g;
  const OPENS = " \t\n([{\"'*_~>-";

  function boundaryOk(text, start, end) {
    const before = start === 0 ? " " : text[start - 1];
    const after = end >= text.length ? " " : text[end];
    const inner = text.slice(start + 1, end - 1);
    return OPENS.includes(before) && !/[A-Za-z0-9]/.test(after) && inner.trim() === inner && inner.length > 0;
  }

  // Slack links bare URLs in message text by itself; the bot sends Twilio's "more info" links that way.
  const BARE_URL = /\bhttps?:\/\/[^\s<>]*[^\s<>.,;:!?)\]'"]/g;

  function appendText(parent, raw) {
    const text = emojify(decodeEntities(raw));
    let last = 0;
    for (const m of text.matchAll(BARE_URL)) {
      if (m.index > last) parent.append(...emojiNodes(text.slice(last, m.index)));
      parent.append(h("a", { href: m[0], target: "_blank", rel: "noopener noreferrer" }, m[0]));
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.append(...emojiNodes(text.slice(last)));
  }

  function renderInline(text, parent) {
    let last = 0;
    INLINE.lastIndex = 0;
    let m;
    while ((m = INLINE.exec(text)) !== null) {
      const start = m.index, end = INLINE.lastIndex;
      let node = null;
      if (m[1] !== undefined) node = h("code", null, decodeEntities(m[1]));
      else if (m[2] !== undefined) node = renderAngle(m[2]);
      else if (boundaryOk(text, start, end)) {
        const tag = m[3] !== undefined ? "b" : m[4] !== undefined ? "i" : "s";
        node = h(tag);
        renderInline(m[3] ?? m[4] ?? m[5], node);
      }
      if (!node) { INLINE.lastIndex = start + 1; continue; }
      if (start > last) appendText(parent, text.slice(last, start));
      parent.append(node);
      last = end;
      INLINE.lastIndex = end;
    }
    if (last < text.length) appendText(parent, text.slice(last));
  }

  function renderLines(text, parent) {
    const lines = text.split("\n");
    let quote = null;
    lines.forEach((line, i) => {
      const isQuote = line.startsWith("&gt;");
      if (isQuote) {
        if (!quote) { quote = h("blockquote"); parent.append(quote); }
        else quote.append(h("br"));
        renderInline(line.replace(/^&gt;\s?/, ""), quote);
        return;
      }
      quote = null;
      renderInline(line, parent);
      if (i < lines.length - 1 && !(lines[i + 1] || "").startsWith("&gt;")) parent.append("\n");
    });
  }

  function renderMrkdwn(text) {
    const root = h("span", { class: "mrkdwn" });
    const parts = String(text || "").split(/```([\s\S]*?)```/);
    parts.forEach((part, i) => {
      if (i % 2 === 1) root.append(h("pre", null, decodeEntities(part.replace(/^\n/, ""))));
      else if (part) renderLines(part, root);
    });
    return root;
  }

  function renderText(obj) {
    if (!obj) return document.createTextNode("");
    if (obj.type === "mrkdwn") return renderMrkdwn(obj.text);
    const span = h("span", null, ...emojiNodes(obj.emoji === false ? obj.text : emojify(obj.text || "")));
    return span;
  }

  function plain(obj) { return obj ? (obj.type === "plain_text" ? emojify(obj.text || "") : decodeEntities(obj.text || "")) : ""; }

  // ---------------------------------------------------------------- rich_text (enough to read it)

  function renderRich(elements, parent) {
    for (const el of elements || []) {
      if (el.type === "text") {
        let node = document.createTextNode(el.text || "");
        const st = el.style || {};
        if (st.code) node = h("code", null, node);
        if (st.bold) node = h("b", null, node);
        if (st.italic) node = h("i", null, node);
        if (st.strike) node = h("s", null, node);
        parent.append(node);
      } else if (el.type === "link") {
        const href = safeHref(el.url || "");
        parent.append(href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, el.text || el.url) : (el.text || el.url || ""));
      } else if (el.type === "user") parent.append(h("span", { class: "mention" }, `@${userName(el.user_id)}`));
      else if (el.type === "channel") parent.append(h("span", { class: "mention" }, `#${(channelById(el.channel_id) || {}).name || el.channel_id}`));
      else if (el.type === "broadcast") parent.append(h("span", { class: "mention broadcast" }, `@${el.range}`));
      else if (el.type === "emoji") parent.append(EMOJI[el.name] || `:${el.name}:`);
      else if (el.type === "rich_text_section") renderRich(el.elements, parent.appendChild(h("div")));
      else if (el.type === "rich_text_preformatted") renderRich(el.elements, parent.appendChild(h("pre")));
      else if (el.type === "rich_text_quote") renderRich(el.elements, parent.appendChild(h("blockquote")));
      else if (el.type === "rich_text_list") {
        const list = parent.appendChild(h(el.style === "ordered" ? "ol" : "ul"));
        for (const item of el.elements || []) renderRich(item.elements, list.appendChild(h("li")));
      }
    }
  }

  // ---------------------------------------------------------------- Block Kit

  // ctx: {kind: "message", channel, ts}, {kind: "view", viewId} or {kind: "home", viewId}
  function renderBlocks(blocks, ctx) {
    const root = h("div", { class: "blocks" });
    for (const block of blocks || []) root.append(renderBlock(block, ctx));
    return root;
  }

  function renderBlock(block, ctx) {
    const data = { blockId: block.block_id };
    switch (block.type) {
      case "header":
        return h("div", { class: "block block-header", data }, plainNodes(block.text));
      case "divider":
        return h("hr", { class: "block block-divider", data });
      case "section": {
        const main = h("div", { class: "section-main" });
        if (block.text) main.append(renderText(block.text));
        if (block.fields) main.append(h("div", { class: "section-fields" }, block.fields.map((f) => h("div", { class: "field" }, renderText(f)))));
        const node = h("div", { class: "block block-section", data }, main);
        if (block.accessory) node.append(renderElement(block.accessory, block, ctx));
        return node;
      }
      case "context":
        return h("div", { class: "block block-context", data }, (block.elements || []).map((el) =>
          el.type === "image" ? h("span", { title: el.alt_text, class: "context-image" }, "🖼") : h("span", null, renderText(el))));
      case "actions":
        return h("div", { class: "block block-actions", data }, (block.elements || []).map((el) => renderElement(el, block, ctx)));
      case "image":
        return h("div", { class: "block block-image", data }, `🖼 ${block.title ? plain(block.title) + " — " : ""}${block.alt_text || ""}`);
      case "input":
        return renderInputBlock(block, ctx);
      case "markdown":
        return h("div", { class: "block block-markdown", data }, block.text || "");
      case "rich_text": {
        const node = h("div", { class: "block block-rich", data });
        renderRich(block.elements, node);
        return node;
      }
      default:
        return h("div", { class: "block block-unknown", data }, `Unsupported block: ${block.type}`);
    }
  }

  function renderElement(el, block, ctx) {
    const data = { actionId: el.action_id, blockId: block.block_id, type: el.type };
    if (el.type === "button" || el.type === "workflow_button") {
      const style = el.style === "primary" ? "primary" : el.style === "danger" ? "danger" : "";
      const btn = h("button", { type: "button", class: `sk-button ${style}`.trim(), data: { ...data, value: el.value } }, plainNodes(el.text));
      btn.addEventListener("click", () => act(btn, el, block, ctx, el.value ?? null));
      return btn;
    }
    if (el.type === "image") return h("span", { title: el.alt_text }, "🖼");
    if (el.type === "overflow") {
      const sel = h("select", { class: "sk-select overflow", data, "aria-label": "More actions" },
        h("option", { value: "" }, "⋯"), (el.options || []).map((o) => h("option", { value: o.value }, plain(o.text))));
      sel.addEventListener("change", () => { if (sel.value) act(sel, el, block, ctx, sel.value); sel.value = ""; });
      return sel;
    }
    const control = buildControl(el, data);
    if (ctx.kind === "message" || (block.type === "actions" || block.type === "section")) {
      control.addEventListener("change", () => act(control, el, block, ctx, readControl(control)[1]));
    }
    return control;
  }

  // The value a control gives in a block_actions action (not the state dict).
  function actionValue(el, stateEntry) {
    if (!stateEntry) return null;
    if ("selected_option" in stateEntry) return stateEntry.selected_option ? stateEntry.selected_option.value : null;
    if ("selected_date" in stateEntry) return stateEntry.selected_date;
    if ("selected_time" in stateEntry) return stateEntry.selected_time;
    if ("selected_date_time" in stateEntry) return stateEntry.selected_date_time;
    return stateEntry.value ?? null;
  }

  async function act(node, el, block, ctx, rawValue) {
    if (el.confirm && !(await confirmDialog(el.confirm))) return;
    if (el.url && safeHref(el.url)) window.open(el.url, "_blank", "noopener");
    const value = rawValue && typeof rawValue === "object" ? actionValue(el, rawValue) : rawValue;
    const body = { action_id: el.action_id, block_id: block.block_id, value, user_id: S.currentUser };
    if (ctx.kind === "home") {
      body.home = true;
    } else if (ctx.kind === "view") {
      body.view_id = ctx.viewId;
      body.values = collectValues(document.querySelector(`.modal[data-view-id="${CSS.escape(ctx.viewId)}"]`));
    } else {
      body.channel_id = ctx.channel;
      body.message_ts = ctx.ts;
    }
    node.classList.add("busy");
    try { await post("/ui/click", body); } finally { node.classList.remove("busy"); }
  }

  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const root = $("#confirm-root");
      const finish = (answer) => { root.replaceChildren(); resolve(answer); };
      const okClass = confirm.style === "danger" ? "sk-button filled-danger" : "sk-button primary";
      const dialog = h("div", { class: "confirm-dialog", role: "alertdialog", "aria-modal": "true" },
        h("h3", null, confirm.title ? plainNodes(confirm.title) : "Are you sure?"),
        h("div", { class: "confirm-text" }, renderText(confirm.text)),
        h("div", { class: "confirm-buttons" },
          h("button", { type: "button", class: "sk-button confirm-deny", onclick: () => finish(false) }, plain(confirm.deny) || "Cancel"),
          h("button", { type: "button", class: `${okClass} confirm-ok`, onclick: () => finish(true) }, plain(confirm.confirm) || "Yes")));
      const backdrop = h("div", { class: "confirm-backdrop", onclick: (e) => { if (e.target === backdrop) finish(false); } }, dialog);
      dialog.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); finish(false); } });
      root.replaceChildren(backdrop);
      dialog.querySelector(".confirm-ok").focus();
    });
  }

  // ---------------------------------------------------------------- form controls (modals)

  function optionNodes(el) {
    if (el.option_groups) {
      return el.option_groups.map((g) => h("optgroup", { label: plain(g.label) }, (g.options || []).map((o) => h("option", { value: o.value }, plain(o.text)))));
    }
    return (el.options || []).map((o) => h("option", { value: o.value }, plain(o.text)));
  }

  function allOptions(el) {
    return el.options || (el.option_groups || []).flatMap((g) => g.options || []);
  }

  // datetime-local in the browser's zone; seconds kept so an untouched initial_date_time comes back unchanged.
  function localDateTime(unix) {
    const d = new Date(unix * 1000);
    const secs = d.getSeconds() ? `:${pad(d.getSeconds())}` : "";
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}${secs}`;
  }

  function buildControl(el, data) {
    const ph = el.placeholder ? plain(el.placeholder) : null;
    let control;
    switch (el.type) {
      case "plain_text_input":
      case "email_text_input":
      case "url_text_input":
      case "number_input":
      case "rich_text_input": {
        const type = { email_text_input: "email", url_text_input: "url", number_input: "number" }[el.type] || "text";
        control = el.multiline
          ? h("textarea", { class: "sk-textarea", data, placeholder: ph, maxlength: el.max_length ?? null })
          : h("input", { class: "sk-input", type, data, placeholder: ph, maxlength: el.max_length ?? null });
        control.value = el.initial_value ?? "";
        break;
      }
      case "static_select":
      case "external_select":
      case "multi_static_select": {
        const multi = el.type.startsWith("multi_");
        control = h("select", { class: "sk-select", data, multiple: multi }, multi ? null : h("option", { value: "" }, ph || "Select an option"), optionNodes(el));
        const initial = multi ? (el.initial_options || []).map((o) => o.value) : el.initial_option ? [el.initial_option.value] : [];
        for (const opt of control.options) opt.selected = initial.includes(opt.value);
        break;
      }
      case "users_select":
      case "multi_users_select":
        control = h("select", { class: "sk-select", data }, h("option", { value: "" }, ph || "Select a person"),
          [...S.users.values()].filter((u) => !u.is_bot).map((u) => h("option", { value: u.id }, u.real_name)));
        control.value = el.initial_user || "";
        break;
      case "conversations_select":
      case "channels_select":
      case "multi_conversations_select":
      case "multi_channels_select":
        control = h("select", { class: "sk-select", data }, h("option", { value: "" }, ph || "Select a channel"),
          S.channels.map((c) => h("option", { value: c.id }, `#${c.name}`)));
        control.value = el.initial_conversation || el.initial_channel || "";
        break;
      case "datepicker":
        control = h("input", { class: "sk-input", type: "date", data });
        control.value = el.initial_date || "";
        break;
      case "timepicker":
        control = h("input", { class: "sk-input", type: "time", data });
        control.value = el.initial_time || "";
        break;
      case "datetimepicker":
        // Seconds only when the initial value has some, so that an untouched value comes back unchanged.
        control = h("input", { class: "sk-input", type: "datetime-local", data,
          step: el.initial_date_time != null && el.initial_date_time % 60 ? "1" : null });
        if (el.initial_date_time != null) control.value = localDateTime(el.initial_date_time);
        break;
      case "checkboxes":
      case "radio_buttons": {
        const initial = (el.initial_options || (el.initial_option ? [el.initial_option] : [])).map((o) => o.value);
        const name = `${data.blockId}-${data.actionId}`;
        control = h("div", { class: "choices", data, role: el.type === "radio_buttons" ? "radiogroup" : "group" },
          (el.options || []).map((o) => h("label", { class: "choice" },
            h("input", { type: el.type === "checkboxes" ? "checkbox" : "radio", name, value: o.value, checked: initial.includes(o.value) }),
            renderText(o.text))));
        break;
      }
      default:
        control = h("span", { class: "block-unknown", data }, `Unsupported element: ${el.type}`);
    }
    controlSpecs.set(control, el);
    return control;
  }

  // Returns [action_id, state entry] as Slack puts it in view.state.values.
  function readControl(control) {
    const el = controlSpecs.get(control) || {};
    const type = el.type;
    const v = control.value;
    const option = (value) => allOptions(el).find((o) => o.value === value) || null;
    let entry;
    switch (type) {
      case "static_select":
      case "external_select":
        entry = { selected_option: v ? option(v) : null };
        break;
      case "multi_static_select":
        entry = { selected_options: [...control.selectedOptions].map((o) => option(o.value)).filter(Boolean) };
        break;
      case "users_select": entry = { selected_user: v || null }; break;
      case "multi_users_select": entry = { selected_users: v ? [v] : [] }; break;
      case "conversations_select": entry = { selected_conversation: v || null }; break;
      case "channels_select": entry = { selected_channel: v || null }; break;
      case "multi_conversations_select": entry = { selected_conversations: v ? [v] : [] }; break;
      case "multi_channels_select": entry = { selected_channels: v ? [v] : [] }; break;
      case "datepicker": entry = { selected_date: v || null }; break;
      case "timepicker": entry = { selected_time: v || null }; break;
      case "datetimepicker": entry = { selected_date_time: v ? Math.floor(new Date(v).getTime() / 1000) : null }; break;
      case "checkboxes":
        entry = { selected_options: [...control.querySelectorAll("input:checked")].map((i) => option(i.value)).filter(Boolean) };
        break;
      case "radio_buttons": {
        const checked = control.querySelector("input:checked");
        entry = { selected_option: checked ? option(checked.value) : null };
        break;
      }
      default:
        entry = { value: v === "" ? null : v };
    }
    return [el.action_id, { type, ...entry }];
  }

  function collectValues(modal) {
    const values = {};
    if (!modal) return values;
    for (const control of modal.querySelectorAll("[data-action-id][data-block-id]")) {
      if (!controlSpecs.has(control) || control.tagName === "BUTTON") continue;
      const [actionId, entry] = readControl(control);
      (values[control.dataset.blockId] ||= {})[actionId] = entry;
    }
    return values;
  }

  function renderInputBlock(block, ctx) {
    const el = block.element || {};
    const data = { actionId: el.action_id, blockId: block.block_id, type: el.type };
    const control = buildControl(el, data);
    const id = `in-${block.block_id}-${el.action_id}`.replace(/[^\w-]/g, "_");
    control.id = id;
    const label = h("label", { class: "input-label", for: id }, plainNodes(block.label), block.optional ? h("span", { class: "optional" }, " (optional)") : null);
    if (el.max_length && (control.tagName === "TEXTAREA" || control.tagName === "INPUT")) {
      const count = h("span", { class: "char-count" });
      // Like Slack: a count only for long texts, or when a short field nears its limit.
      const update = () => {
        const n = control.value.length;
        const shown = control.tagName === "TEXTAREA" || n >= el.max_length * 0.8;
        count.textContent = shown ? `${n}/${el.max_length}` : "";
        count.classList.toggle("over", n > el.max_length);
      };
      control.addEventListener("input", update);
      update();
      label.append(count);
    }
    if (block.dispatch_action && ctx.kind === "view") {
      control.addEventListener("change", () => act(control, el, block, ctx, readControl(control)[1]));
    }
    return h("div", { class: "block input-block", data: { blockId: block.block_id } },
      label, control,
      block.hint ? h("div", { class: "input-hint" }, plainNodes(block.hint)) : null,
      h("div", { class: "field-error", hidden: true }));
  }

  // ---------------------------------------------------------------- modals

  function topView() {
    let top = null;
    for (const rec of S.views.values()) {
      if (rec.user_id === S.currentUser && (!top || rec.seq > top.seq)) top = rec;
    }
    return top;
  }

  function renderModal(force) {
    const root = $("#modal-root");
    const rec = topView();
    if (!rec) { root.replaceChildren(); S.renderedViewId = null; return; }
    const existing = root.querySelector(".modal");
    if (!force && existing && existing.dataset.viewId === rec.view.id && existing.dataset.hash === rec.view.hash) {
      showErrors(existing, rec.errors || {});
      return;
    }
    // Slack keeps what the user typed when a view is updated with the same block and action ids.
    const keep = existing && existing.dataset.viewId === rec.view.id ? collectValues(existing) : null;
    const view = rec.view;
    const ctx = { kind: "view", viewId: view.id };
    const closeText = plain(view.close) || "Cancel";
    const modal = h("div", { class: "modal", role: "dialog", "aria-modal": "true", "aria-labelledby": "modal-title",
      data: { viewId: view.id, callbackId: view.callback_id, hash: view.hash } },
      h("div", { class: "modal-header" },
        h("div", null, h("h2", { class: "modal-title", id: "modal-title" }, plainNodes(view.title)), h("div", { class: "modal-app" }, S.app.name)),
        h("button", { type: "button", class: "modal-x", "aria-label": "Close", onclick: () => closeModal(view.id) }, "×")),
      h("div", { class: "modal-banner", hidden: !S.viewProblems.get(view.id) }, S.viewProblems.get(view.id) || ""),
      h("form", { class: "modal-body", novalidate: true, onsubmit: (e) => { e.preventDefault(); submitModal(view.id); } },
        (view.blocks || []).map((b) => renderBlock(b, ctx))),
      h("div", { class: "modal-footer" },
        h("button", { type: "button", class: "sk-button modal-close", onclick: () => closeModal(view.id) }, closeText),
        view.submit ? h("button", { type: "button", class: "sk-button primary modal-submit", onclick: () => submitModal(view.id) }, plain(view.submit)) : null));
    if (keep) restoreValues(modal, keep);
    root.replaceChildren(h("div", { class: "modal-backdrop" }, modal));
    showErrors(modal, rec.errors || {});
    if (S.renderedViewId !== view.id) {
      const first = modal.querySelector(".modal-body input, .modal-body textarea, .modal-body select");
      if (first) first.focus();
    }
    S.renderedViewId = view.id;
  }

  function restoreValues(modal, values) {
    for (const control of modal.querySelectorAll("[data-action-id][data-block-id]")) {
      const entry = (values[control.dataset.blockId] || {})[control.dataset.actionId];
      if (!entry || !controlSpecs.has(control)) continue;
      if ("value" in entry) control.value = entry.value ?? "";
      else if ("selected_date" in entry) control.value = entry.selected_date ?? "";
      else if ("selected_time" in entry) control.value = entry.selected_time ?? "";
      else if ("selected_date_time" in entry) control.value = entry.selected_date_time != null ? localDateTime(entry.selected_date_time) : "";
      else if ("selected_option" in entry && control.tagName === "SELECT") control.value = entry.selected_option ? entry.selected_option.value : "";
    }
  }

  function showErrors(modal, errors) {
    const unknown = { ...errors };
    for (const block of modal.querySelectorAll(".input-block")) {
      const msg = errors[block.dataset.blockId];
      delete unknown[block.dataset.blockId];
      const box = block.querySelector(".field-error");
      block.classList.toggle("has-error", Boolean(msg));
      box.hidden = !msg;
      box.textContent = msg || "";
    }
    const banner = modal.querySelector(".modal-banner");
    const rest = Object.entries(unknown).map(([k, v]) => `${k}: ${v}`).join("; ");
    const problem = S.viewProblems.get(modal.dataset.viewId) || "";
    const text = [problem, rest].filter(Boolean).join(" ");
    banner.hidden = !text;
    banner.textContent = text;
  }

  async function submitModal(viewId) {
    const modal = document.querySelector(`.modal[data-view-id="${CSS.escape(viewId)}"]`);
    const btn = modal && modal.querySelector(".modal-submit");
    S.viewProblems.delete(viewId);
    if (btn) { btn.disabled = true; btn.classList.add("busy"); }
    try {
      await post("/ui/submit", { view_id: viewId, values: collectValues(modal), user_id: S.currentUser });
    } finally {
      if (btn && btn.isConnected) { btn.disabled = false; btn.classList.remove("busy"); }
    }
  }

  async function closeModal(viewId) {
    await post("/ui/close", { view_id: viewId, user_id: S.currentUser });
  }

  // ---------------------------------------------------------------- messages

  function initials(name) {
    return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("") || "?";
  }

  function colorFor(id) {
    const colors = ["#4a154b", "#1264a3", "#2eb67d", "#e8912d", "#9c27b0", "#0b7285"];
    let n = 0;
    for (const c of id) n = (n * 31 + c.charCodeAt(0)) % 997;
    return colors[n % colors.length];
  }

  function avatarFor(msg) {
    if (msg.bot_id) return h("div", { class: "avatar bot", "aria-hidden": "true" }, initials(S.app.name).slice(0, 1));
    if (msg.source === "slack") return h("div", { class: "avatar slackbot", "aria-hidden": "true" }, "S");
    const avatar = h("div", { class: "avatar", "aria-hidden": "true" }, initials(userName(msg.user || "?")));
    avatar.style.background = colorFor(msg.user || "?");
    return avatar;
  }

  function renderMessage(msg, channelId, ephemeral) {
    const isBot = Boolean(msg.bot_id) || (ephemeral && msg.source !== "slack");
    const author = msg.source === "slack" ? "Slackbot" : isBot ? S.app.name : userName(msg.user);
    const shown = isBot && !msg.bot_id ? { ...msg, bot_id: "B" } : msg;
    const meta = h("div", { class: "message-meta" },
      h("span", { class: "author" }, author),
      isBot ? h("span", { class: "app-badge" }, "APP") : null,
      h("span", { class: "msg-time", title: tsDate(msg.ts).toLocaleString() }, clock(tsDate(msg.ts), false)),
      msg.edited ? h("span", { class: "edited" }, "(edited)") : null);
    const body = h("div", { class: "message-body" }, meta);
    if (ephemeral) {
      body.append(h("div", { class: "ephemeral-note" }, eyeIcon(), "Only visible to you",
        h("button", { type: "button", class: "dismiss", onclick: () => { S.dismissed.add(msg.ts); renderMessages(); } }, "Dismiss message")));
    }
    const ctx = { kind: "message", channel: channelId, ts: msg.ts };
    if (msg.blocks && msg.blocks.length) body.append(renderBlocks(msg.blocks, ctx));
    else body.append(h("div", { class: "message-text" }, renderMrkdwn(msg.text)));
    const classes = ["message", ephemeral ? "ephemeral" : "", isBot ? "from-bot" : "", msg.source === "slack" ? "slack-notice-msg" : ""];
    const edited = msg.edited ? msg.edited.ts : ""; // always there, so a change can be waited for
    return h("div", { class: classes.filter(Boolean).join(" "), data: { ts: msg.ts, channelId, userId: msg.user, edited } },
      avatarFor(shown), body);
  }

  function renderEcho(echo) {
    return h("div", { class: "command-echo", data: { ts: echo.ts } },
      h("span", { class: "echo-spacer" }),
      h("span", null, `${userName(echo.user)} ran `, h("code", null, echo.text)));
  }

  function renderMessages() {
    if (S.showingHome) { renderHome(); return; }
    const list = $("#messages");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const channelId = S.currentChannel;
    const all = S.messages[channelId] || [];
    const replies = new Map();
    const items = [];
    for (const m of all) {
      if (m.thread_ts && m.thread_ts !== m.ts) {
        if (!replies.has(m.thread_ts)) replies.set(m.thread_ts, []);
        replies.get(m.thread_ts).push(m);
      } else items.push({ ts: m.ts, node: () => renderMessage(m, channelId, false) });
    }
    for (const e of S.ephemerals) {
      if (e.channel === channelId && e.user === S.currentUser && !S.dismissed.has(e.ts)) {
        items.push({ ts: e.ts, node: () => renderMessage(e, channelId, true) });
      }
    }
    for (const e of S.echoes) {
      if (e.channel === channelId && e.user === S.currentUser) items.push({ ts: e.ts, node: () => renderEcho(e) });
    }
    items.sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts));
    const nodes = items.map((item) => {
      const node = item.node();
      const thread = replies.get(item.ts);
      if (thread && node.classList.contains("message")) {
        const body = node.querySelector(".message-body");
        body.append(h("div", { class: "thread-count" }, `${thread.length} ${thread.length === 1 ? "reply" : "replies"}`));
        body.append(h("div", { class: "thread" }, thread.map((r) => {
          const n = renderMessage(r, channelId, false);
          n.classList.add("thread-reply");
          return n;
        })));
      }
      if (node.classList.contains("message") && !node.classList.contains("ephemeral")) {
        // Replies in a thread reach the bot as message events (two-way texts answer from threads).
        const body = node.querySelector(".message-body");
        if (body) {
          body.append(h("button", {
            class: "reply-in-thread", type: "button", "data-ts": item.ts,
            onclick: () => setReplyTarget(item.ts),
          }, "Reply in thread"));
        }
      }
      return node;
    });
    if (!nodes.length) {
      const ch = channelById(channelId);
      nodes.push(h("div", { class: "empty-channel" },
        h("div", null, h("strong", null, `This is the very beginning of #${ch ? ch.name : channelId}.`)),
        h("div", null, ch && ch.is_private && !ch.is_member
          ? `${S.app.name} is not a member of this private channel: chat.postMessage fails here with not_in_channel.`
          : "Type /twilio help below to see what the bot can do.")));
    }
    list.replaceChildren(...nodes);
    if (nearBottom) list.scrollTop = list.scrollHeight;
  }

  // ---------------------------------------------------------------- sidebar and header

  function svgIcon(cls, label, parts) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("class", cls);
    if (label) svg.setAttribute("aria-label", label); else svg.setAttribute("aria-hidden", "true");
    for (const [tag, attrs] of parts) {
      const node = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      svg.append(node);
    }
    return svg;
  }

  function eyeIcon() {
    return svgIcon("eye-icon", null, [
      ["path", { d: "M1 8s2.6-4.5 7-4.5S15 8 15 8s-2.6 4.5-7 4.5S1 8 1 8z", fill: "none", stroke: "currentColor", "stroke-width": "1.4" }],
      ["circle", { cx: "8", cy: "8", r: "2.2", fill: "currentColor" }],
    ]);
  }

  // Drawn, not an emoji: headless browsers often have no emoji font.
  function lockIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("class", "lock-icon");
    svg.setAttribute("aria-label", "private");
    const body = document.createElementNS(ns, "rect");
    for (const [k, v] of Object.entries({ x: "3", y: "7", width: "10", height: "8", rx: "1.5", fill: "currentColor" })) body.setAttribute(k, v);
    const shackle = document.createElementNS(ns, "path");
    for (const [k, v] of Object.entries({ d: "M5 7V5a3 3 0 0 1 6 0v2", fill: "none", stroke: "currentColor", "stroke-width": "1.8" })) shackle.setAttribute(k, v);
    svg.append(shackle, body);
    return svg;
  }

  function renderSidebar() {
    const nav = $("#channel-list");
    nav.replaceChildren(...teamChannels().map((c) => {
      const unread = S.unread.get(c.id) || 0;
      return h("button", {
        type: "button",
        class: `channel-link${c.id === S.currentChannel && !S.showingHome ? " active" : ""}${unread ? " unread" : ""}`,
        data: { channelId: c.id },
        "aria-current": c.id === S.currentChannel && !S.showingHome ? "page" : null,
        onclick: () => switchChannel(c.id),
      }, h("span", { class: "channel-icon" }, c.is_private ? lockIcon() : "#"), h("span", null, c.name),
      unread ? h("span", { class: "badge" }, String(unread)) : null);
    }));
    const home = $("#home-link");
    home.classList.toggle("active", S.showingHome);
    if (S.showingHome) home.setAttribute("aria-current", "page"); else home.removeAttribute("aria-current");
    $("#main").classList.toggle("showing-home", S.showingHome);
    const team = currentTeam();
    $("#workspace-name").textContent = team ? team.name : "Playground";
    if (S.showingHome) {
      $("#channel-title").replaceChildren(`${S.app.name} · Home`);
      $("#channel-topic").textContent = `What ${userName(S.currentUser)} sees in the app's Home tab`;
      $("#channel-id").textContent = "";
      document.title = `${S.app.name} Home · Playground`;
      return;
    }
    const ch = channelById(S.currentChannel);
    $("#channel-title").replaceChildren(...(ch ? [ch.is_private ? lockIcon() : "#", ch.name] : [S.currentChannel]));
    $("#channel-topic").textContent = ch && ch.topic ? ch.topic.value : "";
    $("#channel-id").textContent = ch ? ch.id : "";
    $("#composer").placeholder = `Message ${ch ? (ch.is_private ? "" : "#") + ch.name : ""} — try /twilio help`;
    document.title = `${ch ? "#" + ch.name : "Slack"} · Playground`;
  }

  function renderUsers() {
    const sel = $("#user-switch");
    const people = [...S.users.values()].filter((u) => !u.is_bot && u.team_id === S.currentTeam);
    sel.replaceChildren(...people.map((u) => h("option", { value: u.id }, `${u.real_name}${u.is_admin ? " (admin)" : ""}`)));
    sel.value = S.currentUser;
  }

  function switchChannel(id) {
    S.showingHome = false;
    S.currentChannel = id;
    S.unread.delete(id);
    renderSidebar();
    renderMessages();
    $("#messages").scrollTop = $("#messages").scrollHeight;
    hideCompletions();
    $("#composer").focus();
  }

  // ---------------------------------------------------------------- workspaces and the Home tab

  function currentTeam() { return S.teams.find((t) => t.id === S.currentTeam) || null; }

  function teamChannels() { return S.channels.filter((c) => !c.team_id || c.team_id === S.currentTeam); }

  const homeKey = (teamId, userId) => `${teamId} ${userId}`;

  function renderTeams() {
    const sel = $("#team-switch");
    sel.replaceChildren(...S.teams.map((t) => h("option", { value: t.id }, t.name)));
    sel.value = S.currentTeam;
    $("#team-switch-wrap").hidden = S.teams.length < 2;
  }

  function switchTeam(id) {
    const team = S.teams.find((t) => t.id === id);
    if (!team) return;
    S.currentTeam = id;
    S.currentUser = team.admin_id;
    S.currentChannel = team.general_id;
    renderTeams();
    renderUsers();
    renderSidebar();
    renderModal(true);
    if (S.showingHome) openHome(); else switchChannel(team.general_id);
  }

  // As in Slack: opening the tab sends app_home_opened, and the bot answers with views.publish.
  async function openHome() {
    S.showingHome = true;
    hideCompletions();
    renderSidebar();
    renderHome();
    const answer = await post("/ui/app_home", { user_id: S.currentUser });
    if (answer && !answer.ok && answer.error) toast(`Could not open Home: ${answer.error}`);
  }

  function renderHome() {
    const list = $("#messages");
    const view = S.homeViews.get(homeKey(S.currentTeam, S.currentUser));
    const data = { teamId: S.currentTeam, userId: S.currentUser, viewId: view ? view.id : null };
    if (!view) {
      list.replaceChildren(h("div", { class: "home-view home-empty", data },
        `Opening ${S.app.name}'s Home… the bot draws it with views.publish when it gets app_home_opened.`));
      return;
    }
    list.replaceChildren(h("div", { class: "home-view", data: { ...data, hash: view.hash } },
      renderBlocks(view.blocks, { kind: "home", viewId: view.id })));
  }

  // ---------------------------------------------------------------- activity panel

  // Anything real Slack would have refused is counted on the Activity button, so it is not missed.
  function setProblems(n) {
    S.problems = n;
    const button = $("#toggle-activity");
    button.textContent = n ? `Activity · ${n} problem${n === 1 ? "" : "s"}` : "Activity";
    button.classList.toggle("has-problems", n > 0);
  }

  function activity(text, cls, when) {
    const list = $("#activity-list");
    const stamp = (when ? new Date(when * 1000) : new Date()).toLocaleTimeString();
    list.prepend(h("li", { class: cls || "" }, `${stamp}  ${text}`));
    while (list.children.length > 200) list.lastChild.remove();
  }

  // ---------------------------------------------------------------- composer and completion

  function knownCommand(name) { return S.commands.find((c) => c.command === name); }

  function computeCompletions(value) {
    const m = /^(\/\S*)$/.exec(value);
    if (m) {
      return {
        items: S.commands.filter((c) => c.command.startsWith(m[1])).map((c) => ({ name: c.command, usage: c.usage_hint, desc: c.description, insert: `${c.command} ` })),
        replace: [0, value.length],
      };
    }
    const sub = /^(\/\S+)\s+(\S*)$/.exec(value);
    if (sub && knownCommand(sub[1]) && S.subcommands.length) {
      const prefix = sub[2].toLowerCase();
      const items = S.subcommands.filter((s) => s.name.toLowerCase().startsWith(prefix))
        .map((s) => ({ name: s.name, usage: argsOf(s.usage, sub[1], s.name), desc: s.description || "", insert: `${sub[1]} ${s.name} ` }));
      if (items.length === 1 && items[0].name === sub[2]) return { items: [], replace: null };
      return { items, replace: [0, value.length] };
    }
    return { items: [], replace: null };
  }

  // "/twilio send TO BODY…" → "TO BODY…": the completion row already names the subcommand.
  function argsOf(usage, command, name) {
    const prefix = `${command} ${name}`;
    if (usage === prefix || usage === name) return "";
    if (usage.startsWith(`${prefix} `)) return usage.slice(prefix.length + 1);
    if (usage.startsWith(`${name} `)) return usage.slice(name.length + 1);
    return usage;
  }

  function usageFor(value) {
    const m = /^(\/\S+)(?:\s+(\S+))?/.exec(value);
    if (!m) return "";
    const cmd = knownCommand(m[1]);
    if (!cmd) return "";
    if (m[2]) {
      const sub = S.subcommands.find((s) => s.name === m[2]);
      if (sub) return sub.usage.startsWith("/") ? sub.usage : `${m[1]} ${sub.usage}`;
    }
    return cmd.usage_hint ? `${cmd.command} ${cmd.usage_hint}` : "";
  }

  function renderCompletions() {
    const box = $("#completions");
    const { items, index } = S.completion;
    if (!items.length) { hideCompletions(); return; }
    box.replaceChildren(...items.map((item, i) => h("div", {
      class: `completion${i === index ? " selected" : ""}`, role: "option", "aria-selected": i === index ? "true" : "false",
      data: { value: item.name },
      onmousedown: (e) => { e.preventDefault(); S.completion.index = i; acceptCompletion(); },
    }, h("span", { class: "completion-name" }, item.name), h("span", { class: "completion-usage" }, item.usage || ""),
    item.desc ? h("span", { class: "completion-desc" }, item.desc) : null)));
    box.hidden = false;
    const sel = box.querySelector(".selected");
    if (sel) sel.scrollIntoView({ block: "nearest" });
  }

  function hideCompletions() {
    S.completion = { items: [], index: 0, replace: null };
    $("#completions").hidden = true;
  }

  function acceptCompletion() {
    const item = S.completion.items[S.completion.index];
    if (!item) return;
    const input = $("#composer");
    input.value = item.insert;
    input.setSelectionRange(input.value.length, input.value.length);
    onComposerInput();
  }

  function onComposerInput() {
    const value = $("#composer").value;
    const { items, replace } = computeCompletions(value);
    S.completion = { items, index: 0, replace };
    renderCompletions();
    $("#usage-hint").textContent = usageFor(value);
  }

  function onComposerKey(e) {
    const open = S.completion.items.length > 0;
    const input = $("#composer");
    if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      const n = S.completion.items.length;
      S.completion.index = (S.completion.index + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      renderCompletions();
    } else if (open && (e.key === "Tab" || (e.key === "Enter" && !e.shiftKey && completionChangesInput()))) {
      e.preventDefault();
      acceptCompletion();
    } else if (open && e.key === "Escape") {
      e.preventDefault();
      hideCompletions();
    } else if (!open && e.key === "ArrowUp" && S.history.length && (input.value === "" || S.historyIndex >= 0)) {
      e.preventDefault();
      S.historyIndex = Math.min(S.historyIndex + 1, S.history.length - 1);
      input.value = S.history[S.history.length - 1 - S.historyIndex];
      onComposerInput();
    } else if (!open && e.key === "ArrowDown" && S.historyIndex >= 0) {
      e.preventDefault();
      S.historyIndex -= 1;
      input.value = S.historyIndex >= 0 ? S.history[S.history.length - 1 - S.historyIndex] : "";
      onComposerInput();
    }
  }

  function completionChangesInput() {
    const item = S.completion.items[S.completion.index];
    return item && item.insert.trim() !== $("#composer").value.trim();
  }

  function setReplyTarget(ts) {
    S.replyTo = ts;
    let bar = $("#thread-target");
    if (!bar) {
      bar = h("div", { id: "thread-target", class: "thread-target" });
      $("#composer-form").before(bar);
    }
    if (!ts) {
      bar.replaceChildren();
      bar.hidden = true;
      return;
    }
    bar.hidden = false;
    bar.replaceChildren(
      h("span", null, "Replying in thread"),
      h("button", { type: "button", class: "thread-target-cancel", onclick: () => setReplyTarget(null) }, "Cancel"));
    $("#composer").focus();
  }

  async function onComposerSubmit(e) {
    e.preventDefault();
    const input = $("#composer");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    S.history.push(text);
    S.historyIndex = -1;
    hideCompletions();
    $("#usage-hint").textContent = "";
    const list = $("#messages");
    list.scrollTop = list.scrollHeight; // what you just ran, and the answer, show at the bottom
    const command = text.startsWith("/") && !text.startsWith("//");
    const thread_ts = S.replyTo && !command ? S.replyTo : null;
    await post("/ui/command", { text, channel_id: S.currentChannel, user_id: S.currentUser, thread_ts });
  }

  // ---------------------------------------------------------------- state and live events

  function callText(c) {
    return `${c.method} ${c.ok ? "ok" : c.error || "failed"}${c.status && c.status !== 200 ? ` (HTTP ${c.status})` : ""}`;
  }

  function load(state) {
    S.team = state.team;
    S.teams = state.teams && state.teams.length ? state.teams : [{ ...state.team, name: state.team.domain, admin_id: S.currentUser, general_id: S.currentChannel }];
    if (!S.currentTeam || !S.teams.some((t) => t.id === S.currentTeam)) S.currentTeam = S.teams[0].id;
    S.homeViews = new Map((state.home_views || []).map((r) => [homeKey(r.team_id, r.user_id), r.view]));
    S.app = state.app;
    S.users = new Map(state.users.map((u) => [u.id, u]));
    S.channels = state.channels;
    S.messages = state.messages || {};
    S.ephemerals = state.ephemerals || [];
    S.echoes = state.echoes || [];
    S.views = new Map((state.views || []).map((r) => [r.view.id, r]));
    S.commands = state.commands || [];
    S.subcommands = state.subcommands || [];
    $("#app-name").textContent = S.app.name;
    $("#app-dot").classList.toggle("down", !state.bot_url);
    $("#app-dot").title = state.bot_url ? `Requests go to ${state.bot_url}` : "No bot URL set";
    $("#activity-list").replaceChildren();
    for (const c of state.calls || []) activity(callText(c), c.ok ? "" : "bad", c.time);
    for (const p of state.problems || []) activity(p, "problem");
    setProblems((state.problems || []).length);
    renderTeams();
    renderUsers();
    renderSidebar();
    renderMessages();
    renderModal(true);
  }

  async function refresh() {
    const resp = await fetch("/ui/state", { cache: "no-store" });
    load(await resp.json());
  }

  function upsertMessage(channel, message) {
    const list = (S.messages[channel] ||= []);
    const i = list.findIndex((m) => m.ts === message.ts);
    if (i >= 0) list[i] = message; else list.push(message);
  }

  function touched(channel) {
    if (channel === S.currentChannel) renderMessages();
    else {
      S.unread.set(channel, (S.unread.get(channel) || 0) + 1);
      renderSidebar();
    }
  }

  const handlers = {
    hello: () => refresh(),
    message: (d) => { upsertMessage(d.channel, d.message); touched(d.channel); },
    message_changed: (d) => { upsertMessage(d.channel, d.message); if (d.channel === S.currentChannel) renderMessages(); },
    message_deleted: (d) => {
      S.messages[d.channel] = (S.messages[d.channel] || []).filter((m) => m.ts !== d.ts);
      if (d.channel === S.currentChannel) renderMessages();
    },
    ephemeral: (d) => {
      S.ephemerals.push(d.ephemeral);
      if (d.ephemeral.user === S.currentUser) touched(d.ephemeral.channel);
    },
    ephemeral_changed: (d) => {
      const i = S.ephemerals.findIndex((e) => e.ts === d.ephemeral.ts);
      if (i >= 0) S.ephemerals[i] = d.ephemeral; else S.ephemerals.push(d.ephemeral);
      renderMessages();
    },
    ephemeral_deleted: (d) => { S.ephemerals = S.ephemerals.filter((e) => e.ts !== d.ts); renderMessages(); },
    echo: (d) => { S.echoes.push(d.echo); if (d.echo.channel === S.currentChannel) renderMessages(); },
    home_published: (d) => {
      S.homeViews.set(homeKey(d.team_id, d.user_id), d.view);
      if (S.showingHome && d.team_id === S.currentTeam && d.user_id === S.currentUser) renderHome();
    },
    view_opened: (d) => { S.views.set(d.view.id, d); renderModal(false); },
    view_updated: (d) => { S.views.set(d.view.id, d); S.viewProblems.delete(d.view.id); renderModal(false); },
    view_closed: (d) => { S.views.delete(d.view_id); S.viewProblems.delete(d.view_id); renderModal(false); },
    view_errors: (d) => {
      const rec = S.views.get(d.view_id);
      if (rec) { rec.errors = d.errors; renderModal(false); }
    },
    view_problem: (d) => { S.viewProblems.set(d.view_id, d.text); renderModal(false); },
    problem: (d) => { activity(d.text, "problem"); toast(d.text); setProblems(S.problems + 1); },
    call: (d) => activity(callText(d), d.ok ? "" : "bad", d.time),
  };

  function connect() {
    const es = new EventSource("/events");
    const status = $("#connection");
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => {
        let data = {};
        try { data = JSON.parse(ev.data); } catch (_) { return; }
        fn(data);
      });
    }
    es.addEventListener("open", () => { status.textContent = "● live"; status.className = "connection online"; });
    es.addEventListener("error", () => { status.textContent = "● reconnecting…"; status.className = "connection offline"; });
  }

  // ---------------------------------------------------------------- start

  document.addEventListener("DOMContentLoaded", () => {
    colourEmoji = hasEmojiFont();
    $("#composer-form").addEventListener("submit", onComposerSubmit);
    $("#composer").addEventListener("input", onComposerInput);
    $("#composer").addEventListener("keydown", onComposerKey);
    $("#composer").addEventListener("blur", () => setTimeout(hideCompletions, 150));
    $("#user-switch").addEventListener("change", (e) => {
      S.currentUser = e.target.value;
      if (S.showingHome) openHome();
      renderMessages();
      $("#messages").scrollTop = $("#messages").scrollHeight;
      renderModal(true);
    });
    $("#team-switch").addEventListener("change", (e) => switchTeam(e.target.value));
    $("#home-link").addEventListener("click", () => openHome());
    $("#toggle-activity").addEventListener("click", (e) => {
      const panel = $("#activity");
      panel.hidden = !panel.hidden;
      e.target.setAttribute("aria-pressed", String(!panel.hidden));
    });
    document.addEventListener("keydown", (e) => {
      if (e.key !== "Escape") return;
      if ($("#confirm-root").firstChild) return; // the confirm dialog handles its own buttons
      const rec = topView();
      if (rec && S.completion.items.length === 0) closeModal(rec.view.id);
    });
    refresh().then(connect, () => toast("Could not load the workspace state"));
  });
})();
