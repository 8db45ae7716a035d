"""The posterior explorer (aelib.explorers.posterior) without a browser: its numbers are aelib.course.posterior's, each digit is
computed once, errors are clear, it has a picture, and its stored state boots like the explorers'.

tests/test_browser.py checks that picking a digit repaints the posterior on a saved page with no kernel, and
tests/test_site.py that it does so on the course website.
"""
import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import aelib
from aelib import AelibError, explorers
from aelib.course import posterior
from aelib.explorers import kinds, packing, page, stored
from aelib.explorers import posterior as post_explorer

SMALL = {"hidden_dims": (128,)}
PICKED = [0, 1]


@pytest.fixture(scope="module")
def vae(offline_data):
    torch.manual_seed(0)
    model = aelib.build("vae", latent_dim=2, **SMALL)
    aelib.fit(model, offline_data, epochs=1, progress=False)
    return model


@pytest.fixture(scope="module")
def explorer(vae, offline_data):
    return explorers.posterior_explorer(vae, offline_data, indices=PICKED)


def json_after(text: str, marker: str):
    """The value of the JSON text in the JSON string literal that follows ``marker`` (as boot_script writes)."""
    literal, _ = json.JSONDecoder().raw_decode(text[text.index(marker) + len(marker):])
    return json.loads(literal)


def test_the_numbers_shown_are_those_of_aelib_posterior(explorer, vae, offline_data):
    """ELBO and IWAE_k as posterior.bound_chain computes them (same seed, same draws); log p(x), its error, the
    heat map and q(z|x) as posterior.true_posterior with the widget's grid; the gap is log p(x) - ELBO."""
    for i in PICKED:
        explorer.index = i
        x = offline_data.test_x[i:i + 1]
        shown = explorer.numbers()
        chain = posterior.bound_chain(vae, x, ks=post_explorer.KS, elbo_samples=post_explorer.ELBO_SAMPLES,
                                      n=post_explorer.GRID_N, seed=0)
        assert shown["elbo"] == pytest.approx(float(chain.elbo[0]), abs=1e-9)
        assert shown["iwae"] == {k: pytest.approx(float(v[0]), abs=1e-9) for k, v in chain.iwae.items()}
        post = posterior.true_posterior(vae, x, n=post_explorer.GRID_N, search=post_explorer.SEARCH)
        assert shown["log_px"] == pytest.approx(float(post.log_px[0]), abs=1e-9)
        assert shown["error"] == pytest.approx(float(post.error[0]), abs=1e-12)
        # the default grid of bound_chain agrees within the stated accuracy (and a small margin)
        assert abs(shown["log_px"] - float(chain.log_px[0])) <= max(10 * shown["error"], 1e-2)
        assert shown["gap"] == pytest.approx(shown["log_px"] - shown["elbo"], abs=1e-9)
        assert shown["elbo"] <= shown["log_px"]
        entry = explorer.entry
        assert entry["label"] == int(offline_data.test_y[i]) and entry["index"] == i
        assert entry["extent"] == pytest.approx(list(post.extent(0)))
        density = post.density[0].numpy()
        np.testing.assert_array_equal(explorer.heat(), packing.to_bytes(np.flipud(density) / density.max()))
        mu, logvar = vae.posterior(x)
        np.testing.assert_allclose(entry["q_mean"], mu[0].detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(entry["q_sd"], torch.exp(0.5 * logvar[0]).detach().numpy(), rtol=1e-5)


def test_the_default_set_is_the_first_test_digit_of_each_class(vae, offline_data):
    labels = offline_data.test_y.numpy()
    expected = [int(np.flatnonzero(labels == d)[0]) for d in range(10)]
    assert post_explorer.first_of_each_class(labels) == expected
    assert post_explorer.first_of_each_class(labels, 2)[:2] == [int(i) for i in np.flatnonzero(labels == 0)[:2]]


def test_a_digit_is_computed_once(vae, offline_data, monkeypatch):
    calls = []
    original = posterior.true_posterior

    def counting(model, x, *args, **kwargs):
        calls.append(x.clone())
        return original(model, x, *args, **kwargs)

    monkeypatch.setattr(post_explorer.posterior, "true_posterior", counting)
    explorer = explorers.posterior_explorer(vae, offline_data, indices=[3, 4])
    assert len(calls) == 2 and explorer.computed == [3, 4]
    sent = len(explorer.entries)
    explorer.index = 7                                    # not computed yet: computed now, and sent
    assert len(calls) == 3 and torch.equal(calls[-1], offline_data.test_x[7:8])
    assert [e["index"] for e in explorer.entries] == [3, 4, 7] and len(explorer.entries) == sent + 1
    explorer.index = 3
    explorer.index = 7                                    # both cached: nothing computed, nothing added
    explorer.snapshot()
    assert len(calls) == 3 and explorer.computed == [3, 4, 7] and len(explorer.entries) == 3


def test_a_bad_index_or_model_is_a_clear_error(explorer, vae, offline_data):
    n = len(offline_data.test_x)
    for bad in (n, -1):
        with pytest.raises(AelibError, match=rf"index must be the index of a test digit, 0..{n - 1}"):
            explorer.index = bad
    assert explorer.index in PICKED and len(explorer.entries) == len(PICKED)   # nothing changed
    with pytest.raises(AelibError, match="index of a test digit"):
        explorers.posterior_explorer(vae, offline_data, indices=[0, n + 5])
    with pytest.raises(AelibError, match="at least one test digit"):
        explorers.posterior_explorer(vae, offline_data, indices=[])
    with pytest.raises(AelibError, match="needs a 'vae'"):
        explorers.posterior_explorer(aelib.build("cvae", **SMALL), offline_data, indices=[0])
    with pytest.raises(AelibError, match="latent_dim=3"):
        explorers.posterior_explorer(aelib.build("vae", latent_dim=3, **SMALL), offline_data, indices=[0])


def test_what_is_sent_is_small_json(explorer):
    state = explorer.page_state()
    json.dumps(state)                                     # plain JSON: no buffers to store or boot
    assert state["_anywidget_id"] == "aelib.explorers.posterior.PosteriorExplorer"
    for entry in explorer.entries:
        size = len(json.dumps(entry, separators=(",", ":")))
        assert size < 8000, f"digit {entry['index']}: {size} bytes"
        heat = np.asarray(Image.open(io.BytesIO(base64.b64decode(entry["heat"]))))
        cells = 2 * post_explorer.GRID_N
        assert heat.dtype == np.uint8 and heat.shape == (cells, cells) and heat.max() == 255


def test_a_viewer_without_widgets_gets_a_picture(explorer):
    explorer.index = PICKED[0]
    bundle, _ = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(bundle["image/png"]))).convert("RGB"))
    np.testing.assert_array_equal(picture, explorer.snapshot())
    assert bundle["text/plain"].startswith("VAE posterior explorer") and "entries" not in bundle["text/plain"]
    explorer.index = PICKED[1]
    assert not np.array_equal(explorer.snapshot(), picture), "the picture does not follow the digit"


