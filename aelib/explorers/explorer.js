// The latent-space explorers, in the browser: one ES module for every explorer and every model.
//
// Python (aelib/widgets.py) sends, once, the decoder's weights, the latent map (a PNG drawn by matplotlib) with the
// affine map from codes to its pixels, and for the interpolation and style explorers the codes of the test digits.
// From then on every slider move, key press, click or drag decodes in JavaScript and repaints the canvases in the same
// animation frame: no kernel round trip, so the explorer also works while the kernel is busy, after it is shut down,
// and on a static page (`Explorer.save_html`). Python learns the new position through the synced traits (z1, z2,
// digit, t, index_a, index_b) whenever a kernel is there to listen.
//
// The decoder is the MLP of aelib.models.MLP: Linear -> ReLU for each hidden layer, then a final Linear to the 784
// pixel logits, and a sigmoid. For conditional models the one-hot label joins the input of every Linear layer, so
// each layer's weight matrix has `classes` extra columns: the label adds one column of it (no multiplication).

const REGISTRY = "__aelib_explorer_weights_v1__";   // raw weights shared by the explorers of a page, by key

// ------------------------------------------------------------------------------------------ weights and decoding
function float32At(buffer, offset, n) {
  return new Float32Array(buffer.slice(offset, offset + 4 * n));   // a copy: aligned whatever the offset
}

/** The decoder's layers from its spec (see aelib.widgets.pack_decoder) and the bytes of its weights (a DataView). */
export function unpackDecoder(spec, view) {
  const buffer = view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
  const layers = [];
  let offset = 0;
  for (const { rows, cols, classes } of spec.layers) {
    const n = rows * (cols + classes);
    let w;
    if (spec.dtype === "float32") {
      w = float32At(buffer, offset, n);
      offset += 4 * n;
    } else if (spec.dtype === "int8") {   // w[r, c] = q[r, c] * scale[r]; the int8 block is padded to 4 bytes
      const q = new Int8Array(buffer, offset, n);
      offset += 4 * Math.ceil(n / 4);
      const scale = float32At(buffer, offset, rows);
      offset += 4 * rows;
      w = new Float32Array(n);
      const stride = cols + classes;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < stride; c++) w[r * stride + c] = q[r * stride + c] * scale[r];
      }
    } else {
      throw new Error(`aelib explorer: unknown weight dtype ${spec.dtype}`);
    }
    const b = float32At(buffer, offset, rows);
    offset += 4 * rows;
    // Column-major for decoding: the inputs a ReLU set to 0 (about half of them) then cost nothing, and each input
    // adds one contiguous column. The label columns are kept apart: a label adds one of them.
    const stride = cols + classes;
    const wT = new Float32Array(rows * cols);
    const label = new Float32Array(rows * classes);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) wT[c * rows + r] = w[r * stride + c];
      for (let y = 0; y < classes; y++) label[y * rows + r] = w[r * stride + cols + y];
    }
    layers.push({ rows, cols, classes, wT, label, b, out: new Float64Array(rows) });
  }
  if (offset !== buffer.byteLength) {
    throw new Error(`aelib explorer: ${buffer.byteLength} bytes of weights, the spec describes ${offset}`);
  }
  return { latentDim: spec.latent_dim, classes: spec.classes, layers };
}

/** Pixel probabilities (Float64Array(784)) of the code z (any length <= latentDim; the rest is 0), label y. */
export function decode(net, z, y = 0) {
  let h = new Float64Array(net.latentDim);
  for (let i = 0; i < Math.min(z.length, net.latentDim); i++) h[i] = z[i];
  const last = net.layers.length - 1;
  net.layers.forEach(({ rows, cols, classes, wT, label, b, out }, l) => {
    for (let r = 0; r < rows; r++) out[r] = b[r];
    if (classes) {
      const base = y * rows;
      for (let r = 0; r < rows; r++) out[r] += label[base + r];
    }
    for (let c = 0; c < cols; c++) {
      const v = h[c];
      if (v === 0) continue;   // a unit the ReLU switched off
      const base = c * rows;
      for (let r = 0; r < rows; r++) out[r] += wT[base + r] * v;
    }
    if (l < last) for (let r = 0; r < rows; r++) if (out[r] < 0) out[r] = 0;   // ReLU on hidden layers
    h = out;
  });
  const p = new Float64Array(h.length);
  for (let i = 0; i < h.length; i++) p[i] = 1 / (1 + Math.exp(-h[i]));
  return p;
}

