"""The decoder as bytes for the browser, and the same decoding in NumPy and torch to check it against.

:func:`pack_decoder` sends each Linear layer's weights once (float32, or int8 with one scale per row);
:func:`decode_packed` decodes those bytes exactly as ``explorer.js`` does; :func:`decode_image` decodes with torch.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..errors import AelibError

WEIGHT_DTYPES = ("float32", "int8")   # how decoder weights travel: exact, or 4x smaller (stored notebooks)


def decode_image(model, z, y=None) -> np.ndarray:
    """Decode one code into a uint8 image (28, 28): 0 = blank paper, 255 = full ink (pixel probability 1).

    ``z`` may be shorter than ``model.latent_dim``: the missing dimensions are 0. ``y`` is the digit for conditional
    models. Runs in eval mode without gradients (``model.decode`` sees to that).
    """
    return decode_images(model, np.asarray(z, dtype=np.float32).reshape(1, -1), y)[0]


def decode_images(model, codes, y=None) -> np.ndarray:
    """Decode a batch of codes (N, k <= latent_dim) into uint8 images (N, 28, 28); ``y``: one digit or N digits."""
    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 2 or codes.shape[1] > model.latent_dim:
        raise AelibError(f"codes must have shape (N, k) with k <= latent_dim={model.latent_dim}, got {codes.shape}")
    z = torch.zeros(len(codes), model.latent_dim)
    z[:, :codes.shape[1]] = torch.from_numpy(codes)
    if model.conditional:
        if y is None:
            raise AelibError(f"{model.name!r} is conditional: pass the digit y (0..9) to decode")
        y = torch.as_tensor(y).long()
    else:
        y = None
    return to_bytes(model.decode(z, y).cpu().reshape(-1, 28, 28).numpy())


def to_bytes(p: np.ndarray) -> np.ndarray:
    """Pixel probabilities as uint8 ink levels, rounded to nearest (explorer.js rounds the same way)."""
    return np.clip(np.floor(np.asarray(p, dtype=np.float64) * 255 + 0.5), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------- the decoder, as bytes
def pack_decoder(model, dtype: str = "float32") -> tuple[dict, bytes]:
    """The decoder's weights as one bytes object and a spec that tells explorer.js how to read them.

    For each Linear layer of ``model.decoder.net`` in order: its weight matrix, row-major (rows = outputs, columns
    = inputs then the ``classes`` label columns), then its bias. ``dtype="float32"`` is exact. ``"int8"`` stores each
    weight row as int8 times one float32 scale per row (max |w| / 127; the int8 block padded to 4 bytes), biases in
    float32: about 4x smaller, for the widget state stored in committed notebooks. The spec's ``key`` names the
    float32 weights, so explorers of the same model on one page share one decoder.
    """
    if dtype not in WEIGHT_DTYPES:
        raise AelibError(f"dtype must be one of {WEIGHT_DTYPES}, got {dtype!r}")
    linears = [m for m in model.decoder.net if isinstance(m, torch.nn.Linear)]
    classes = model.decoder.net.n_classes
    layers, arrays = [], []
    for layer in linears:
        w = layer.weight.detach().cpu().numpy().astype(np.float32)
        b = layer.bias.detach().cpu().numpy().astype(np.float32)
        layers.append({"rows": w.shape[0], "cols": w.shape[1] - classes, "classes": classes})
        arrays.append((w, b))
    exact = b"".join(w.tobytes() + b.tobytes() for w, b in arrays)
    spec = {"latent_dim": model.latent_dim, "classes": classes, "layers": layers, "dtype": "float32",
            "key": hashlib.sha256(exact).hexdigest()[:16]}
    return (spec, exact) if dtype == "float32" else requantize(spec, exact, dtype)


def _layer_arrays(spec: dict, data: bytes) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(weights (rows, cols + classes), bias (rows,))] of a packed decoder, as float32 arrays."""
    if spec.get("dtype") not in WEIGHT_DTYPES:
        raise AelibError(f"unknown weight dtype {spec.get('dtype')!r}; expected one of {WEIGHT_DTYPES}")
    expected = packed_size(spec)
    if expected != len(data):
        raise AelibError(f"the spec describes {expected} bytes of weights, got {len(data)}")
    out, offset = [], 0
    for layer in spec["layers"]:
        rows, stride = layer["rows"], layer["cols"] + layer["classes"]
        n = rows * stride
        if spec["dtype"] == "float32":
            w = np.frombuffer(data, np.float32, n, offset).reshape(rows, stride)
            offset += 4 * n
        elif spec["dtype"] == "int8":
            q = np.frombuffer(data, np.int8, n, offset).reshape(rows, stride)
            offset += 4 * -(-n // 4)
            scale = np.frombuffer(data, np.float32, rows, offset)
            offset += 4 * rows
            w = q.astype(np.float32) * scale[:, None]
        out.append((w, np.frombuffer(data, np.float32, rows, offset)))
        offset += 4 * rows
    return out


def packed_size(spec: dict) -> int:
    """Bytes of weights that ``spec`` describes."""
    total = 0
    for layer in spec["layers"]:
        n = layer["rows"] * (layer["cols"] + layer["classes"])
        total += 4 * n if spec["dtype"] == "float32" else 4 * -(-n // 4) + 4 * layer["rows"]
        total += 4 * layer["rows"]
    return total


def requantize(spec: dict, data: bytes, dtype: str) -> tuple[dict, bytes]:
    """The same decoder packed with another ``dtype`` (from float32; see :func:`pack_decoder`)."""
    if spec["dtype"] != "float32" and dtype != spec["dtype"]:
        raise AelibError(f"these weights are already {spec['dtype']}, and {dtype} cannot be made from them: build the "
                         f"explorer with dtype='float32' (the default), then save it with dtype={dtype!r}")
    if dtype == spec["dtype"]:
        return spec, data
    if dtype not in WEIGHT_DTYPES:
        raise AelibError(f"dtype must be one of {WEIGHT_DTYPES}, got {dtype!r}")
    parts = []
    for w, b in _layer_arrays(spec, data):
        scale = np.maximum(np.abs(w).max(axis=1), 1e-30).astype(np.float32) / 127
        q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8).tobytes()
        parts += [q, b"\0" * (-len(q) % 4), scale.tobytes(), b.tobytes()]
    return {**spec, "dtype": dtype}, b"".join(parts)


def decode_packed(spec: dict, data: bytes, codes, y=None) -> np.ndarray:
    """Pixel probabilities (N, 784) of codes (N, k <= latent_dim) from packed weights: what explorer.js computes.

    NumPy in float64, the arithmetic of explorer.js (JavaScript numbers are doubles), so the tests can check the
    packing without a browser.
    """
    codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
    h = np.zeros((len(codes), spec["latent_dim"]))
    h[:, :codes.shape[1]] = codes
    label = None
    if spec["classes"]:
        if y is None:
            raise AelibError("this decoder is conditional: pass the digit y (0..9)")
        label = np.eye(spec["classes"])[np.broadcast_to(np.asarray(y, dtype=np.int64), (len(codes),))]
    layers = _layer_arrays(spec, data)
    for i, (w, b) in enumerate(layers):
        inputs = h if label is None else np.concatenate([h, label], axis=1)
        h = inputs @ w.astype(np.float64).T + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return 1 / (1 + np.exp(-h))