def test_stored_state_is_compacted_and_boots_like_a_page(explorer, vae, offline_data):
    latent = explorers.latent_explorer(vae, offline_data, max_points=300)
    entries = {"p": stored.stored_state(explorer), "e": stored.stored_state(latent)}
    entries["p"]["state"]["_esm"] = "// an older posterior_explorer.js"
    metadata = {"widgets": {stored.WIDGET_STATE: {"state": entries}}}
    assert stored.compact_widget_state(metadata) == {"explorers": 2, "shared": 0}
    assert entries["p"]["state"]["_esm"] == post_explorer.ESM
    assert entries["p"]["state"]["_css"] == kinds.STYLES[kinds.POSTERIOR_ID]
    assert entries["e"]["state"]["_css"] == kinds.STYLES[kinds.LATENT_ID]   # the explorers' styles (stored in notebooks) unchanged
    assert entries["p"]["state"]["entries"] == explorer.entries                   # the digits are kept as they are
    assert kinds.bootable(entries["p"]) == "aelib.explorers.posterior.PosteriorExplorer"
    assert page.page_state_from_stored(entries["p"]) == explorer.page_state()
    script = page.boot_script({"a": page.page_state_from_stored(entries["p"]),
                                  "b": page.page_state_from_stored(entries["e"]), "c": explorer.page_state()})
    sources = json_after(script, "const sources = JSON.parse(")
    assert sources == {kinds.LATENT_ID: kinds.BOOTABLE[kinds.LATENT_ID],
                       "aelib.explorers.posterior.PosteriorExplorer": post_explorer.ESM}
    with pytest.raises(AelibError, match="cannot boot"):
        page.boot_script({"a": {"_anywidget_id": "somewhere.Else"}})


def test_save_html_writes_one_page_that_needs_nothing_else(explorer, tmp_path):
    path = explorer.save_html(tmp_path / "posterior.html")
    text = path.read_text()
    for forbidden in ("http://", "https://", "src=", "<link"):
        assert forbidden not in text, f"the page refers to something outside itself: {forbidden}"
    state = json_after(text, "const states = JSON.parse(")["explorer"]
    assert state["entries"] == explorer.entries and state["index"] == explorer.index
    with pytest.raises(AelibError, match="ending in .html"):
        explorer.save_html(tmp_path / "posterior.png")
