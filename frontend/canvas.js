// The bukva drawing canvas: a Streamlit Components v2 module (inline, no build step).
//
// Streamlit calls the default export on mount and again whenever `data` changes, with the
// same `parentElement` while the element stays mounted. So the pad is built once per mount
// and only updated afterwards. The strokes live in this module (which Streamlit imports once
// per page, so they survive a remount) and in sessionStorage (which survives a reload): a
// stroke is never dropped by a rerun, a language switch or a reload.
//
// State sent to Python (`drawing`): {png, ids, seq}: the canvas as a PNG data URL (black ink
// on white, without the guide lines; 8-bit greyscale, see `greyPng`), the ids of the strokes on it and a send counter. Python
// answers in `data`: `ack` (the last seq it read) and `drop_through` (strokes with ids up to it
// are saved and leave the canvas; strokes drawn since stay).

const STORAGE_KEY = "bukva-canvas";
const RESEND_AFTER_MS = 8000; // longer than a slow answer (the app gives the service 5 s)
const memory = new Map(); // name -> {strokes, nextId, dropThrough, seq, restored}

// ---- a greyscale PNG of the canvas ------------------------------------------------------
// `toDataURL("image/png")` writes RGBA: four channels of the same grey. The transformer then
// inflates four times the data and drops three channels; a greyscale PNG of the same pixels
// decodes in about a seventh of the time and normalises to the same model input (to float32
// rounding: docs/serving.md, Performance). Deflate comes from the browser (CompressionStream);
// without it, the RGBA data URL as before.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function greyPng(canvas) {
  if (typeof CompressionStream === "undefined") return canvas.toDataURL("image/png");
  const { width, height } = canvas;
  const rgba = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const rows = new Uint8Array(height * (width + 1)); // each row: filter 0 (none), then grey
  for (let y = 0, o = 0, i = 0; y < height; y++) {
    rows[o++] = 0;
    for (let x = 0; x < width; x++, i += 4) {
      // ITU-R 601 luma, as Pillow's "L" (exact for the canvas's greys, where r = g = b)
      rows[o++] = (rgba[i] * 19595 + rgba[i + 1] * 38470 + rgba[i + 2] * 7471 + 0x8000) >> 16;
    }
  }
  const zlib = new Uint8Array(
    await new Response(new Blob([rows]).stream().pipeThrough(new CompressionStream("deflate")))
      .arrayBuffer(),
  );
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8); // 8 bits, greyscale, deflate, no filter, no interlace
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", zlib),
    chunk("IEND", new Uint8Array(0)),
  ];
  let binary = "";
  for (const part of parts) {
    for (let i = 0; i < part.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, part.subarray(i, i + 0x8000));
    }
  }
  return `data:image/png;base64,${btoa(binary)}`;
}

function remembered(name) {
  let state = memory.get(name);
  if (state) return state;
  state = { strokes: [], nextId: 1, dropThrough: 0, seq: 0, acked: 0, restored: false };
  try {
    const saved = JSON.parse(sessionStorage.getItem(`${STORAGE_KEY}:${name}`) || "null");
    if (saved && Array.isArray(saved.strokes)) {
      state.strokes = saved.strokes;
      state.nextId = saved.nextId || 1;
      state.restored = saved.strokes.length > 0; // a reload: send it again, and say so
    }
  } catch (err) {
    // sessionStorage may be off (privacy settings): the module memory still holds the strokes
  }
  memory.set(name, state);
  return state;
}

function persist(name, state) {
  try {
    const saved = { strokes: state.strokes, nextId: state.nextId };
    sessionStorage.setItem(`${STORAGE_KEY}:${name}`, JSON.stringify(saved));
  } catch (err) {
    // storage full or off: nothing to do, the module memory still holds the strokes
  }
}

const SVG = "http://www.w3.org/2000/svg";

function guideLines(svg, guides, side) {
  svg.replaceChildren();
  const lines = [
    ["cap", guides.cap, "А"],
    ["x-height", guides.x_height, "а"],
    ["baseline", guides.baseline, ""],
  ];
  for (const [name, fraction, mark] of lines) {
    if (typeof fraction !== "number") continue;
    const y = fraction * side;
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("x1", "0");
    line.setAttribute("x2", String(side));
    line.setAttribute("y1", String(y));
    line.setAttribute("y2", String(y));
    line.setAttribute("class", `guide guide-${name}`);
    svg.appendChild(line);
    if (mark) {
      const text = document.createElementNS(SVG, "text");
      text.setAttribute("x", String(side - 4));
      text.setAttribute("y", String(y - 3));
      text.setAttribute("class", "guide-mark");
      text.textContent = mark;
      svg.appendChild(text);
    }
  }
}

