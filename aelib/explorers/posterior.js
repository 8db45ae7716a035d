// The posterior explorer, in the browser: pick a test digit, see its true posterior p(z|x) beside q(z|x).
//
// Python (aelib/explorers/posterior.py) computes each digit once and sends it in the synced trait `entries`: the image
// and the heat map of p(z|x) on its grid as small greyscale PNGs (base64; the heat map's 255 is the peak density and
// its row 0 the highest z2), the grid's extent, q(z|x) (mean and sd of each coordinate) and the numbers ELBO,
// IWAE_k, log p(x) (with its grid error) and the gap. Picking a digit only repaints, with no kernel round trip: it
// works in JupyterLab, while the kernel is busy, after it is shut down, and on a static page (aelib.explorers.page.
// boot_script). Python learns the pick through the synced trait `index`; setting `index` from Python to a digit not
// yet computed makes the kernel compute it and add it to `entries`.

const WIDTH = 336;
const HEIGHT = 318;
const PLOT = { left: 50, top: 8, size: 276 };   // the square plot box in the canvas, pixels
const HEAT_DARK = [8, 48, 107];                  // the heat map runs from white (density 0) to this blue (its peak)
const Q_COLOR = "rgb(214, 39, 40)";              // q(z|x)'s ellipses (tab10 red)
const INSET = { size: 72, span: 3.5 };           // overview of the prior, [-span, span]^2


/** The square view (x0, x1, y0, y1) around a grid's extent (left, right, bottom, top), as aelib.explorers.posterior.view. */
export function view([left, right, bottom, top]) {
  const half = Math.max(right - left, top - bottom) / 2;
  const c1 = (left + right) / 2;
  const c2 = (bottom + top) / 2;
  return [c1 - half, c1 + half, c2 - half, c2 + half];
}

function ticks(lo, hi, count = 5) {
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = [1, 2, 2.5, 5, 10].find((f) => f * p >= raw);
  const step = m * p;
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) + (m === 2.5 ? 1 : 0);
  const values = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k++) values.push(k * step);
  return values.map((v) => [v, v.toFixed(digits)]);
}

function png(base64) {
  return `data:image/png;base64,${base64}`;
}