// Explorers of one model on a page can share one copy of its weights: the widget state stored in a notebook keeps
// them with the first explorer only (aelib.widgets.compact_widget_state). The page-wide registry holds the raw
// weights by key and dtype, never unpacked ones: an explorer restored from an older notebook may run an older copy
// of this module, so each copy of the module unpacks for itself.
const unpacked = new Map();   // this module's decoders, by registry key

function registryKey(spec) {
  return `${spec.key}/${spec.dtype}`;
}

function shared(key) {
  const registry = (globalThis[REGISTRY] ||= new Map());
  if (!registry.has(key)) {
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    registry.set(key, { promise, resolve });
  }
  return registry.get(key);
}

/** Offer this model's weights to the page (if it carries them). */
function publishDecoder(model) {
  const spec = model.get("decoder_spec");
  const view = model.get("decoder_weights");
  if (view && view.byteLength) shared(registryKey(spec)).resolve({ spec, view });
}

/** The decoder of this model: from its own weights, or, if it carries none, from another explorer's. */
async function decoderOf(model) {
  const spec = model.get("decoder_spec");
  const key = registryKey(spec);
  const view = model.get("decoder_weights");
  const raw = view && view.byteLength ? { spec, view } : await shared(key).promise;
  if (!unpacked.has(key)) unpacked.set(key, unpackDecoder(raw.spec, raw.view));
  return unpacked.get(key);
}

// ------------------------------------------------------------------------------------------------------ painting
const scratch = { canvas: null, ctx: null, image: null };

function digitCanvas() {   // a 28 x 28 canvas to put pixels into, then draw enlarged
  if (!scratch.canvas) {
    scratch.canvas = document.createElement("canvas");
    scratch.canvas.width = scratch.canvas.height = 28;
    scratch.ctx = scratch.canvas.getContext("2d");
    scratch.image = scratch.ctx.createImageData(28, 28);
  }
  return scratch;
}

/** Draw pixel probabilities p as a dark-on-white digit at (x, y), `scale` screen pixels per pixel. */
export function drawDigit(ctx, p, x, y, scale) {
  const s = digitCanvas();
  const data = s.image.data;
  for (let i = 0; i < 784; i++) {
    const ink = Math.min(255, Math.max(0, Math.floor(p[i] * 255 + 0.5)));   // as aelib.widgets.decode_image
    data[4 * i] = data[4 * i + 1] = data[4 * i + 2] = 255 - ink;
    data[4 * i + 3] = 255;
  }
  s.ctx.putImageData(s.image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(s.canvas, x, y, 28 * scale, 28 * scale);
}

/** A row of digits with gaps, the `highlight`-th one framed in red (as aelib.widgets.strip draws it). */
function drawStrip(ctx, digits, scale, highlight, gap = 4) {
  const size = 28 * scale;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  digits.forEach((p, i) => drawDigit(ctx, p, gap + i * (size + gap), gap, scale));
  if (highlight !== null && highlight >= 0) {
    ctx.strokeStyle = "rgb(214, 39, 40)";
    ctx.lineWidth = 3;
    ctx.strokeRect(gap + highlight * (size + gap) - 1.5, gap - 1.5, size + 3, size + 3);
  }
}

function stripWidth(n, scale, gap = 4) {
  return n * (28 * scale + gap) + gap;
}

/** Column and row (canvas pixels) of the code z on the map, from the affine map Python read off matplotlib. */
export function toPixel(geometry, z) {
  const [col0, colScale, row0, rowScale] = geometry.affine;
  return [col0 + (z[0] - geometry.xlim[0]) * colScale, row0 + (z[1] - geometry.ylim[0]) * rowScale];
}

/** The code (z1, z2) at canvas pixel (col, row), clamped to the map's ranges. */
export function toCode(geometry, col, row) {
  const [col0, colScale, row0, rowScale] = geometry.affine;
  const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));
  return [clamp(geometry.xlim[0] + (col - col0) / colScale, geometry.xlim),
    clamp(geometry.ylim[0] + (row - row0) / rowScale, geometry.ylim)];
}

function drawMarker(ctx, col, row) {
  ctx.beginPath();
  ctx.arc(col, row, 6.4, 0, 2 * Math.PI);
  ctx.fillStyle = "#fff";
  ctx.fill();
  ctx.lineWidth = 2.2;
  ctx.strokeStyle = "#000";
  ctx.stroke();
  ctx.beginPath();
  ctx.arc(col, row, 1.5, 0, 2 * Math.PI);
  ctx.fillStyle = "#000";
  ctx.fill();
}

