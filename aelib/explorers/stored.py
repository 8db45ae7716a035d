"""The explorers as a notebook stores them (nbclient's widget state): refreshed and shrunk for committing."""
from __future__ import annotations

import base64
import json

from .kinds import BOOTABLE, LATENT_ID, STYLES, bootable
from .packing import requantize

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def stored_state(widget) -> dict:
    """A widget's entry as Jupyter stores it in a notebook's metadata (JSON state, bytes as base64 buffers): what
    :func:`compact_widget_state` and :func:`page_state_from_stored` read."""
    state, buffers = {}, []
    for name, value in widget.get_state().items():
        if isinstance(value, (bytes, memoryview)):
            buffers.append({"path": [name], "encoding": "base64", "data": base64.b64encode(bytes(value)).decode()})
        else:
            state[name] = value
    return {"model_name": "AnyModel", "model_module": "anywidget", "model_module_version": "*",
            "state": json.loads(json.dumps(state)), "buffers": buffers}


def compact_widget_state(metadata: dict, dtype: str = "int8") -> dict:
    """Shrink the explorers in a notebook's stored widget state (``nb.metadata``), in place; return counts.

    nbclient stores each widget's state with the notebook so that a static rendering with widget support shows live
    explorers. Stored as sent (float32), a decoder costs ~2.9 MB of base64 per explorer. Here the weights are
    re-packed with ``dtype`` (int8: ~0.75 MB; see :func:`pack_decoder` for its accuracy), and only the first
    explorer of each decoder keeps them: the others name the same ``key`` and explorer.js shares the decoder. The
    stored module, styles and id are replaced by the current ones, so a stored notebook runs the explorer.js it ships with;
    so are those of aelib's other widgets (:data:`BOOTABLE`; counted as explorers), which carry no weights.
    Idempotent.
    """
    state = metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    seen, counts = set(), {"explorers": 0, "shared": 0}
    for entry in state.values():
        name = bootable(entry)
        if name is None:
            continue
        counts["explorers"] += 1
        entry["state"].update(_esm=BOOTABLE[name], _css=STYLES[name], _anywidget_id=name)
        if name != LATENT_ID:
            continue
        spec = entry["state"]["decoder_spec"]
        buffers = [b for b in entry.get("buffers", []) if b.get("path") != ["decoder_weights"]]
        weights = [b for b in entry.get("buffers", []) if b.get("path") == ["decoder_weights"]]
        if weights and spec["key"] not in seen:
            data = base64.b64decode(weights[0]["data"])
            if spec["dtype"] == "float32":
                spec, data = requantize(spec, data, dtype)
            buffers.append({"path": ["decoder_weights"], "encoding": "base64",
                            "data": base64.b64encode(data).decode("ascii")})
            seen.add(spec["key"])
        else:   # shares the copy stored with another explorer (maybe stripped by an earlier call)
            counts["shared"] += 1
            spec = {**spec, "dtype": dtype}
        entry["state"]["decoder_spec"] = spec
        entry["buffers"] = buffers
    return counts
