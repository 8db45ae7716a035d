// The latent, interpolation and style explorers in the browser: the last part of the explorers' ES module, after dom.js
// and decoder.js (aelib.explorers.kinds joins them).
//
// Python (aelib/explorers/latent.py) sends, once, the decoder's weights, the latent map (a PNG drawn by matplotlib)
// with the affine map from codes to its pixels, and for the interpolation and style explorers the codes of the test
// digits. From then on every slider move, key press, click or drag decodes in JavaScript and repaints the canvases in
// the same animation frame: no kernel round trip, so the explorer also works while the kernel is busy, after it is
// shut down, and on a static page. Python learns the new position through the synced traits (z1, z2, digit, t,
// index_a, index_b) whenever a kernel is there to listen. What differs between the three explorers lives in one
// object each (KINDS, below); render() does what they share.

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
    const ink = Math.min(255, Math.max(0, Math.floor(p[i] * 255 + 0.5)));   // as aelib.explorers.packing.to_bytes
    data[4 * i] = data[4 * i + 1] = data[4 * i + 2] = 255 - ink;
    data[4 * i + 3] = 255;
  }
  s.ctx.putImageData(s.image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(s.canvas, x, y, 28 * scale, 28 * scale);
}

/** A row of digits with gaps, the `highlight`-th one framed in red (as aelib.explorers.raster.strip draws it). */
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

// ------------------------------------------------------------------------------------------- the three explorers
// Each kind says which code is decoded, which controls it adds, what it paints besides the digit and the marker, and
// what a click on the map does. `ui` is what render() shares with it (state, controls, canvases, the decoder).
const latent = {
  code: (ui) => [ui.state.z1, ui.state.z2],
  build(ui) {
    const { model, state, controls } = ui;
    const steps = model.get("slider_steps");
    controls.z1 = slider("z1", "aelib-z1", model.get("z1_range"), state.z1, steps, (v) => ui.move(v, state.z2));
    controls.z2 = slider("z2", "aelib-z2", model.get("z2_range"), state.z2, steps, (v) => ui.move(state.z1, v));
    ui.el.append(controls.z1.row, controls.z2.row);
  },
  prepare() {},
  paint(ui, z) {
    drawDigit(ui.digitCtx, decode(ui.net, z, ui.conditional ? ui.state.digit : 0), 0, 0, 6);
  },
  paintMap() {},
  pointer: (ui, z1, z2) => ui.move(z1, z2),
};

const style = {
  ...latent,
  build(ui) {
    const { model, controls, codes } = ui;
    controls.strip = h("canvas", { class: "aelib-row-digits", width: stripWidth(10, 2), height: 64 });
    ui.el.append(h("div", { class: "aelib-caption", text: model.get("strip_caption") }), controls.strip);
    latent.build(ui);
    ui.afterDigit = () => {
      controls.styleOf = numberInput("copy the style of test digit #", "aelib-style-of", 0, codes.n - 1, (i) => {
        const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));
        const z = codeOf(codes, i);
        ui.move(clamp(z[0], model.get("z1_range")), clamp(z[1], model.get("z2_range")));
      });
      ui.el.append(controls.styleOf.row);
    };
  },
  paint(ui, z) {
    const row = Array.from({ length: 10 }, (_, y) => decode(ui.net, z, y));
    drawDigit(ui.digitCtx, row[ui.state.digit], 0, 0, 6);
    drawStrip(ui.controls.strip.getContext("2d"), row, 2, ui.state.digit);
  },
};