// ------------------------------------------------------------------------------------------------------ controls
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function slider(name, css, [lo, hi], value, steps, onInput) {
  const input = h("input", { type: "range", min: lo, max: hi, step: (hi - lo) / steps, "aria-label": name });
  input.value = value;
  const readout = h("span", { class: "aelib-readout" });
  const show = () => { readout.textContent = Number(input.value).toFixed(2); };
  show();
  input.addEventListener("input", () => { show(); onInput(Number(input.value)); });
  const row = h("label", { class: `aelib-slider ${css}` }, h("span", { class: "aelib-name", text: name }), input,
    readout);
  return { row, input, set(v) { input.value = v; show(); } };
}

function digitPicker(name, value, onPick) {
  const buttons = [];
  const group = h("div", { class: "aelib-digit-picker", role: "radiogroup", "aria-label": name },
    h("span", { class: "aelib-name", text: name }));
  const set = (d) => buttons.forEach((b, i) => {
    b.classList.toggle("aelib-active", i === d);
    b.setAttribute("aria-checked", String(i === d));
    b.tabIndex = i === d ? 0 : -1;
  });
  for (let d = 0; d < 10; d++) {
    const b = h("button", { type: "button", role: "radio", text: String(d) });
    b.addEventListener("click", () => { set(d); onPick(d); });
    b.addEventListener("keydown", (e) => {   // arrow keys move between the digits, as in any radio group
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
      if (step) {
        e.preventDefault();
        const next = (d + step + 10) % 10;
        set(next);
        buttons[next].focus();
        onPick(next);
      }
    });
    buttons.push(b);
    group.append(b);
  }
  set(value);
  return { row: group, set };
}

function numberInput(name, css, value, max, onChange) {
  const input = h("input", { type: "number", min: 0, max, step: 1, class: css, "aria-label": name });
  input.value = value;
  input.addEventListener("input", () => {
    const v = Math.round(Number(input.value));
    if (Number.isFinite(v) && v >= 0 && v <= max) onChange(v);
  });
  return { row: h("label", { class: "aelib-number" }, h("span", { class: "aelib-name", text: name }), input),
    input, set(v) { input.value = v; } };
}

// ------------------------------------------------------------------------------------------------------ explorer
function readCodes(model) {
  const view = model.get("codes");
  const n = model.get("n_codes");
  if (!view || !view.byteLength || !n) return { n: 0, dim: 0, codes: new Float32Array(0), labels: [] };
  const buffer = view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
  const dim = model.get("latent_dim");
  return { n, dim, codes: new Float32Array(buffer, 0, n * dim), labels: new Uint8Array(buffer, 4 * n * dim, n) };
}

function codeOf(codes, i) {
  return Array.from(codes.codes.subarray(i * codes.dim, (i + 1) * codes.dim));
}

async function mapImage(model) {
  const view = model.get("map_png");
  const blob = new Blob([view], { type: "image/png" });
  if (globalThis.createImageBitmap) return createImageBitmap(blob);
  const img = new Image();   // older browsers
  img.src = URL.createObjectURL(blob);
  await img.decode();
  return img;
}

function save(model, values) {
  for (const [k, v] of Object.entries(values)) model.set(k, v);
  try {
    model.save_changes();   // tells the kernel, if there is one; the explorer never waits for it
  } catch (err) {
    console.debug("aelib explorer: no kernel to tell", err);
  }
}