/** The heat map of an entry as a canvas (one pixel per grid cell), coloured from white to HEAT_DARK. */
async function heatCanvas(entry) {
  const img = new Image();
  img.src = png(entry.heat);
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const d = image.data;
  for (let i = 0; i < d.length; i += 4) {
    const v = d[i] / 255;
    for (let c = 0; c < 3; c++) d[i + c] = Math.round(255 + (HEAT_DARK[c] - 255) * v);
    d[i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

function ellipse(ctx, x, y, rx, ry) {
  ctx.beginPath();
  ctx.ellipse(x, y, Math.max(rx, 0.5), Math.max(ry, 0.5), 0, 0, 2 * Math.PI);
  ctx.stroke();
}

/** Draw p(z|x) (the heat canvas), the prior's circles, q(z|x)'s 1- and 2-sd ellipses, axes and the overview. */
function paintPosterior(ctx, entry, heat) {
  const [x0, x1, y0, y1] = view(entry.extent);
  const { left, top, size } = PLOT;
  const sx = size / (x1 - x0);
  const sy = size / (y1 - y0);
  const px = (z1) => left + (z1 - x0) * sx;
  const py = (z2) => top + (y1 - z2) * sy;
  ctx.save();
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, WIDTH, HEIGHT);
  ctx.beginPath();
  ctx.rect(left, top, size, size);
  ctx.clip();
  const [l, r, b, t] = entry.extent;
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(heat, px(l), py(t), (r - l) * sx, (t - b) * sy);
  ctx.strokeStyle = "rgba(0, 0, 0, 0.35)";            // the prior N(0, I): 1 and 2 sd, faint, for scale
  ctx.lineWidth = 1;
  ctx.setLineDash([2, 3]);
  for (const radius of [1, 2]) ellipse(ctx, px(0), py(0), radius * sx, radius * sy);
  ctx.strokeStyle = Q_COLOR;                          // q(z|x): 1 sd solid, 2 sd dashed
  ctx.lineWidth = 1.6;
  const [m1, m2] = entry.q_mean;
  const [s1, s2] = entry.q_sd;
  [[1, []], [2, [5, 4]]].forEach(([k, dash]) => {
    ctx.setLineDash(dash);
    ellipse(ctx, px(m1), py(m2), k * s1 * sx, k * s2 * sy);
  });
  ctx.restore();

  ctx.strokeStyle = "#444";                           // axes
  ctx.lineWidth = 1;
  ctx.strokeRect(left + 0.5, top + 0.5, size - 1, size - 1);
  ctx.fillStyle = "#333";
  ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const [v, label] of ticks(x0, x1)) {
    const x = Math.round(px(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, top + size);
    ctx.lineTo(x, top + size + 4);
    ctx.stroke();
    ctx.fillText(label, x, top + size + 5);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const [v, label] of ticks(y0, y1)) {
    const y = Math.round(py(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(left - 4, y);
    ctx.lineTo(left, y);
    ctx.stroke();
    ctx.fillText(label, left - 6, y);
  }
  ctx.font = "italic 12px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.fillText("z\u2081", left + size / 2, HEIGHT - 8);
  ctx.save();
  ctx.translate(10, top + size / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText("z\u2082", 0, 0);
  ctx.restore();

  // overview: the prior's 1- and 2-sd circles and where this view lies among them
  const ox = left + size - INSET.size - 4;
  const oy = top + 4;
  const scale = INSET.size / (2 * INSET.span);
  const ix = (z1) => ox + (z1 + INSET.span) * scale;
  const iy = (z2) => oy + (INSET.span - z2) * scale;
  ctx.save();
  ctx.fillStyle = "rgba(255, 255, 255, 0.92)";
  ctx.fillRect(ox, oy, INSET.size, INSET.size);
  ctx.strokeStyle = "#999";
  ctx.strokeRect(ox + 0.5, oy + 0.5, INSET.size - 1, INSET.size - 1);
  ctx.beginPath();
  ctx.rect(ox, oy, INSET.size, INSET.size);
  ctx.clip();
  ctx.strokeStyle = "rgba(0, 0, 0, 0.45)";
  for (const radius of [1, 2]) ellipse(ctx, ix(0), iy(0), radius * scale, radius * scale);
  ctx.strokeStyle = "rgb(31, 119, 180)";
  ctx.lineWidth = 1.5;
  const w = Math.max(3, (x1 - x0) * scale);
  const hgt = Math.max(3, (y1 - y0) * scale);
  ctx.strokeRect(ix((x0 + x1) / 2) - w / 2, iy((y0 + y1) / 2) - hgt / 2, w, hgt);
  ctx.fillStyle = "#666";
  ctx.font = "9px system-ui, sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillText("prior", ox + 3, oy + 2);
  ctx.restore();
}

function fixed(v) {
  return (v < 0 ? "\u2212" : "") + Math.abs(v).toFixed(2);   // a real minus sign
}

function numbersTable(entry, ks) {
  const row = (name, value, title, css = "") => h("tr", { class: css, title },
    h("td", { text: name }), h("td", { text: value }));
  const rows = [row("ELBO", fixed(entry.elbo), "the evidence lower bound, E_q[log p(x|z)] - KL(q(z|x) || p(z))")];
  for (const k of ks) {
    rows.push(row(`IWAE_${k}`, fixed(entry.iwae[String(k)]),
      `the importance-weighted bound with ${k} samples of q(z|x): a random estimate`));
  }
  rows.push(row("log p(x)", fixed(entry.log_px), "the evidence, by quadrature on the grid"));
  rows.push(row("  grid error", `\u00b1${entry.error.toExponential(0)}`,
    "|L_2n - L_n|: log p(x) with half and all the cells"));
  rows.push(row("gap = KL(q \u2016 p(z|x))", fixed(entry.gap), "log p(x) - ELBO: what the encoder's q loses",
    "aelib-gap"));
  return h("table", { class: "aelib-numbers" }, ...rows);
}

async function render({ model, el }) {
  el.classList.add("aelib-explorer", "aelib-posterior-explorer");
  // Keys pressed inside the widget belong to it: JupyterLab's command mode would take the arrow keys otherwise.
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  el.addEventListener("keydown", (e) => e.stopPropagation());

  const ks = model.get("ks");
  const settings = model.get("settings");
  const state = { index: model.get("index") };
  const heats = new Map();       // index -> Promise of its heat canvas
  let entries = new Map();       // index -> entry
  let order = [];                // indices in picker order: by class, then index

  const picker = h("div", { class: "aelib-digit-picker", role: "radiogroup", "aria-label": "test digit" });
  const caption = h("div", { class: "aelib-caption" });
  const digit = h("img", { class: "aelib-digit", alt: "the test digit" });
  const canvas = h("canvas", { class: "aelib-heat", width: WIDTH, height: HEIGHT });
  const ctx = canvas.getContext("2d");
  const numbers = h("div", { class: "aelib-column" });
  const key = h("div", { class: "aelib-key", text: "blue: the true posterior p(z|x) (darkest: its peak); red: "
    + "the encoder's q(z|x), 1 sd solid and 2 sd dashed; dotted: the prior N(0, I), 1 and 2 sd. Nats per image. "
    + "ELBO \u2264 IWAE_k \u2264 log p(x) holds on average: IWAE_k is a random estimate, which can land on either "
    + "side of another k's, or of log p(x), most when q misses p(z|x)." });
  const note = h("div", { class: "aelib-caption" });
  el.append(h("div", { class: "aelib-row" }, h("span", { class: "aelib-name", text: "test digit" }), picker),
    h("div", { class: "aelib-row" }, h("div", { class: "aelib-column" }, caption, digit), canvas,
      h("div", { class: "aelib-column" }, numbers, key)), note);
  note.textContent = `p(z|x) on a ${settings.cells} \u00d7 ${settings.cells} grid; log p(x) by quadrature on it, `
    + `\u00b1 its grid error; ELBO from ${settings.elbo_samples} draws of z. ${model.get("n_test")} test digits: `
    + "with a kernel, explorer.index = i shows any of them (computed once).";

  const heatOf = (entry) => {
    if (!heats.has(entry.index)) heats.set(entry.index, heatCanvas(entry));
    return heats.get(entry.index);
  };

  function setActive() {
    for (const b of picker.children) {
      const on = Number(b.dataset.index) === state.index;
      b.classList.toggle("aelib-active", on);
      b.setAttribute("aria-checked", String(on));
      b.tabIndex = on ? 0 : -1;
    }
    if (!order.includes(state.index) && picker.firstChild) picker.firstChild.tabIndex = 0;
  }

  async function show() {
    const entry = entries.get(state.index);
    setActive();
    if (!entry) {
      caption.textContent = `test digit #${state.index}: being computed by the kernel`;
      return;
    }
    caption.textContent = `test digit #${entry.index} (a ${entry.label})`;
    digit.src = png(entry.digit);
    numbers.replaceChildren(numbersTable(entry, ks));
    const heat = await heatOf(entry);
    if (state.index === entry.index) paintPosterior(ctx, entry, heat);   // not a later pick's
  }

  function pick(i, focus = false) {
    state.index = i;
    const shown = show();
    if (focus) picker.querySelector(`[data-index="${i}"]`)?.focus();
    save(model, { index: i });
    return shown;
  }

  function rebuild() {
    entries = new Map(model.get("entries").map((e) => [e.index, e]));
    order = [...entries.values()].sort((a, b) => a.label - b.label || a.index - b.index).map((e) => e.index);
    picker.replaceChildren(...order.map((i) => {
      const e = entries.get(i);
      const b = h("button", { type: "button", role: "radio", "data-index": String(i),
        "aria-label": `test digit ${i}, a ${e.label}`, title: `test digit #${i} (a ${e.label})` },
      h("img", { src: png(e.digit), alt: "" }), h("span", { text: String(e.label) }));
      b.addEventListener("click", () => pick(i));
      b.addEventListener("keydown", (ev) => {   // arrow keys, Home and End move between the digits (a radio group)
        const at = order.indexOf(i);
        const next = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0,
          End: order.length - 1 }[ev.key];
        if (next === undefined) return;
        ev.preventDefault();
        pick(order[(next + order.length) % order.length], true);
      });
      return b;
    }));
    entries.forEach((e) => heatOf(e));   // decode every heat map now: a pick then paints in the same frame
  }

  // -- Python added a digit or picked one: follow it
  const onEntries = () => { rebuild(); show(); };
  const onIndex = () => {
    if (model.get("index") === state.index) return;   // the kernel's echo of our own pick
    state.index = model.get("index");
    show();
  };
  model.on("change:entries", onEntries);
  model.on("change:index", onIndex);

  rebuild();
  await Promise.all([...heats.values()]);
  await show();
  el.dataset.ready = "true";
  return () => {
    model.off("change:entries", onEntries);
    model.off("change:index", onIndex);
  };
}

export default { render };
