"""One self-contained page for aelib's widgets outside Jupyter (``save_html``, the course website): their ES
modules and state inlined, booted with a small stand-in for the widget model that anywidget gives them."""
from __future__ import annotations

import json

from ..errors import AelibError
from .base import in_page
from .kinds import BOOTABLE, LATENT_ID, current_id


def _script_json(value) -> str:
    """JSON that is safe inside a <script> element."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return json.dumps(text).replace("</", "<\\/")


def boot_script(states: dict[str, dict]) -> str:
    """A ``<script type="module">`` that runs aelib's widgets without Jupyter, for each ``{element id: state}``.

    ``state`` is what :meth:`Explorer.page_state` (or :func:`page_state_from_stored`) gives; its ``_anywidget_id``
    names the ES module that draws it (:data:`BOOTABLE`; explorer.js if it names none). Each module is inlined
    once and imported from a blob URL; a minimal stand-in for the widget model anywidget gives it in Jupyter
    (get/set/on/off; ``save_changes`` is a no-op) feeds it the state. Nothing is fetched; nothing needs a kernel.
    The elements must exist before the script runs (module scripts run after the document is parsed).
    """
    given = {state.get("_anywidget_id", LATENT_ID) for state in states.values()}
    unknown = sorted(name for name in given if current_id(name) is None)
    if unknown:
        raise AelibError(f"cannot boot widgets of {unknown}: a page runs only {sorted(BOOTABLE)}")
    states = {key: {**state, "_anywidget_id": current_id(state.get("_anywidget_id", LATENT_ID))}
              for key, state in states.items()}
    names = sorted({state["_anywidget_id"] for state in states.values()})
    return BOOT.format(sources=_script_json({name: BOOTABLE[name] for name in names}),
                       states=_script_json(states), default=json.dumps(LATENT_ID))


def page_state_from_stored(entry: dict) -> dict:
    """:meth:`Explorer.page_state` of an explorer from a notebook's stored widget state (nbclient's format)."""
    state = {k: v for k, v in entry["state"].items()
             if in_page(k)}
    for buffer in entry.get("buffers", []):
        state[buffer["path"][0]] = {"base64": buffer["data"]}
    return state


BOOT = """<script type="module">
// Made by aelib (aelib.explorers.page.boot_script): the widgets' ES modules and state, with a stand-in for the widget
// model that anywidget gives them in Jupyter. Nothing is fetched; nothing needs a kernel.
const states = JSON.parse({states});
const sources = JSON.parse({sources});   // ES module source by widget class (_anywidget_id)
const modules = {{}};
for (const [name, source] of Object.entries(sources)) {{
  const url = URL.createObjectURL(new Blob([source], {{ type: "text/javascript" }}));
  modules[name] = (await import(url)).default;
  URL.revokeObjectURL(url);
}}
const widgetOf = (id) => modules[states[id]._anywidget_id || {default}];
const models = Object.entries(states).map(([id, state]) => {{
  for (const [key, value] of Object.entries(state)) {{
    if (value && typeof value === "object" && "base64" in value) {{
      const bytes = Uint8Array.from(atob(value.base64), (c) => c.charCodeAt(0));
      state[key] = new DataView(bytes.buffer);
    }}
  }}
  const listeners = new Map();
  const model = {{
    get: (key) => state[key],
    set: (key, value) => {{ state[key] = value; }},
    on: (name, callback) => {{ listeners.set(name, [...(listeners.get(name) || []), callback]); }},
    off: (name, callback) => {{ listeners.set(name, (listeners.get(name) || []).filter((c) => c !== callback)); }},
    save_changes: () => {{}},
    send: () => {{}},
  }};
  return [id, model];
}});
for (const [id, model] of models) widgetOf(id).initialize?.({{ model }});   // every model offers its weights first
await Promise.all(models.map(([id, model]) => widgetOf(id).render({{ model, el: document.getElementById(id) }})));
</script>"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ margin: 16px; font-family: system-ui, sans-serif; }} h1 {{ font-size: 16px; font-weight: 600; }}
{css}</style>
</head>
<body>
<h1>{heading}</h1>
<div id="explorer"></div>
<noscript>This explorer needs JavaScript.</noscript>
{script}
</body>
</html>
"""