function build(root, side) {
  root.replaceChildren();
  const wrap = document.createElement("div");
  wrap.className = "bukva-pad";
  const pad = document.createElement("div");
  pad.className = "surface";
  pad.style.width = `min(${side}px, 100%)`; // at most its own pixels: sharp, never upscaled
  const canvas = document.createElement("canvas");
  canvas.width = side;
  canvas.height = side;
  canvas.className = "ink";
  canvas.setAttribute("role", "img");
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${side} ${side}`);
  svg.setAttribute("class", "guides");
  svg.setAttribute("aria-hidden", "true");
  pad.append(canvas, svg);
  const tools = document.createElement("div");
  tools.className = "tools";
  const undo = document.createElement("button");
  undo.type = "button";
  undo.className = "undo";
  const clear = document.createElement("button");
  clear.type = "button";
  clear.className = "clear";
  const status = document.createElement("span");
  status.className = "status";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  // The answer in short (phones: the answer column is below the canvas, out of sight).
  const answer = document.createElement("span");
  answer.className = "answer";
  answer.setAttribute("aria-hidden", "true"); // the answer column says it for screen readers
  const char = document.createElement("strong");
  const note = document.createElement("small");
  answer.append(char, note);
  tools.append(undo, clear, answer, status);
  wrap.append(pad, tools);
  root.appendChild(wrap);
  return { canvas, svg, undo, clear, status, answer, char, note };
}

class Pad {
  constructor(root, data) {
    this.name = data.name || "canvas";
    // Side and brush come from Python (`bukva.geometry`, the values training draws with); a
    // canvas without them would silently draw something else, so it refuses to start.
    if (!(data.side > 0 && data.stroke_width > 0)) {
      throw new Error("bukva canvas: data needs side and stroke_width (frontend/canvas.py)");
    }
    this.side = data.side;
    this.width = data.stroke_width;
    this.state = remembered(this.name);
    this.el = build(root, this.side);
    this.ctx = this.el.canvas.getContext("2d");
    this.el.canvas.bukvaPng = () => greyPng(this.el.canvas); // what `send` sends (tests read it)
    this.current = null; // the stroke being drawn: {id, points}
    this.pointer = null;
    this.timer = null;
    this.labels = {};
    this.listen();
    this.redraw();
  }

  listen() {
    const c = this.el.canvas;
    c.addEventListener("pointerdown", (e) => this.down(e));
    c.addEventListener("pointermove", (e) => this.move(e));
    c.addEventListener("pointerup", (e) => this.up(e));
    c.addEventListener("pointercancel", (e) => this.up(e));
    c.addEventListener("lostpointercapture", (e) => this.up(e));
    this.el.undo.addEventListener("click", () => this.undo());
    this.el.clear.addEventListener("click", () => this.clear());
    this.el.canvas.parentElement.parentElement.addEventListener("keydown", (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
        e.preventDefault();
        this.undo();
      }
    });
  }

  point(e) {
    const box = this.el.canvas.getBoundingClientRect();
    const x = ((e.clientX - box.left) * this.side) / box.width;
    const y = ((e.clientY - box.top) * this.side) / box.height;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  down(e) {
    if (this.pointer !== null || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    this.pointer = e.pointerId;
    try {
      this.el.canvas.setPointerCapture(e.pointerId);
    } catch (err) {
      // capture is a nicety (strokes leaving the canvas); drawing works without it
    }
    this.current = { id: this.state.nextId++, points: [this.point(e)] };
    this.dot(this.current.points[0]);
  }

  move(e) {
    if (e.pointerId !== this.pointer || !this.current) return;
    e.preventDefault();
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = this.point(ev);
      const last = this.current.points[this.current.points.length - 1];
      if (p[0] === last[0] && p[1] === last[1]) continue;
      this.current.points.push(p);
      this.segment(last, p);
    }
  }

  up(e) {
    if (e.pointerId !== this.pointer || !this.current) return;
    if (e.type === "pointerup") {
      const p = this.point(e);
      const last = this.current.points[this.current.points.length - 1];
      if (p[0] !== last[0] || p[1] !== last[1]) {
        this.current.points.push(p);
        this.segment(last, p);
      }
    }
    this.state.strokes.push(this.current);
    this.current = null;
    this.pointer = null;
    persist(this.name, this.state);
    this.send(); // at once: no debounce between the pointer lifting and the drawing leaving
  }

  pen() {
    const ctx = this.ctx;
    ctx.strokeStyle = "#000";
    ctx.fillStyle = "#000";
    ctx.lineWidth = this.width;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  }

  dot([x, y]) {
    this.pen();
    this.ctx.beginPath();
    this.ctx.arc(x, y, this.width / 2, 0, 2 * Math.PI);
    this.ctx.fill();
  }

  segment(a, b) {
    this.pen();
    this.ctx.beginPath();
    this.ctx.moveTo(a[0], a[1]);
    this.ctx.lineTo(b[0], b[1]);
    this.ctx.stroke();
  }

  redraw() {
    const ctx = this.ctx;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, this.side, this.side);
    for (const stroke of this.state.strokes) {
      this.dot(stroke.points[0]);
      if (stroke.points.length > 1) {
        this.pen();
        ctx.beginPath();
        ctx.moveTo(stroke.points[0][0], stroke.points[0][1]);
        for (const [x, y] of stroke.points.slice(1)) ctx.lineTo(x, y);
        ctx.stroke();
      }
    }
    const empty = this.state.strokes.length === 0;
    this.el.undo.disabled = empty;
    this.el.clear.disabled = empty;
  }

  async send() {
    const state = this.state;
    state.seq += 1;
    const seq = state.seq;
    // Redrawn from the strokes first: the PNG is then a function of the strokes alone (the
    // same after a reload), not of how the live segments happened to overlap.
    this.redraw();
    const ids = state.strokes.map((s) => s.id);
    let png = null;
    if (ids.length) {
      try {
        png = await greyPng(this.el.canvas);
      } catch (err) {
        png = this.el.canvas.toDataURL("image/png");
      }
    }
    if (seq !== state.seq) return; // a later send (a stroke since) carries the newer drawing
    this.setStateValue("drawing", { png, ids, seq });
    clearTimeout(this.timer);
    // No answer for this drawing after a while (a rerun lost, a reconnect): say so, send again.
    this.timer = setTimeout(() => this.check(), RESEND_AFTER_MS);
  }

  check() {
    if (this.state.acked >= this.state.seq) return;
    this.say(this.labels.resending || "…");
    this.send();
  }

  undo() {
    if (!this.state.strokes.length) return;
    this.state.strokes.pop();
    persist(this.name, this.state);
    this.redraw();
    this.send();
  }

  clear() {
    if (!this.state.strokes.length) return;
    this.el.answer.hidden = true;
    this.state.strokes = [];
    persist(this.name, this.state);
    this.redraw();
    this.send();
  }

  say(message) {
    this.el.status.textContent = message || "";
  }

  update(data, setStateValue) {
    this.setStateValue = setStateValue;
    this.labels = data.labels || {};
    this.el.undo.textContent = this.labels.undo || "Undo";
    this.el.clear.textContent = this.labels.clear || "Clear";
    this.el.undo.title = this.labels.undo_hint || "";
    this.el.canvas.setAttribute("aria-label", this.labels.canvas || "drawing canvas");
    guideLines(this.el.svg, data.guides || {}, this.side);
    const answer = data.answer && this.state.strokes.length ? data.answer : null;
    this.el.answer.hidden = !answer;
    this.el.char.textContent = answer ? answer.char : "";
    this.el.note.textContent = answer ? answer.note : "";
    this.el.answer.className = answer ? `answer case-${answer.kind}` : "answer";
    const state = this.state;
    if (typeof data.ack === "number" && data.ack > state.acked) state.acked = data.ack;
    if (state.acked >= state.seq && this.el.status.textContent === this.labels.resending) {
      this.say("");
    }
    const through = data.drop_through || 0;
    if (through > state.dropThrough) {
      state.dropThrough = through;
      const before = state.strokes.length;
      state.strokes = state.strokes.filter((s) => s.id > through);
      persist(this.name, state);
      this.redraw();
      if (state.strokes.length && state.strokes.length !== before) this.send();
    }
    if (state.restored) {
      // After a reload: the page lost its session, not the drawing. Send it and say so.
      state.restored = false;
      this.redraw();
      this.say(this.labels.restored || "");
      this.send();
    } else if (state.seq === 0 && state.strokes.length) {
      this.send();
    }
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let root = parentElement.querySelector(".bukva-root");
  if (!root) {
    root = document.createElement("div");
    root.className = "bukva-root";
    parentElement.appendChild(root);
  }
  if (!root.bukvaPad) root.bukvaPad = new Pad(root, data || {});
  root.bukvaPad.update(data || {}, setStateValue);
}