async function render({ model, el }) {
  el.classList.add("aelib-explorer", `aelib-${model.get("kind")}-explorer`);
  // Keys pressed inside the explorer belong to it: JupyterLab's command mode would take the arrow keys otherwise.
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  el.addEventListener("keydown", (e) => e.stopPropagation());

  const kind = model.get("kind");
  const geometry = model.get("map_geometry");
  const steps = model.get("slider_steps");
  const codes = readCodes(model);
  const conditional = model.get("conditional");
  const state = {
    z1: model.get("z1"), z2: model.get("z2"), digit: model.get("digit"), t: model.get("t"),
    a: model.get("index_a"), b: model.get("index_b"),
  };

  const digit = h("canvas", { class: "aelib-digit", width: 28 * 6, height: 28 * 6 });
  const map = h("canvas", { class: "aelib-map", width: geometry.width, height: geometry.height,
    title: "click or drag to move the code" });
  const digitCtx = digit.getContext("2d");
  const mapCtx = map.getContext("2d");
  mapCtx.fillStyle = "#fff";
  mapCtx.fillRect(0, 0, map.width, map.height);
  const top = h("div", { class: "aelib-row" },
    h("div", { class: "aelib-column" }, h("div", { class: "aelib-caption", text: model.get("digit_caption") }), digit),
    map);
  el.append(top);

  let background = null;
  let net = null;
  let strip = null;        // interpolation: decodes from A to B; style: the row of ten digits
  const controls = {};

  // -- the code being shown, per explorer kind
  const ends = () => [codeOf(codes, state.a), codeOf(codes, state.b)];
  const code = () => {
    if (kind !== "interpolation") return [state.z1, state.z2];
    const [a, b] = ends();
    return a.map((v, i) => (1 - state.t) * v + state.t * b[i]);
  };

  function paintMap() {
    if (background) mapCtx.drawImage(background, 0, 0);
    if (kind === "interpolation") {
      const [a, b] = ends().map((z) => toPixel(geometry, z));
      mapCtx.save();
      const [left, topEdge, right, bottom] = geometry.axes_box;
      mapCtx.beginPath();
      mapCtx.rect(left, topEdge, right - left, bottom - topEdge);
      mapCtx.clip();
      mapCtx.strokeStyle = "rgb(60, 60, 60)";
      mapCtx.lineWidth = 2.5;
      mapCtx.beginPath();
      mapCtx.moveTo(...a);
      mapCtx.lineTo(...b);
      mapCtx.stroke();
      [[a, state.a], [b, state.b]].forEach(([[col, row], i]) => {
        mapCtx.fillStyle = geometry.digit_colors[codes.labels[i]];
        mapCtx.fillRect(col - 3.5, row - 3.5, 7, 7);
      });
      mapCtx.restore();
    }
    const [col, row] = toPixel(geometry, code());
    drawMarker(mapCtx, col, row);
  }

  function prepareStrip() {   // once per change of A, B or the label, not per t
    if (!net) return;
    if (kind === "interpolation") {
      const [a, b] = ends();
      const n = model.get("steps");
      strip = Array.from({ length: n }, (_, k) => {
        const t = n > 1 ? k / (n - 1) : 0;
        return decode(net, a.map((v, i) => (1 - t) * v + t * b[i]), state.digit);
      });
    }
  }

  function paint() {
    if (!net) return;
    const z = code();
    if (kind === "style") {
      strip = Array.from({ length: 10 }, (_, y) => decode(net, z, y));
      drawDigit(digitCtx, strip[state.digit], 0, 0, 6);
      drawStrip(controls.strip.getContext("2d"), strip, 2, state.digit);
    } else {
      drawDigit(digitCtx, decode(net, z, conditional ? state.digit : 0), 0, 0, 6);
      if (kind === "interpolation") {
        const n = strip.length;
        drawStrip(controls.strip.getContext("2d"), strip, 2, Math.round(state.t * (n - 1)));
      }
    }
    paintMap();
    if (controls.ends) {
      controls.ends.textContent = `A is a ${codes.labels[state.a]}, B is a ${codes.labels[state.b]} (test digits)`;
    }
  }

  // -- user actions: change the state, repaint now, tell the kernel
  function move(z1, z2) {
    state.z1 = z1;
    state.z2 = z2;
    controls.z1.set(z1);
    controls.z2.set(z2);
    paint();
    save(model, { z1, z2 });
  }

  if (kind === "interpolation") {
    controls.ends = h("span", { class: "aelib-caption" });
    const pick = (which) => (v) => {
      state[which] = v;
      const changes = { [which === "a" ? "index_a" : "index_b"]: v };
      if (which === "a" && conditional) {   // the decoder's label follows A
        state.digit = codes.labels[v];
        controls.digit.set(state.digit);
        changes.digit = state.digit;
      }
      prepareStrip();
      paint();
      save(model, changes);
    };
    controls.a = numberInput("digit A #", "aelib-index-a", state.a, codes.n - 1, pick("a"));
    controls.b = numberInput("digit B #", "aelib-index-b", state.b, codes.n - 1, pick("b"));
    el.prepend(h("div", { class: "aelib-row" }, controls.a.row, controls.b.row, controls.ends));
    controls.strip = h("canvas", { class: "aelib-strip", width: stripWidth(model.get("steps"), 2), height: 64 });
    el.append(h("div", { class: "aelib-caption", text: model.get("strip_caption") }), controls.strip);
    controls.t = slider("t", "aelib-t", [0, 1], state.t, 100, (t) => { state.t = t; paint(); save(model, { t }); });
    el.append(controls.t.row);
  } else {
    if (kind === "style") {
      controls.strip = h("canvas", { class: "aelib-row-digits", width: stripWidth(10, 2), height: 64 });
      el.append(h("div", { class: "aelib-caption", text: model.get("strip_caption") }), controls.strip);
    }
    controls.z1 = slider("z1", "aelib-z1", model.get("z1_range"), state.z1, steps, (v) => move(v, state.z2));
    controls.z2 = slider("z2", "aelib-z2", model.get("z2_range"), state.z2, steps, (v) => move(state.z1, v));
    el.append(controls.z1.row, controls.z2.row);
  }
  if (conditional) {
    controls.digit = digitPicker(kind === "interpolation" ? "decode as" : "digit y", state.digit, (d) => {
      state.digit = d;
      prepareStrip();
      paint();
      save(model, { digit: d });
    });
    el.append(controls.digit.row);
  }
  if (kind === "style") {
    controls.styleOf = numberInput("copy the style of test digit #", "aelib-style-of", 0, codes.n - 1, (i) => {
      const [lo1, hi1] = model.get("z1_range");
      const [lo2, hi2] = model.get("z2_range");
      const z = codeOf(codes, i);
      move(Math.min(hi1, Math.max(lo1, z[0])), Math.min(hi2, Math.max(lo2, z[1])));
    });
    el.append(controls.styleOf.row);
  }
  const note = model.get("note");
  if (note) el.append(h("div", { class: "aelib-note", text: `\u24d8 ${note}` }));

  // -- click or drag on the map
  function pointer(e) {
    const rect = map.getBoundingClientRect();
    const col = (e.clientX - rect.left) * (map.width / rect.width);
    const row = (e.clientY - rect.top) * (map.height / rect.height);
    const [z1, z2] = toCode(geometry, col, row);
    if (kind === "interpolation") {   // the nearest point of the path from A to B sets t
      const [a, b] = ends();
      const d = [b[0] - a[0], b[1] - a[1]];
      const len2 = d[0] * d[0] + d[1] * d[1];
      const t = len2 > 0 ? Math.min(1, Math.max(0, ((z1 - a[0]) * d[0] + (z2 - a[1]) * d[1]) / len2)) : 0;
      state.t = t;
      controls.t.set(t);
      paint();
      save(model, { t });
    } else {
      move(z1, z2);
    }
  }
  map.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    map.setPointerCapture?.(e.pointerId);
    pointer(e);
    e.preventDefault();
  });
  map.addEventListener("pointermove", (e) => { if (e.buttons & 1) pointer(e); });

  // -- Python set a value: follow it
  const onChange = () => {
    const now = { z1: model.get("z1"), z2: model.get("z2"), digit: model.get("digit"), t: model.get("t"),
      a: model.get("index_a"), b: model.get("index_b") };
    if (Object.keys(now).every((k) => now[k] === state[k])) return;   // the kernel's echo of our own move
    const was = { a: state.a, b: state.b, digit: state.digit };
    Object.assign(state, now);
    controls.z1?.set(state.z1);
    controls.z2?.set(state.z2);
    controls.t?.set(state.t);
    controls.a?.set(state.a);
    controls.b?.set(state.b);
    if (conditional) controls.digit.set(state.digit);
    if (was.a !== state.a || was.b !== state.b || was.digit !== state.digit) prepareStrip();
    paint();
  };
  const events = ["change:z1", "change:z2", "change:digit", "change:t", "change:index_a", "change:index_b"];
  events.forEach((name) => model.on(name, onChange));

  const waiting = setTimeout(() => {
    el.append(h("div", { class: "aelib-note", text: "\u24d8 waiting for this model's weights: they are stored with "
      + "another explorer of the same model; run the notebook's cells to bring them back" }));
  }, 5000);
  publishDecoder(model);
  net = await decoderOf(model);
  clearTimeout(waiting);
  prepareStrip();
  paint();
  el.dataset.ready = "decoder";
  background = await mapImage(model);
  paint();
  el.dataset.ready = "true";
  return () => events.forEach((name) => model.off(name, onChange));
}

export default {
  initialize({ model }) {
    publishDecoder(model);
  },
  render,
};
