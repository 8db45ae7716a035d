// The decoder in the browser, shared by every explorer of a page: the first half of the explorers' ES module
// (aelib.explorers.kinds joins dom.js, decoder.js and explorer.js into one module: anywidget loads a single file).
//
// The decoder is the MLP of aelib.networks.MLP: Linear -> ReLU for each hidden layer, then a final Linear to the 784
// pixel logits, and a sigmoid. For conditional models the one-hot label joins the input of every Linear layer, so
// each layer's weight matrix has `classes` extra columns: the label adds one column of it (no multiplication).

const REGISTRY = "__aelib_explorer_weights_v1__";   // raw weights shared by the explorers of a page, by key

// ------------------------------------------------------------------------------------------ weights and decoding
function float32At(buffer, offset, n) {
  return new Float32Array(buffer.slice(offset, offset + 4 * n));   // a copy: aligned whatever the offset
}

/** The decoder's layers from its spec (see aelib.explorers.packing.pack_decoder) and the bytes of its weights (a DataView). */
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
// them with the first explorer only (aelib.explorers.stored.compact_widget_state). The page-wide registry holds the raw
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
