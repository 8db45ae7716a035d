// What every aelib explorer's module starts with (aelib.explorers.kinds joins it in front of each): building DOM
// elements, and telling the kernel of a change without ever waiting for it.

/** An element: h("div", { class: "x", text: "hello", "aria-label": "y" }, ...children). */
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

/** Set synced values and tell the kernel, if there is one (a saved page or the website has none). */
function save(model, values) {
  for (const [k, v] of Object.entries(values)) model.set(k, v);
  try {
    model.save_changes();
  } catch (err) {
    console.debug("aelib: no kernel to tell", err);
  }
}
