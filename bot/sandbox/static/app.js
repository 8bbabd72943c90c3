// The sandbox's workspace page: renders what /ui/state says the acting person sees and sends
// their actions to /ui/*. Plain browser JavaScript, no build step, no dependencies.
"use strict";

(() => {
  // ---------------------------------------------------------------- state

  const params = new URLSearchParams(location.search);
  let me = params.get("as") || localStorage.getItem("warroom-sandbox-as") || "";
  let channelId = params.get("channel") || "";
  let appOpen = false; // the vp app's page (Home / Messages) instead of a channel
  // The customer's side of an account (its name) instead of a channel; "" for none.
  let customerOpen = params.get("view") === "customer" ? (params.get("account") || "") : "";
  let customerWanted = params.get("view") === "customer";
  let customerKey = "";
  let appTab = "home";
  let data = null; // the last state
  let version = -1;
  let generation = 0;
  let controller = null;
  let threadTarget = null;
  let pinsOpen = false;
  let lastNotice = 0;
  let bannerDismissed = false;
  const seen = {}; // person -> channel -> messages seen
  let modalKey = ""; // id and hash of the modal on screen
  let modalErrors = {};
  let homeKey = "";
  let messagesKey = "";
  let pendingClick = null; // a message button just pressed: its answer is shown as a toast
  const shownEphemeral = new Set(); // ephemeral messages already on screen or told

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- helpers

  const esc = (s) =>
    String(s ?? "").replace(/[&<>"']/g, (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  // Slack escapes exactly these three in message text.
  const unslack = (s) => String(s ?? "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function userName(id) {
    const u = data && data.users[id];
    return u ? u.name : id;
  }

  function channelName(id) {
    const c = data && data.channels.find((ch) => ch.id === id);
    return c ? c.name : null;
  }

  function initials(id) {
    const u = data && data.users[id];
    const name = (u && (u.real_name || u.name)) || id;
    return name.split(/\s+/).map((w) => w[0] || "").join("").slice(0, 2).toUpperCase();
  }

  function colour(id) {
    let h = 0;
    for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) % 360;
    return `hsl(${h}, 45%, 42%)`;
  }

  function toast(text, kind = "error") {
    const t = $("toast");
    t.textContent = text;
    t.className = `toast ${kind}`;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
    showGlyphs(t);
  }

  // Text as a person reads it, from the page's HTML for it (mrkdwn, mentions, dates).
  function plainText(html, { code = true } = {}) {
    const div = document.createElement("div");
    div.innerHTML = html.replace(/<br>/g, "\n");
    if (!code) div.querySelectorAll("code").forEach((c) => c.remove());
    return div.textContent.replace(/[ \t]+/g, " ").trim();
  }

  async function post(path, body) {
    const r = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ as: me, ...body }),
    });
    return r.json();
  }

  // ---------------------------------------------------------------- Slack's dates

  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

  function ordinal(n) {
    const s = ["th", "st", "nd", "rd"], v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  function relativeDay(d) {
    const day = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
    const diff = Math.round((day(d) - day(new Date())) / 86400000);
    return { "0": "today", "-1": "yesterday", "1": "tomorrow" }[String(diff)] || null;
  }

  function clock(d, secs) {
    const opts = { hour: "numeric", minute: "2-digit" };
    if (secs) opts.second = "2-digit";
    return d.toLocaleTimeString(undefined, opts);
  }

  function ago(d) {
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    const future = s < 0, a = Math.abs(s);
    const [n, unit] = a < 60 ? [a, "second"] : a < 3600 ? [Math.round(a / 60), "minute"]
      : a < 86400 ? [Math.round(a / 3600), "hour"] : [Math.round(a / 86400), "day"];
    const words = `${n} ${unit}${n === 1 ? "" : "s"}`;
    return future ? `in ${words}` : `${words} ago`;
  }

  function slackDate(ts, format) {
    const d = new Date(Number(ts) * 1000);
    if (Number.isNaN(d.getTime())) return null;
    const date = `${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`;
    const short = `${MONTHS[d.getMonth()].slice(0, 3)} ${d.getDate()}, ${d.getFullYear()}`;
    const long = `${DAYS[d.getDay()]}, ${date}`;
    const rel = relativeDay(d);
    const pad = (n) => String(n).padStart(2, "0");
    const tokens = {
      date_num: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
      date, date_short: short, date_long: long,
      date_pretty: rel || date, date_short_pretty: rel || short, date_long_pretty: rel || long,
      time: clock(d, false), time_secs: clock(d, true), ago: ago(d),
    };
    return format.replace(/\{(\w+)\}/g, (m, k) => (k in tokens ? tokens[k] : m));
  }

  // ---------------------------------------------------------------- mrkdwn

  const EMOJI = {
    white_check_mark: "✅", warning: "⚠️", rotating_light: "🚨", fire: "🔥", pushpin: "📌",
    memo: "📝", bell: "🔔", alarm_clock: "⏰", lock: "🔒", tada: "🎉", eyes: "👀",
    thumbsup: "👍", "+1": "👍", x: "❌", information_source: "ℹ️", clock3: "🕒",
  };
  const emoji = (s) => s.replace(/:([a-z0-9_+\-]+):/g, (m, k) => EMOJI[k] || m);

  // ---------------------------------------------------------------- emoji without a font

  // Where the browser has no font for an emoji it draws an empty box. Each emoji is checked
  // once by drawing it beside a character no font has; one drawn the same is shown as its
  // name instead (":pushpin:").
  const GLYPH_NAMES = {
    "✅": "white_check_mark", "📌": "pushpin", "🔒": "lock", "⚠": "warning", "🚨": "rotating_light",
    "⏰": "alarm_clock", "📝": "memo", "🖼": "frame_with_picture", "🗓": "calendar", "🕒": "clock3",
    "🔥": "fire", "🔔": "bell", "👍": "thumbsup", "✍": "writing_hand", "🔎": "mag_right",
    "🔁": "repeat", "📋": "clipboard", "👥": "busts_in_silhouette", "👁": "eye", "👀": "eyes",
    "🎓": "mortar_board", "🎉": "tada", "❓": "question", "❌": "x", "✏": "pencil2",
    "✂": "scissors", "☑": "ballot_box_with_check", "⏳": "hourglass_flowing_sand",
    "ℹ": "information_source", "☰": "menu",
  };
  const PICTOGRAPH = /\p{Extended_Pictographic}\uFE0F?/gu;
  const drawable = {};
  let glyphCanvas = null;

  function drawn(text) {
    const g = glyphCanvas.getContext("2d");
    g.clearRect(0, 0, 32, 32);
    g.fillText(text, 2, 2);
    return g.getImageData(0, 0, 32, 32).data.join(",");
  }

  function canDraw(ch) {
    const base = ch.replace("\uFE0F", "");
    if (base in drawable) return drawable[base];
    if (!glyphCanvas) {
      glyphCanvas = document.createElement("canvas");
      glyphCanvas.width = glyphCanvas.height = 32;
      const g = glyphCanvas.getContext("2d");
      g.font = `24px ${getComputedStyle(document.body).fontFamily}`;
      g.textBaseline = "top";
      drawable.missing = drawn("\u{10FFFD}");
    }
    const mine = drawn(ch);
    drawable[base] = mine !== drawable.missing && /[1-9]/.test(mine);
    return drawable[base];
  }

  function glyphName(ch) {
    return `:${GLYPH_NAMES[ch.replace("\uFE0F", "")] || "emoji"}:`;
  }

  // Replace the emoji the browser cannot draw under `root` by their names.
  function showGlyphs(root) {
    if (!root) return;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const missing = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.nodeValue;
      if (!/\p{Extended_Pictographic}/u.test(text)) continue;
      if (node.parentElement && node.parentElement.closest("textarea, script, style")) continue;
      const chars = text.match(PICTOGRAPH) || [];
      if (chars.some((c) => !canDraw(c))) missing.push(node);
    }
    for (const node of missing) {
      const parent = node.parentElement;
      if (parent && parent.closest("option, select")) {
        node.nodeValue = node.nodeValue.replace(PICTOGRAPH, (c) => (canDraw(c) ? c : glyphName(c)));
        continue;
      }
      const frag = document.createDocumentFragment();
      let last = 0;
      node.nodeValue.replace(PICTOGRAPH, (c, at) => {
        if (canDraw(c)) return c;
        frag.append(node.nodeValue.slice(last, at));
        const span = document.createElement("span");
        span.className = "emoji-name";
        span.textContent = glyphName(c);
        frag.append(span);
        last = at + c.length;
        return c;
      });
      frag.append(node.nodeValue.slice(last));
      node.replaceWith(frag);
    }
  }

  function entity(body) {
    const bar = body.indexOf("|");
    const target = bar < 0 ? body : body.slice(0, bar);
    const label = bar < 0 ? "" : unslack(body.slice(bar + 1));
    if (target.startsWith("@")) {
      const id = target.slice(1);
      const name = (data && data.users[id]) ? userName(id) : (label || id);
      return `<span class="mention${id === me ? " me" : ""}" title="${esc(id)}">@${esc(name)}</span>`;
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const name = channelName(id) || label || id;
      return `<a href="#" class="chan" data-channel="${esc(id)}">#${esc(name)}</a>`;
    }
    if (target.startsWith("!date^")) {
      const [, ts, format] = target.split("^");
      const shown = slackDate(ts, format || "{date_short} {time}");
      const d = new Date(Number(ts) * 1000);
      const tip = Number.isNaN(d.getTime()) ? "" : `${d.toLocaleString()} (your time)`;
      return `<time class="date" title="${esc(tip)}">${esc(shown || label)}</time>`;
    }
    if (target.startsWith("!subteam^")) {
      const id = target.slice("!subteam^".length);
      const handle = label || `@${(data && data.usergroups[id]) || id}`;
      return `<span class="mention">${esc(handle)}</span>`;
    }
    if (["!here", "!channel", "!everyone"].includes(target)) {
      return `<span class="mention broadcast">@${target.slice(1)}</span>`;
    }
    if (/^(https?:|mailto:)/.test(target)) {
      return `<a href="${esc(unslack(target))}" target="_blank" rel="noopener noreferrer">${esc(label || unslack(target))}</a>`;
    }
    return esc(`<${unslack(body)}>`);
  }

  function inline(text) {
    const held = [];
    const hold = (html) => `\u0000${held.push(html) - 1}\u0000`;
    let s = text.replace(/`([^`\n]+)`/g, (m, code) => hold(`<code>${esc(unslack(code))}</code>`));
    s = s.replace(/<([^<>\n]+)>/g, (m, body) => hold(entity(body)));
    s = esc(emoji(unslack(s)));
    const wrap = (mark, tag) => {
      const m = mark === "*" ? "\\*" : mark;
      const re = new RegExp(`(^|[^\\w${m}])${m}(?=\\S)([^${m}\\n]*?[^\\s])${m}(?=$|[^\\w${m}])`, "g");
      s = s.replace(re, `$1<${tag}>$2</${tag}>`);
    };
    wrap("*", "b");
    wrap("_", "i");
    wrap("~", "s");
    s = s.replace(/\n/g, "<br>");
    return s.replace(/\u0000(\d+)\u0000/g, (m, i) => held[Number(i)]);
  }

  function mrkdwn(text) {
    if (!text) return "";
    const parts = String(text).split("```");
    let out = "";
    parts.forEach((part, i) => {
      if (i % 2 === 1 && i < parts.length - 1) {
        out += `<pre class="code">${esc(unslack(part.replace(/^\n/, "")))}</pre>`;
        return;
      }
      const lines = (i % 2 === 1 ? "```" + part : part).split("\n");
      let quote = [];
      let buf = [];
      const flush = () => {
        if (buf.length) out += inline(buf.join("\n"));
        buf = [];
      };
      const flushQuote = () => {
        if (quote.length) out += `<blockquote>${inline(quote.join("\n"))}</blockquote>`;
        quote = [];
      };
      for (const line of lines) {
        const q = line.match(/^(?:>|&gt;) ?(.*)$/);
        if (q) { flush(); quote.push(q[1]); } else { flushQuote(); buf.push(line); }
      }
      flush();
      flushQuote();
    });
    return out;
  }

  function textObject(t) {
    if (!t) return "";
    if (typeof t === "string") return mrkdwn(t);
    return t.type === "mrkdwn" ? mrkdwn(t.text) : esc(emoji(t.text || ""));
  }

  // ---------------------------------------------------------------- Block Kit

  const blockId = (block, index) => block.block_id || `b${index}`;

  function button(el, bid, refusals) {
    const why = (refusals || {})[`${bid}/${el.action_id || ""}`];
    const style = el.style && !why ? ` ${esc(el.style)}` : "";
    const extra = el.url ? ` data-url="${esc(el.url)}"` : "";
    const confirm = el.confirm ? ` data-confirm="${esc(textPlain(el.confirm.text))}"` : "";
    // Off, not disabled: a disabled button shows no tooltip, and a press still says why.
    const off = why ? ` off" aria-disabled="true" title="${esc(plainText(mrkdwn(why)))}" data-refusal="${esc(plainText(mrkdwn(why)))}` : "";
    return `<button type="button" class="btn${style}${off}" data-act="click" data-block-id="${esc(bid)}" data-action-id="${esc(el.action_id || "")}"${extra}${confirm}>${esc(emoji((el.text && el.text.text) || ""))}</button>`;
  }

  function textPlain(t) {
    return t ? (typeof t === "string" ? t : t.text || "") : "";
  }

  function peopleOptions(selected) {
    const people = Object.entries(data.users).filter(([, u]) => !u.is_bot && !u.deleted);
    return people.map(([id, u]) =>
      `<option value="${esc(id)}"${id === selected ? " selected" : ""}>${esc(u.real_name || u.name)} (@${esc(u.name)})</option>`).join("");
  }

  function optionList(el, selected) {
    const opts = [...(el.options || [])];
    for (const g of el.option_groups || []) opts.push(...(g.options || []));
    return opts.map((o) =>
      `<option value="${esc(o.value)}"${o.value === selected ? " selected" : ""}>${esc(textPlain(o.text))}</option>`).join("");
  }

  // An interactive element outside an input block: clicking or choosing acts at once.
  function element(el, bid, refusals) {
    switch (el.type) {
      case "button":
        return button(el, bid, refusals);
      case "users_select":
        return `<select class="menu" data-act="select" data-block-id="${esc(bid)}" data-action-id="${esc(el.action_id || "")}"><option value="">${esc(textPlain(el.placeholder) || "Select a person")}</option>${peopleOptions(el.initial_user)}</select>`;
      case "static_select":
        return `<select class="menu" data-act="select" data-block-id="${esc(bid)}" data-action-id="${esc(el.action_id || "")}"><option value="">${esc(textPlain(el.placeholder) || "Select an option")}</option>${optionList(el, el.initial_option && el.initial_option.value)}</select>`;
      case "image":
        return `<span class="img" title="${esc(el.alt_text || "")}">🖼</span>`;
      default:
        return `<span class="unsupported">[${esc(el.type)}]</span>`;
    }
  }

  function richText(el) {
    const inner = (els) => (els || []).map((e) => {
      if (e.type === "text") {
        let t = esc(e.text).replace(/\n/g, "<br>");
        const st = e.style || {};
        if (st.code) t = `<code>${t}</code>`;
        if (st.bold) t = `<b>${t}</b>`;
        if (st.italic) t = `<i>${t}</i>`;
        if (st.strike) t = `<s>${t}</s>`;
        return t;
      }
      if (e.type === "link") return `<a href="${esc(e.url)}" target="_blank" rel="noopener noreferrer">${esc(e.text || e.url)}</a>`;
      if (e.type === "user") return entity(`@${e.user_id}`);
      if (e.type === "channel") return entity(`#${e.channel_id}`);
      if (e.type === "emoji") return e.unicode ? String.fromCodePoint(...e.unicode.split("-").map((h) => parseInt(h, 16))) : `:${esc(e.name)}:`;
      if (e.type === "broadcast") return entity(`!${e.range}`);
      return "";
    }).join("");
    switch (el.type) {
      case "rich_text_section": return `<div>${inner(el.elements)}</div>`;
      case "rich_text_preformatted": return `<pre class="code">${inner(el.elements)}</pre>`;
      case "rich_text_quote": return `<blockquote>${inner(el.elements)}</blockquote>`;
      case "rich_text_list": {
        const tag = el.style === "ordered" ? "ol" : "ul";
        return `<${tag}>${(el.elements || []).map((li) => `<li>${inner(li.elements)}</li>`).join("")}</${tag}>`;
      }
      default: return "";
    }
  }

  function renderBlocks(blocks, inView, refusals) {
    return (blocks || []).map((b, i) => {
      const bid = blockId(b, i);
      switch (b.type) {
        case "header":
          return `<div class="b-header">${esc(emoji(textPlain(b.text)))}</div>`;
        case "divider":
          return `<hr class="b-divider">`;
        case "section": {
          const text = b.text ? `<div class="b-text">${textObject(b.text)}</div>` : "";
          const fields = b.fields ? `<div class="b-fields">${b.fields.map((f) => `<div>${textObject(f)}</div>`).join("")}</div>` : "";
          const acc = b.accessory ? `<div class="b-accessory">${element(b.accessory, bid, refusals)}</div>` : "";
          return `<div class="b-section" data-block-id="${esc(bid)}"><div class="b-body">${text}${fields}</div>${acc}</div>`;
        }
        case "context":
          return `<div class="b-context">${(b.elements || []).map((e) =>
            e.type === "image" ? `<span class="img" title="${esc(e.alt_text || "")}">🖼</span>` : `<span>${textObject(e)}</span>`).join("")}</div>`;
        case "actions": {
          const els = b.elements || [];
          const why = els.map((e) => (refusals || {})[`${bid}/${e.action_id || ""}`]).filter(Boolean);
          const hint = why.length ? `<div class="b-refusal">${els.filter((e) => (refusals || {})[`${bid}/${e.action_id || ""}`]).map((e) => `<b>${esc(textPlain(e.text))}</b>`).join(", ")} is off: ${mrkdwn(why[0])}</div>` : "";
          return `<div class="b-actions" data-block-id="${esc(bid)}">${els.map((e) => element(e, bid, refusals)).join("")}</div>${hint}`;
        }
        case "image":
          return `<div class="b-image">🖼 ${esc(b.alt_text || (b.title && b.title.text) || "image")}</div>`;
        case "rich_text":
          return `<div class="b-rich">${(b.elements || []).map(richText).join("")}</div>`;
        case "input":
          return inView ? inputBlock(b, bid) : "";
        default:
          return `<div class="unsupported">[${esc(b.type)} block]</div>`;
      }
    }).join("");
  }

  // A text box shows the whole text it holds, up to a screenful (it scrolls beyond that).
  function textRows(text) {
    const perLine = 90; // characters a line of the form's box holds, about
    const lines = String(text).split("\n").reduce((n, l) => n + Math.max(1, Math.ceil(l.length / perLine)), 0);
    return Math.max(4, Math.min(30, lines + 1));
  }

  function fitTextBox(box) {
    box.style.height = "0"; // measured at no height, scrollHeight is the text's own
    box.style.height = `${box.scrollHeight + 2}px`;
  }

  function inputBlock(b, bid) {
    const el = b.element || {};
    const aid = esc(el.action_id || "");
    const common = `data-input="1" data-block-id="${esc(bid)}" data-action-id="${aid}" data-type="${esc(el.type)}" data-optional="${b.optional ? 1 : 0}"`;
    const id = `in-${esc(bid)}`;
    let control;
    switch (el.type) {
      case "plain_text_input":
      case "email_text_input":
      case "url_text_input":
      case "number_input": {
        const max = el.max_length ? ` maxlength="${Number(el.max_length)}"` : "";
        const ph = el.placeholder ? ` placeholder="${esc(textPlain(el.placeholder))}"` : "";
        control = el.multiline
          ? `<textarea id="${id}" rows="${textRows(el.initial_value || "")}" ${common}${max}${ph}>${esc(el.initial_value || "")}</textarea>`
          : `<input id="${id}" type="text" ${common}${max}${ph} value="${esc(el.initial_value || "")}">`;
        break;
      }
      case "checkboxes":
      case "radio_buttons": {
        const chosen = new Set((el.initial_options || (el.initial_option ? [el.initial_option] : [])).map((o) => o.value));
        const kind = el.type === "checkboxes" ? "checkbox" : "radio";
        control = `<div class="choices" id="${id}" ${common}>${(el.options || []).map((o) =>
          `<label class="choice"><input type="${kind}" name="${esc(bid)}" value="${esc(o.value)}"${chosen.has(o.value) ? " checked" : ""}> <span>${textObject(o.text)}${o.description ? `<small>${textObject(o.description)}</small>` : ""}</span></label>`).join("")}</div>`;
        break;
      }
      case "users_select":
        control = `<select id="${id}" ${common}><option value="">${esc(textPlain(el.placeholder) || "Select a person")}</option>${peopleOptions(el.initial_user)}</select>`;
        break;
      case "multi_users_select":
        control = `<select id="${id}" multiple ${common}>${peopleOptions(null)}</select>`;
        break;
      case "static_select":
        control = `<select id="${id}" ${common}><option value="">${esc(textPlain(el.placeholder) || "Select an option")}</option>${optionList(el, el.initial_option && el.initial_option.value)}</select>`;
        break;
      default:
        control = `<div class="unsupported">[${esc(el.type)}]</div>`;
    }
    const hint = b.hint ? `<div class="hint">${esc(textPlain(b.hint))}</div>` : "";
    const optional = b.optional ? ` <span class="optional">(optional)</span>` : "";
    return `<div class="b-input" data-block-id="${esc(bid)}"><label for="${id}">${esc(textPlain(b.label))}${optional}</label>${control}${hint}<div class="field-error" data-error-for="${esc(bid)}"></div></div>`;
  }

  function collectInputs(root) {
    const inputs = {};
    for (const el of root.querySelectorAll("[data-input]")) {
      const bid = el.dataset.blockId, aid = el.dataset.actionId, type = el.dataset.type;
      let value;
      if (type === "checkboxes") value = [...el.querySelectorAll("input:checked")].map((c) => c.value);
      else if (type === "radio_buttons") value = (el.querySelector("input:checked") || {}).value || null;
      else if (type === "multi_users_select") value = [...el.selectedOptions].map((o) => o.value);
      else value = el.value;
      (inputs[bid] = inputs[bid] || {})[aid] = value;
    }
    return inputs;
  }

  // ---------------------------------------------------------------- messages

  function timeOf(ts) {
    return clock(new Date(Number(ts) * 1000), false);
  }

  function renderMessage(m, isReply) {
    const u = data.users[m.user] || { name: m.user, real_name: m.user };
    const isBot = m.user === data.bot;
    const slackbot = m.user === "USLACKBOT";
    const avatar = isBot ? `<div class="avatar bot">vp</div>`
      : `<div class="avatar" style="background:${colour(m.user)}">${esc(initials(m.user))}</div>`;
    const badges = [
      isBot ? `<span class="badge-app">APP</span>` : "",
      m.pinned ? `<span class="badge-pin">📌 Pinned</span>` : "",
    ].join("");
    const body = m.blocks && m.blocks.length ? renderBlocks(m.blocks, false, m.refusals) : `<div class="b-text">${mrkdwn(m.text)}</div>`;
    const attachments = (m.attachments || []).map((a) =>
      `<div class="attachment" style="border-color:${esc(a.color || "#ddd")}">${a.pretext ? mrkdwn(a.pretext) : ""}${a.title ? `<b>${esc(a.title)}</b>` : ""}${a.text ? mrkdwn(a.text) : ""}${(a.fields || []).map((f) => `<div><b>${esc(f.title)}</b><br>${mrkdwn(f.value)}</div>`).join("")}${a.blocks ? renderBlocks(a.blocks, false) : ""}</div>`).join("");
    const edited = m.edited ? ` <span class="edited">(edited)</span>` : "";
    const eph = m.ephemeral ? `<div class="ephemeral-note">👁 Only visible to you</div>` : "";
    const title = u.title && !isBot ? `<span class="user-title">${esc(u.title)}</span>` : "";
    const replyButton = !isReply && !m.ephemeral
      ? `<button type="button" class="ghost small reply-btn" data-reply="${esc(m.ts)}">Reply in thread</button>` : "";
    const classes = ["message", m.pinned ? "pinned" : "", m.ephemeral ? "ephemeral" : "", isReply ? "reply" : ""].join(" ");
    let thread = "";
    if (!isReply && m.replies && m.replies.length) {
      thread = `<div class="thread"><div class="thread-count">${m.replies.length} ${m.replies.length === 1 ? "reply" : "replies"}</div>${m.replies.map((r) => renderMessage(r, true)).join("")}<button type="button" class="ghost small reply-btn" data-reply="${esc(m.ts)}">Reply…</button></div>`;
    }
    return `<div class="${classes}" id="m-${esc(m.ts.replace(".", "-"))}" data-msg-ts="${esc(m.ts)}">
      ${avatar}
      <div class="content">
        <div class="meta"><span class="author">${esc(slackbot ? "Slackbot" : u.real_name || u.name)}</span>${title}${badges}<span class="time">${esc(timeOf(m.ts))}</span>${edited}${replyButton}</div>
        ${eph}<div class="body">${body}${attachments}</div>
      </div>
    </div>${thread}`;
  }

  function renderMessages(ch) {
    const box = $("messages");
    const key = JSON.stringify([ch.id, ch.messages, me, data.users]);
    if (key === messagesKey) return;
    messagesKey = key;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const keep = box.scrollTop;
    const intro = `<div class="intro"><h2>${ch.is_im ? "vp" : `${ch.is_private ? "🔒" : "#"} ${esc(ch.name)}`}</h2>${ch.purpose ? `<p>${mrkdwn(ch.purpose)}</p>` : ""}</div>`;
    box.innerHTML = intro + ch.messages.map((m) => renderMessage(m, false)).join("");
    box.scrollTop = nearBottom || renderMessages.first ? box.scrollHeight : keep;
    renderMessages.justOpened = renderMessages.first;
    renderMessages.first = false;
  }

  // ---------------------------------------------------------------- the page

  function apply(s) {
    data = s;
    version = s.version;
    // A channel asked for by name (or none: the default) is known by its id from now on.
    if (!appOpen && s.channel && (!channelId || channelId === s.channel.name)) channelId = s.channel.id;
    if (!me || !s.users[me]) me = s.people[0];
    renderUsers();
    renderBanner();
    renderNotices();
    renderSidebar();
    renderMain();
    renderModal();
    renderRequests();
    answerThePresser();
    for (const id of ["topbar", "notice", "notice-history", "sidebar", "channel-header", "messages", "home", "pins-panel", "customer-view"]) showGlyphs($(id));
  }

  // The answer to a button pressed in a message, where the person is: the message it changed
  // may be scrolled away, and an answer only they see lands at the bottom of the channel.
  function answerThePresser() {
    const ch = data.channel;
    if (!ch) return;
    const ephemeral = ch.messages.filter((m) => m.ephemeral);
    const fresh = ephemeral.filter((m) => !shownEphemeral.has(m.ts));
    ephemeral.forEach((m) => shownEphemeral.add(m.ts));
    const box = $("messages");
    const away = box.scrollHeight - box.scrollTop - box.clientHeight > 80;
    if (fresh.length && (pendingClick || away) && !renderMessages.justOpened) {
      const m = fresh[fresh.length - 1];
      toast(plainText(m.blocks && m.blocks.length ? renderBlocks(m.blocks, false) : mrkdwn(m.text)), "info");
      pendingClick = null;
      return;
    }
    // A press that opened a form is answered by the form; an old one by nothing.
    if (pendingClick && (data.modal || Date.now() - pendingClick.at > 20000)) pendingClick = null;
    if (!pendingClick || pendingClick.channel !== ch.id) return;
    const m = findMessage(ch, pendingClick.ts);
    const now = m ? JSON.stringify(m.blocks) : "";
    if (now === pendingClick.before) return;
    const block = m && (m.blocks || []).find((b, i) => blockId(b, i) === pendingClick.blockId);
    // The block's first line, without its ids in code (`assessment`).
    const said = block && block.text ? plainText(textObject(block.text), { code: false }).split("\n")[0] : "";
    toast(said ? `${pendingClick.label}: ${said}` : `${pendingClick.label}: the message was updated.`, "ok");
    pendingClick = null;
  }

  function renderUsers() {
    const sel = $("user-switcher");
    const html = data.people.map((id) => {
      const u = data.users[id];
      return `<option value="${esc(id)}"${id === me ? " selected" : ""}>${esc(u.real_name)} — ${esc(u.title || u.name)}</option>`;
    }).join("");
    if (sel.dataset.html !== html) { sel.innerHTML = html; sel.dataset.html = html; }
    sel.value = me;
    $("team-name").textContent = data.team.name;
    document.title = `${data.title} · ${data.team.name}`;
  }

  function renderBanner() {
    $("banner").hidden = !data.banner || bannerDismissed;
    $("banner-text").textContent = data.banner || "";
  }

  function renderNotices() {
    const notices = data.notices || [];
    $("notice").hidden = notices.length === 0;
    if (!notices.length) return;
    const latest = notices[notices.length - 1];
    $("notice-step").textContent = latest.step ? `Drill ${latest.step}` : "Drill";
    $("notice-text").textContent = latest.text;
    $("notice-look").hidden = !latest.look;
    $("notice-look-text").textContent = latest.look || "";
    $("notice-history").innerHTML = notices.map((n) => `<li>${n.step ? `<b>${esc(n.step)}</b> ` : ""}${esc(n.text)}</li>`).join("");
    renderDrillControls();
    if (latest.id > lastNotice) {
      lastNotice = latest.id;
      if (latest.channel && $("follow-drill").checked && !appOpen && latest.channel !== channelId) {
        openChannel(latest.channel);
      }
    }
  }

  function renderDrillControls() {
    const d = data.drill;
    $("drill-controls").hidden = !d;
    if (!d) return;
    const finished = d.state === "finished";
    const paused = d.state === "paused";
    $("drill-state").textContent = finished ? "Finished" : paused ? (d.holding ? "Paused" : "Pausing…") : "Playing";
    $("drill-state").className = `drill-state ${d.state}`;
    $("drill-pause").textContent = paused ? "Resume" : "Pause";
    $("drill-pause").dataset.do = paused ? "resume" : "pause";
    $("drill-pause").disabled = finished;
    $("drill-step").disabled = finished;
    $("drill-speed").disabled = finished;
    const options = d.speeds.map((x) => `<option value="${x}"${x === d.speed ? " selected" : ""}>${x}× (${(d.beat / x).toFixed(1).replace(/\.0$/, "")} s apart)</option>`).join("");
    if ($("drill-speed").dataset.html !== options) { $("drill-speed").innerHTML = options; $("drill-speed").dataset.html = options; }
  }

  async function drill(body) {
    try {
      const r = await post("/ui/drill", body);
      if (!r.ok) toast(r.error || "The drill did not take that.");
    } catch (e) {
      toast("The sandbox is not answering.");
    }
  }

  function seenFor(id) {
    const mine = (seen[me] = seen[me] || {});
    return mine[id];
  }

  function markSeen(id, count) {
    (seen[me] = seen[me] || {})[id] = count;
  }

  function channelItem(c) {
    const current = !appOpen && !customerOpen && c.id === channelId;
    if (current) markSeen(c.id, c.count);
    if (seenFor(c.id) === undefined) markSeen(c.id, channelItem.initial ? c.count : 0);
    const unread = Math.max(0, c.count - seenFor(c.id));
    const icon = c.is_private ? "🔒" : "#";
    return `<li><a href="#" class="channel${current ? " active" : ""}${unread ? " unread" : ""}${c.is_archived ? " archived" : ""}" data-channel="${esc(c.id)}"><span class="icon">${icon}</span><span class="name">${esc(c.name)}</span>${unread ? `<span class="badge">${unread}</span>` : ""}</a></li>`;
  }

  function renderSidebar() {
    const customers = data.customers || [];
    $("customer-section").hidden = customers.length === 0;
    if (customerWanted && !customerOpen && customers.length) customerOpen = customers[0].account;
    $("customers").innerHTML = customers.map((c) => {
      const mail = c.inbox.reduce((n, t) => n + t.messages.length, 0);
      const key = `customer:${c.account}`;
      const current = c.account === customerOpen;
      if (current) markSeen(key, mail);
      if (seenFor(key) === undefined) markSeen(key, mail);
      const unread = Math.max(0, mail - seenFor(key));
      return `<li><a href="#" class="channel customer${current ? " active" : ""}${unread ? " unread" : ""}" data-customer="${esc(c.account)}"><span class="icon">✉</span><span class="name">${esc(c.account)} (their side)</span>${unread ? `<span class="badge">${unread}</span>` : ""}</a></li>`;
    }).join("");
    const chans = data.channels.filter((c) => !c.is_im);
    const mine = chans.filter((c) => c.is_member || c.id === channelId);
    const rooms = mine.filter((c) => c.name.startsWith("esc-")).sort((a, b) => b.created - a.created || (a.name < b.name ? -1 : 1));
    const plain = mine.filter((c) => !c.name.startsWith("esc-")).sort((a, b) => (a.name < b.name ? -1 : 1));
    const others = chans.filter((c) => !c.is_member && c.id !== channelId);
    $("channels").innerHTML = plain.map(channelItem).join("");
    $("warrooms").innerHTML = rooms.map(channelItem).join("");
    $("warrooms-empty").hidden = rooms.length > 0;
    $("others").innerHTML = others.map(channelItem).join("");
    $("others-section").hidden = others.length === 0;
    channelItem.initial = false;
    const dm = data.channels.find((c) => c.is_im);
    const link = $("app-link");
    link.classList.toggle("active", appOpen);
    const badge = link.querySelector(".badge");
    let unread = 0;
    if (dm) {
      if (appOpen && appTab === "messages") markSeen(dm.id, dm.count);
      if (seenFor(dm.id) === undefined) markSeen(dm.id, 0);
      unread = Math.max(0, dm.count - seenFor(dm.id));
    }
    badge.hidden = !unread;
    badge.textContent = unread;
    link.classList.toggle("unread", unread > 0);
  }

  // The customer's side: their inbox as a mail client shows it, and the shared channel as
  // they see it. Everything in it is their text or the bot's letters: shown as text, escaped.
  function openedCustomer() {
    return (data.customers || []).find((c) => c.account === customerOpen) || null;
  }

  function renderCustomer() {
    const c = openedCustomer();
    const key = JSON.stringify([c, data.users]);
    if (key === customerKey) return;
    customerKey = key;
    const person = c.person ? (data.users[c.person] || { real_name: c.person, name: c.person }) : null;
    $("customer-title").textContent = person ? `${c.account}: ${person.real_name || person.name}` : c.account;
    $("customer-address").textContent = c.address;
    const header = (label, value) => (value ? `<div class="mail-header"><span class="label">${esc(label)}</span> ${esc(value)}</div>` : "");
    $("inbox").innerHTML = c.inbox.length
      ? c.inbox.map((t) => `<article class="mail-thread">
          <h4 class="mail-subject">${esc(t.subject)} <span class="count">${t.messages.length}</span></h4>
          ${t.messages.map((m) => `<div class="mail">
            ${header("From", m.from)}${header("To", m.to)}${header("Cc", m.cc)}${header("Reply-To", m.reply_to)}${header("Subject", m.subject)}${header("Date", m.date)}
            <pre class="mail-body">${esc(m.text)}</pre>
          </div>`).join("")}
        </article>`).join("")
      : `<p class="muted empty-inbox">No mail yet. warroom emails an approved letter here once it is sent.</p>`;
    $("email-composer").hidden = !c.answers_by_email;
    const ch = c.channel;
    $("shared-title").textContent = ch ? `# ${ch.name} (shared with ${c.account})` : `No channel shared with ${c.account}: its letters go by email`;
    $("customer-composer").hidden = !ch;
    const flat = ch ? ch.messages.flatMap((m) => [m, ...(m.replies || [])]) : [];
    const box = $("shared-messages");
    box.innerHTML = flat.map((m) => renderMessage({ ...m, replies: [] }, true)).join("");
    box.scrollTop = box.scrollHeight;
    if (ch && person) $("customer-input").placeholder = `Reply as ${person.real_name || person.name} in #${ch.name}`;
    // Their tickets as the requester sees them in Zendesk: public comments only.
    const tickets = c.tickets || [];
    $("tickets-pane").hidden = tickets.length === 0;
    $("tickets").innerHTML = tickets.map((t) => `<article class="mail-thread ticket" data-ticket="${esc(String(t.id))}">
        <h4 class="mail-subject">#${esc(String(t.id))} ${esc(t.subject)} <span class="count">${esc(t.status)}</span></h4>
        ${t.comments.map((m) => `<div class="ticket-comment${m.customer ? "" : " staff"}">
          <span class="who">${esc(m.author)}</span><span class="when" title="${esc(m.at)}">${esc(whenOf(m.at))}</span>
          <pre class="mail-body">${esc(m.text)}</pre>
        </div>`).join("")}
      </article>`).join("");
    if (tickets.length) $("ticket-input").placeholder = `Reply as ${tickets[0].requester} on ticket #${tickets[0].id}`;
  }

  // A Zendesk time (ISO 8601, UTC) in the reader's own time; as given if it is not one.
  function whenOf(at) {
    const d = new Date(at);
    return Number.isNaN(d.getTime()) ? String(at ?? "") : d.toLocaleString();
  }

  async function replyOnTicket() {
    const c = data && openedCustomer();
    const input = $("ticket-input");
    const text = input.value;
    const ticket = c && (c.tickets || [])[0];
    if (!ticket || !text.trim()) return;
    $("ticket-send").disabled = true;
    try {
      const r = await post("/ui/ticket_reply", { account: c.account, ticket: ticket.id, text });
      if (r.ok) input.value = "";
      else toast(r.error || "That did not work.");
    } catch (e) {
      toast("The sandbox is not answering. Is it still running?");
    } finally {
      $("ticket-send").disabled = false;
      input.focus();
    }
  }

  // Their email answer to the newest letter: into the team's reply mailbox the bot reads.
  async function replyByEmail() {
    const c = data && openedCustomer();
    const input = $("email-input");
    const text = input.value;
    if (!c || !c.answers_by_email || !text.trim()) return;
    $("email-send").disabled = true;
    try {
      const r = await post("/ui/email_reply", { account: c.account, text });
      if (r.ok) { input.value = ""; toast("Sent. The bot reads its mailbox now.", "ok"); }
      else toast(r.error || "That did not work.");
    } catch (e) {
      toast("The sandbox is not answering. Is it still running?");
    } finally {
      $("email-send").disabled = false;
      input.focus();
    }
  }

  async function sendAsCustomer() {
    const c = data && openedCustomer();
    const input = $("customer-input");
    const text = input.value;
    if (!c || !c.channel || !c.person || !text.trim()) return;
    $("customer-send").disabled = true;
    try {
      const r = await post("/ui/send", { as: c.person, channel: c.channel.id, text });
      if (r.ok) input.value = "";
      else toast(r.error || "That did not work.");
    } catch (e) {
      toast("The sandbox is not answering. Is it still running?");
    } finally {
      $("customer-send").disabled = false;
      input.focus();
    }
  }

  function openCustomer(account) {
    customerOpen = account;
    customerWanted = true;
    appOpen = false;
    customerKey = "";
    history.replaceState(null, "", `?as=${encodeURIComponent(me)}&view=customer&account=${encodeURIComponent(account)}`);
    restart();
  }

  function renderMain() {
    const showCustomer = !!customerOpen && !!openedCustomer();
    $("customer-view").hidden = !showCustomer;
    $("channel-view").hidden = showCustomer;
    if (showCustomer) { renderCustomer(); return; }
    const dm = data.channels.find((c) => c.is_im);
    $("app-tabs").hidden = !appOpen;
    for (const t of document.querySelectorAll("#app-tabs .tab")) t.classList.toggle("active", t.dataset.tab === appTab);
    const showHome = appOpen && appTab === "home";
    $("home").hidden = !showHome;
    $("messages").hidden = showHome;
    // The app's Messages tab is read-only (slack-manifest.yaml), as Slack shows it.
    $("composer").hidden = appOpen;
    $("messages-off").hidden = !appOpen || showHome;
    $("pins-toggle").hidden = appOpen;
    if (appOpen) {
      $("channel-title").innerHTML = `<span class="app-name">vp</span> <span class="badge-app">APP</span>`;
      $("channel-topic").innerHTML = "warroom: runs the war room for customer-support escalations";
      $("channel-topic").title = "";
      $("channel-members").textContent = "";
      $("pins-panel").hidden = true;
      $("not-member").hidden = true;
      if (showHome) renderHome();
      else if (dm && data.channel && data.channel.id === dm.id) {
        renderMessages(data.channel);
        $("composer-input").placeholder = "Message vp";
      } else {
        $("messages").innerHTML = `<div class="intro"><h2>vp</h2><p>No messages yet. The app writes to you here, for example when you declare an escalation from the form.</p></div>`;
        messagesKey = "";
      }
      return;
    }
    const ch = data.channel;
    if (!ch) {
      $("channel-title").textContent = "Channel not found";
      $("channel-topic").textContent = "";
      $("messages").innerHTML = `<div class="intro"><p>Pick a channel on the left.</p></div>`;
      messagesKey = "";
      return;
    }
    // A state asked for before another channel was opened: the new one's is on its way.
    if (ch.id !== channelId) return;
    $("channel-title").innerHTML = `${ch.is_private ? "🔒" : "#"}&nbsp;${esc(ch.name)}${ch.is_archived ? ` <span class="archived-tag">archived</span>` : ""}`;
    $("channel-topic").innerHTML = ch.topic ? mrkdwn(ch.topic) : `<span class="muted">No topic</span>`;
    $("channel-topic").title = ch.topic ? plainText(mrkdwn(ch.topic)) : "";
    const names = ch.members.filter((id) => data.users[id]).map((id) => userName(id)).join(", ");
    $("channel-members").textContent = `${ch.members.length} ${ch.members.length === 1 ? "member" : "members"}`;
    $("channel-members").title = names;
    $("pin-count").textContent = ch.pins.length;
    $("not-member").hidden = ch.is_member;
    $("composer-input").placeholder = threadTarget ? "Reply in thread…" : `Message ${ch.is_private ? "🔒" : "#"}${ch.name}`;
    renderPins(ch);
    renderMessages(ch);
  }

  function renderPins(ch) {
    const panel = $("pins-panel");
    panel.hidden = !pinsOpen;
    if (!pinsOpen) return;
    const pinned = ch.pins.map((ts) => findMessage(ch, ts)).filter(Boolean);
    panel.innerHTML = pinned.length
      ? `<div class="section-title">Pinned in #${esc(ch.name)}</div>` + pinned.map((m) =>
        `<a href="#" class="pin-item" data-goto="${esc(m.ts)}">📌 <span>${mrkdwn(m.text)}</span></a>`).join("")
      : `<div class="muted">Nothing is pinned in this channel.</div>`;
  }

  function findMessage(ch, ts) {
    for (const m of ch.messages) {
      if (m.ts === ts) return m;
      for (const r of m.replies || []) if (r.ts === ts) return r;
    }
    return null;
  }

  function renderHome() {
    const home = data.home;
    const key = home ? `${home.id}:${home.hash}` : "none";
    if (key === homeKey) return;
    homeKey = key;
    $("home").innerHTML = home
      ? `<div class="home-view" data-view-id="${esc(home.id)}">${renderBlocks(home.blocks, true)}</div>`
      : `<div class="intro"><h2>Home</h2><p>vp has not published a Home tab for you yet (apps publish it with <code>views.publish</code>, usually when you open this tab: the <code>app_home_opened</code> event was just sent).</p></div>`;
  }

  function renderModal() {
    const modal = data.modal;
    const backdrop = $("modal-backdrop");
    if (!modal) {
      backdrop.hidden = true;
      modalKey = "";
      modalErrors = {};
      return;
    }
    const v = modal.view;
    const key = `${v.id}:${v.hash}`;
    backdrop.hidden = false;
    if (key === modalKey) return;
    modalKey = key;
    modalErrors = {};
    const submit = v.submit ? `<button type="submit" class="btn primary" id="modal-submit">${esc(textPlain(v.submit))}</button>` : "";
    $("modal").innerHTML = `<form data-view-id="${esc(v.id)}" id="modal-form" novalidate>
      <div class="modal-head"><h2 id="modal-title">${esc(textPlain(v.title))}</h2><button type="button" class="ghost close-x" data-close="1" aria-label="Close">✕</button></div>
      <div class="modal-error" id="modal-error" hidden></div>
      <div class="modal-body">${renderBlocks(v.blocks, true)}</div>
      <div class="modal-foot"><button type="button" class="btn" data-close="1">${esc(textPlain(v.close) || "Cancel")}</button>${submit}</div>
    </form>`;
    for (const box of $("modal").querySelectorAll("textarea")) {
      fitTextBox(box);
      box.addEventListener("input", () => fitTextBox(box));
    }
    showGlyphs($("modal"));
    const first = $("modal").querySelector("input, textarea, select");
    if (first) { first.focus(); if (first.setSelectionRange) first.setSelectionRange(0, 0); first.scrollTop = 0; }
  }

  function showFieldErrors(errors) {
    const form = $("modal-form");
    if (!form) return;
    for (const slot of form.querySelectorAll("[data-error-for]")) {
      const msg = errors[slot.dataset.errorFor] || "";
      slot.textContent = msg;
      slot.closest(".b-input").classList.toggle("has-error", Boolean(msg));
    }
  }

  function renderRequests() {
    const list = $("requests-list");
    if ($("requests").hidden) return;
    list.innerHTML = [...(data.deliveries || [])].reverse().map((d) =>
      `<li class="${d.error ? "bad" : ""}"><code>${esc(d.kind)}</code> → ${d.status || "no answer"}${d.error ? ` <b>${esc(d.error)}</b>` : ""} <span class="muted">${d.ms} ms</span></li>`).join("") || `<li class="muted">Nothing yet.</li>`;
  }

  // ---------------------------------------------------------------- live updates

  function stateUrl(since) {
    const q = new URLSearchParams({ as: me });
    const dm = data && data.channels.find((c) => c.is_im);
    const wanted = appOpen ? (dm ? dm.id : "") : channelId;
    if (wanted) q.set("channel", wanted);
    if (since !== null) { q.set("since", since); q.set("wait", "15"); }
    return `/ui/state?${q}`;
  }

  async function loop(g) {
    while (g === generation) {
      controller = new AbortController();
      try {
        const r = await fetch(stateUrl(version), { signal: controller.signal });
        const s = await r.json();
        if (g !== generation) return;
        if (!s.unchanged) apply(s);
      } catch (e) {
        if (g !== generation) return;
        await sleep(1000);
      }
    }
  }

  function restart() {
    generation += 1;
    if (controller) controller.abort();
    version = -1;
    loop(generation);
  }

  function openChannel(id) {
    appOpen = false;
    customerOpen = "";
    customerWanted = false;
    channelId = id;
    threadTarget = null;
    pinsOpen = false;
    messagesKey = "";
    renderMessages.first = true;
    $("thread-target").hidden = true;
    history.replaceState(null, "", `?as=${encodeURIComponent(me)}&channel=${encodeURIComponent(id)}`);
    restart();
  }

  function openApp() {
    appOpen = true;
    customerOpen = "";
    customerWanted = false;
    threadTarget = null;
    messagesKey = "";
    homeKey = "";
    renderMessages.first = true;
    if (appTab === "home") post("/ui/home", {}).catch(() => {});
    restart();
  }

  // ---------------------------------------------------------------- actions

  async function send() {
    const input = $("composer-input");
    const text = input.value;
    if (!text.trim()) return;
    const dm = data && data.channels.find((c) => c.is_im);
    const target = appOpen ? (dm && dm.id) : channelId;
    if (!target) { toast("There is no conversation to send to yet."); return; }
    $("send").disabled = true;
    try {
      const r = await post("/ui/send", { channel: target, text, thread_ts: threadTarget });
      if (r.ok) {
        input.value = "";
        autosize();
        hideSuggestions();
      } else {
        toast(r.error || "That did not work.");
        if (text.trim().startsWith("/")) input.value = "";
      }
    } catch (e) {
      toast("The sandbox is not answering. Is it still running?");
    } finally {
      $("send").disabled = false;
      input.focus();
    }
  }

  async function click(el, selected) {
    if (el.dataset.refusal) { toast(el.dataset.refusal, "info"); return; }
    if (el.dataset.url) window.open(el.dataset.url, "_blank", "noopener");
    if (el.dataset.confirm && !window.confirm(el.dataset.confirm)) return;
    const body = { block_id: el.dataset.blockId, action_id: el.dataset.actionId, selected };
    const view = el.closest("[data-view-id]");
    const msg = el.closest("[data-msg-ts]");
    if (view) {
      body.view_id = view.dataset.viewId;
      body.inputs = collectInputs(view);
    } else if (msg) {
      body.channel = appOpen ? (data.channel && data.channel.id) : channelId;
      body.message_ts = msg.dataset.msgTs;
    }
    let pressed = null;
    if (msg && !view && data.channel) {
      const m = findMessage(data.channel, msg.dataset.msgTs);
      pressed = {
        channel: data.channel.id, ts: msg.dataset.msgTs, blockId: el.dataset.blockId,
        label: plainText(esc(el.textContent)), before: m ? JSON.stringify(m.blocks) : "", at: Date.now(),
      };
    }
    el.disabled = true;
    el.classList.add("busy");
    try {
      pendingClick = pressed;
      const r = await post("/ui/click", body);
      if (!r.ok) { pendingClick = null; toast(r.error || "The app did not take the click."); }
      else if (pendingClick && data) answerThePresser();
    } catch (e) {
      toast("The sandbox is not answering.");
    } finally {
      setTimeout(() => { el.disabled = false; el.classList.remove("busy"); }, 400);
    }
  }

  async function submitModal(form) {
    const errors = {};
    for (const el of form.querySelectorAll("[data-input]")) {
      if (el.dataset.optional === "1") continue;
      const t = el.dataset.type;
      const empty = t === "checkboxes" ? !el.querySelector("input:checked")
        : t === "radio_buttons" ? !el.querySelector("input:checked")
          : t === "multi_users_select" ? el.selectedOptions.length === 0 : !String(el.value).trim();
      if (empty) errors[el.dataset.blockId] = "Please complete this required field.";
    }
    showFieldErrors(errors);
    if (Object.keys(errors).length) return;
    const button = $("modal-submit");
    if (button) button.disabled = true;
    try {
      const r = await post("/ui/submit", { view_id: form.dataset.viewId, inputs: collectInputs(form) });
      if (r.errors && Object.keys(r.errors).length) showFieldErrors(r.errors);
      else if (!r.ok) {
        $("modal-error").hidden = false;
        $("modal-error").textContent = r.error || "That did not work.";
      }
    } catch (e) {
      toast("The sandbox is not answering.");
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- composer helpers

  function autosize() {
    const input = $("composer-input");
    input.style.height = "auto";
    input.style.height = `${Math.min(200, input.scrollHeight)}px`;
  }

  let suggestions = [];
  let suggestionIndex = 0;

  function currentWord() {
    const input = $("composer-input");
    const upto = input.value.slice(0, input.selectionStart);
    const m = upto.match(/(^|\s)([@#/][\w.\-]*)$/);
    return m ? { word: m[2], start: upto.length - m[2].length } : null;
  }

  function suggest() {
    const cw = currentWord();
    const box = $("suggestions");
    if (!cw || !data) { hideSuggestions(); return; }
    const q = cw.word.slice(1).toLowerCase();
    let items = [];
    if (cw.word[0] === "@") {
      items = Object.entries(data.users).filter(([id, u]) => !u.deleted && id !== "USLACKBOT"
        && (u.name.toLowerCase().startsWith(q) || (u.real_name || "").toLowerCase().includes(q)))
        .map(([id, u]) => ({ insert: `@${u.name} `, label: `@${u.name}`, detail: id === data.bot ? "the warroom bot" : `${u.real_name}${u.title ? ` · ${u.title}` : ""}` }));
    } else if (cw.word[0] === "#") {
      items = data.channels.filter((c) => !c.is_im && c.name.startsWith(q))
        .map((c) => ({ insert: `#${c.name} `, label: `#${c.name}`, detail: c.topic ? unslack(c.topic).replace(/<@(\w+)>/g, (m, id) => `@${userName(id)}`) : "" }));
    } else if (cw.start === 0) {
      items = [
        { insert: "/escalate ", label: "/escalate", detail: "Customer: what is happening [--arr 250k] [--ic @user] [--criteria id,id] [--private]" },
        { insert: "/escalate help", label: "/escalate help", detail: "usage, visible only to you" },
        { insert: "/escalate", label: "/escalate (no text)", detail: "opens the declaration form" },
      ].filter((i) => i.label.startsWith(cw.word));
    }
    suggestions = items.slice(0, 8);
    suggestionIndex = 0;
    if (!suggestions.length) { hideSuggestions(); return; }
    box.innerHTML = suggestions.map((s, i) => `<li class="${i === 0 ? "active" : ""}" data-suggestion="${i}"><b>${esc(s.label)}</b> <span class="muted">${esc(s.detail)}</span></li>`).join("");
    box.hidden = false;
  }

  function hideSuggestions() {
    suggestions = [];
    $("suggestions").hidden = true;
  }

  function useSuggestion(i) {
    const cw = currentWord();
    const s = suggestions[i];
    if (!cw || !s) return;
    const input = $("composer-input");
    const before = input.value.slice(0, cw.start);
    const after = input.value.slice(input.selectionStart);
    input.value = before + s.insert + after;
    const pos = (before + s.insert).length;
    input.setSelectionRange(pos, pos);
    hideSuggestions();
    input.focus();
  }

  // ---------------------------------------------------------------- wiring

  document.addEventListener("click", (ev) => {
    const t = ev.target.closest("a, button, li[data-suggestion]");
    if (!t) return;
    if (t.dataset.suggestion !== undefined) { useSuggestion(Number(t.dataset.suggestion)); return; }
    if (t.dataset.channel) { ev.preventDefault(); openChannel(t.dataset.channel); return; }
    if (t.dataset.app) { ev.preventDefault(); openApp(); return; }
    if (t.dataset.customer) { ev.preventDefault(); openCustomer(t.dataset.customer); return; }
    if (t.dataset.tab) {
      appTab = t.dataset.tab;
      if (appTab === "home") { homeKey = ""; post("/ui/home", {}).catch(() => {}); }
      messagesKey = "";
      renderMessages.first = true;
      restart();
      return;
    }
    if (t.dataset.act === "click") { click(t); return; }
    if (t.dataset.reply) {
      threadTarget = t.dataset.reply;
      $("thread-target").hidden = false;
      $("composer-input").placeholder = "Reply in thread…";
      $("composer-input").focus();
      return;
    }
    if (t.dataset.goto) {
      ev.preventDefault();
      const el = document.getElementById(`m-${t.dataset.goto.replace(".", "-")}`);
      if (el) { el.scrollIntoView({ behavior: "smooth", block: "start" }); el.classList.add("flash"); setTimeout(() => el.classList.remove("flash"), 1500); }
      return;
    }
    if (t.dataset.close) {
      const form = $("modal-form");
      if (form) post("/ui/close", { view_id: form.dataset.viewId }).catch(() => {});
      $("modal-backdrop").hidden = true;
      return;
    }
    if (t.href && t.getAttribute("href") === "#") ev.preventDefault();
  });

  document.addEventListener("change", (ev) => {
    const t = ev.target;
    if (t.dataset && t.dataset.act === "select" && t.value) click(t, t.value);
  });

  $("modal").addEventListener("submit", (ev) => {
    ev.preventDefault();
    submitModal(ev.target);
  });

  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });

  $("customer-composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sendAsCustomer();
  });
  $("customer-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); sendAsCustomer(); }
  });
  $("email-composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    replyByEmail();
  });
  $("email-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); replyByEmail(); }
  });
  $("ticket-composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    replyOnTicket();
  });
  $("ticket-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); replyOnTicket(); }
  });

  const input = $("composer-input");
  input.addEventListener("keydown", (ev) => {
    if (!$("suggestions").hidden && suggestions.length) {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        suggestionIndex = (suggestionIndex + (ev.key === "ArrowDown" ? 1 : -1) + suggestions.length) % suggestions.length;
        [...$("suggestions").children].forEach((li, i) => li.classList.toggle("active", i === suggestionIndex));
        return;
      }
      if (ev.key === "Tab") { ev.preventDefault(); useSuggestion(suggestionIndex); return; }
      if (ev.key === "Escape") { hideSuggestions(); return; }
    }
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      send();
    }
  });
  input.addEventListener("input", () => { autosize(); suggest(); });
  input.addEventListener("blur", () => setTimeout(hideSuggestions, 200));

  $("thread-cancel").addEventListener("click", () => {
    threadTarget = null;
    $("thread-target").hidden = true;
    if (data) renderMain();
  });

  $("pins-toggle").addEventListener("click", () => {
    pinsOpen = !pinsOpen;
    if (data && data.channel) renderPins(data.channel);
  });

  $("user-switcher").addEventListener("change", (ev) => {
    me = ev.target.value;
    localStorage.setItem("warroom-sandbox-as", me);
    threadTarget = null;
    $("thread-target").hidden = true;
    messagesKey = "";
    homeKey = "";
    modalKey = "";
    channelItem.initial = true;
    renderMessages.first = true;
    history.replaceState(null, "", `?as=${encodeURIComponent(me)}${channelId ? `&channel=${encodeURIComponent(channelId)}` : ""}`);
    if (appOpen && appTab === "home") post("/ui/home", {}).catch(() => {});
    restart();
  });

  $("drill-pause").addEventListener("click", (ev) => drill({ do: ev.currentTarget.dataset.do || "pause" }));
  $("drill-step").addEventListener("click", () => drill({ do: "step" }));
  $("drill-speed").addEventListener("change", (ev) => drill({ do: "speed", speed: Number(ev.target.value) }));

  // On a narrow screen the channel list is a drawer over the page.
  $("sidebar-toggle").addEventListener("click", () => {
    const open = !document.body.classList.contains("sidebar-open");
    document.body.classList.toggle("sidebar-open", open);
    $("sidebar-toggle").setAttribute("aria-expanded", String(open));
  });
  // Picking a channel, or pressing anywhere else, closes the drawer.
  document.addEventListener("click", (ev) => {
    if (!document.body.classList.contains("sidebar-open") || ev.target.closest("#sidebar-toggle")) return;
    if (ev.target.closest("#sidebar a") || !ev.target.closest("#sidebar")) {
      document.body.classList.remove("sidebar-open");
      $("sidebar-toggle").setAttribute("aria-expanded", "false");
    }
  }, true);

  $("banner-close").addEventListener("click", () => { bannerDismissed = true; $("banner").hidden = true; });
  $("notice-history-toggle").addEventListener("click", () => { $("notice-history").hidden = !$("notice-history").hidden; });
  $("requests-toggle").addEventListener("click", () => {
    $("requests").hidden = !$("requests").hidden;
    if (data) renderRequests();
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !$("modal-backdrop").hidden) {
      const form = $("modal-form");
      if (form) post("/ui/close", { view_id: form.dataset.viewId }).catch(() => {});
      $("modal-backdrop").hidden = true;
    }
  });

  // Relative dates ("in 3 minutes") stay current without a new state.
  setInterval(() => { if (data && !document.hidden) { messagesKey = ""; if (!appOpen || appTab === "messages") renderMain(); } }, 30000);

  channelItem.initial = true;
  renderMessages.first = true;
  // A reloaded Slack client shows no modal: the server closes the ones this person had open
  // (telling the app, as Slack does) before the first state is read.
  post("/ui/open", {}).catch(() => {}).finally(restart);
})();