const interpolation = {
  ends: (ui) => [codeOf(ui.codes, ui.state.a), codeOf(ui.codes, ui.state.b)],
  code(ui) {
    const [a, b] = interpolation.ends(ui);
    return a.map((v, i) => (1 - ui.state.t) * v + ui.state.t * b[i]);
  },
  build(ui) {
    const { model, state, controls, codes, conditional } = ui;
    controls.ends = h("span", { class: "aelib-caption" });
    const pick = (which) => (v) => {
      state[which] = v;
      const changes = { [which === "a" ? "index_a" : "index_b"]: v };
      if (which === "a" && conditional) {   // the decoder's label follows A
        state.digit = codes.labels[v];
        controls.digit.set(state.digit);
        changes.digit = state.digit;
      }
      ui.prepare();
      ui.paint();
      ui.save(changes);
    };
    controls.a = numberInput("digit A #", "aelib-index-a", state.a, codes.n - 1, pick("a"));
    controls.b = numberInput("digit B #", "aelib-index-b", state.b, codes.n - 1, pick("b"));
    ui.el.prepend(h("div", { class: "aelib-row" }, controls.a.row, controls.b.row, controls.ends));
    controls.strip = h("canvas", { class: "aelib-strip", width: stripWidth(model.get("steps"), 2), height: 64 });
    ui.el.append(h("div", { class: "aelib-caption", text: model.get("strip_caption") }), controls.strip);
    controls.t = slider("t", "aelib-t", [0, 1], state.t, 100, (t) => ui.setT(t));
    ui.el.append(controls.t.row);
  },
  prepare(ui) {   // once per change of A, B or the label, not per t
    const [a, b] = interpolation.ends(ui);
    const n = ui.model.get("steps");
    ui.strip = Array.from({ length: n }, (_, k) => {
      const t = n > 1 ? k / (n - 1) : 0;
      return decode(ui.net, a.map((v, i) => (1 - t) * v + t * b[i]), ui.state.digit);
    });
  },
  paint(ui, z) {
    latent.paint(ui, z);
    const n = ui.strip.length;
    drawStrip(ui.controls.strip.getContext("2d"), ui.strip, 2, Math.round(ui.state.t * (n - 1)));
    const { labels } = ui.codes;
    ui.controls.ends.textContent = `A is a ${labels[ui.state.a]}, B is a ${labels[ui.state.b]} (test digits)`;
  },
  paintMap(ui, ctx) {   // the path from A to B, clipped to the axes, and its two ends in their digits' colours
    const { geometry } = ui;
    const [a, b] = interpolation.ends(ui).map((z) => toPixel(geometry, z));
    const [left, top, right, bottom] = geometry.axes_box;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, right - left, bottom - top);
    ctx.clip();
    ctx.strokeStyle = "rgb(60, 60, 60)";
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.moveTo(...a);
    ctx.lineTo(...b);
    ctx.stroke();
    [[a, ui.state.a], [b, ui.state.b]].forEach(([[col, row], i]) => {
      ctx.fillStyle = geometry.digit_colors[ui.codes.labels[i]];
      ctx.fillRect(col - 3.5, row - 3.5, 7, 7);
    });
    ctx.restore();
  },
  pointer(ui, z1, z2) {   // the nearest point of the path from A to B sets t
    const [a, b] = interpolation.ends(ui);
    const d = [b[0] - a[0], b[1] - a[1]];
    const len2 = d[0] * d[0] + d[1] * d[1];
    ui.setT(len2 > 0 ? Math.min(1, Math.max(0, ((z1 - a[0]) * d[0] + (z2 - a[1]) * d[1]) / len2)) : 0);
  },
};

const KINDS = { latent, style, interpolation };

// ------------------------------------------------------------------------------------------------------ explorer
async function render({ model, el }) {
  const kind = KINDS[model.get("kind")];
  el.classList.add("aelib-explorer", `aelib-${model.get("kind")}-explorer`);
  // Keys pressed inside the explorer belong to it: JupyterLab's command mode would take the arrow keys otherwise.
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  el.addEventListener("keydown", (e) => e.stopPropagation());

  const geometry = model.get("map_geometry");
  const digit = h("canvas", { class: "aelib-digit", width: 28 * 6, height: 28 * 6 });
  const map = h("canvas", { class: "aelib-map", width: geometry.width, height: geometry.height,
    title: "click or drag to move the code" });
  const ui = {
    model, el, geometry, codes: readCodes(model), conditional: model.get("conditional"), controls: {},
    state: { z1: model.get("z1"), z2: model.get("z2"), digit: model.get("digit"), t: model.get("t"),
      a: model.get("index_a"), b: model.get("index_b") },
    digitCtx: digit.getContext("2d"), net: null, strip: null, background: null, afterDigit: null,
    save: (values) => save(model, values),
    prepare() { if (ui.net) kind.prepare(ui); },
    paint() {   // the digit, the kind's extras, the map and its marker: all in this frame
      if (!ui.net) return;
      kind.paint(ui, kind.code(ui));
      const ctx = map.getContext("2d");
      if (ui.background) ctx.drawImage(ui.background, 0, 0);
      kind.paintMap(ui, ctx);
      drawMarker(ctx, ...toPixel(geometry, kind.code(ui)));
    },
    move(z1, z2) {   // a user action: change the state, repaint now, tell the kernel
      Object.assign(ui.state, { z1, z2 });
      ui.controls.z1.set(z1);
      ui.controls.z2.set(z2);
      ui.paint();
      ui.save({ z1, z2 });
    },
    setT(t) {
      ui.state.t = t;
      ui.controls.t.set(t);
      ui.paint();
      ui.save({ t });
    },
  };
  const mapCtx = map.getContext("2d");
  mapCtx.fillStyle = "#fff";
  mapCtx.fillRect(0, 0, map.width, map.height);
  el.append(h("div", { class: "aelib-row" },
    h("div", { class: "aelib-column" }, h("div", { class: "aelib-caption", text: model.get("digit_caption") }), digit),
    map));

  kind.build(ui);
  if (ui.conditional) {
    ui.controls.digit = digitPicker(model.get("kind") === "interpolation" ? "decode as" : "digit y", ui.state.digit,
      (d) => {
        ui.state.digit = d;
        ui.prepare();
        ui.paint();
        ui.save({ digit: d });
      });
    el.append(ui.controls.digit.row);
  }
  ui.afterDigit?.();
  const note = model.get("note");
  if (note) el.append(h("div", { class: "aelib-note", text: `\u24d8 ${note}` }));

  // -- click or drag on the map
  function pointer(e) {
    const rect = map.getBoundingClientRect();
    kind.pointer(ui, ...toCode(geometry, (e.clientX - rect.left) * (map.width / rect.width),
      (e.clientY - rect.top) * (map.height / rect.height)));
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
    const { state, controls } = ui;
    const now = { z1: model.get("z1"), z2: model.get("z2"), digit: model.get("digit"), t: model.get("t"),
      a: model.get("index_a"), b: model.get("index_b") };
    if (Object.keys(now).every((k) => now[k] === state[k])) return;   // the kernel's echo of our own move
    const was = { a: state.a, b: state.b, digit: state.digit };
    Object.assign(state, now);
    for (const [name, value] of [["z1", state.z1], ["z2", state.z2], ["t", state.t], ["a", state.a], ["b", state.b],
      ["digit", state.digit]]) controls[name]?.set(value);
    if (was.a !== state.a || was.b !== state.b || was.digit !== state.digit) ui.prepare();
    ui.paint();
  };
  const events = ["change:z1", "change:z2", "change:digit", "change:t", "change:index_a", "change:index_b"];
  events.forEach((name) => model.on(name, onChange));

  const waiting = setTimeout(() => {
    el.append(h("div", { class: "aelib-note", text: "\u24d8 waiting for this model's weights: they are stored with "
      + "another explorer of the same model; run the notebook's cells to bring them back" }));
  }, 5000);
  publishDecoder(model);
  ui.net = await decoderOf(model);
  clearTimeout(waiting);
  ui.prepare();
  ui.paint();
  el.dataset.ready = "decoder";
  ui.background = await mapImage(model);
  ui.paint();
  el.dataset.ready = "true";
  return () => events.forEach((name) => model.off(name, onChange));
}

export default {
  initialize({ model }) {
    publishDecoder(model);
  },
  render,
};
