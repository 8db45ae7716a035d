"""The latent-space explorers without a browser: weight packing, pixel mapping, ranges, controls and pictures.

The per-event work happens in the browser (explorer.js); tests/test_browser.py checks it there, against torch. Here:
everything Python sends it (packed weights, map geometry, codes) and the Python side of the API.
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
from aelib.course.plotting import DIGIT_COLORS
from aelib.explorers import kinds, latent, packing, page, raster, stored

SMALL = {"hidden_dims": (128,)}


def trained(name, data, **config):
    """A small model after one epoch: enough for the decoded digit to depend visibly on z."""
    torch.manual_seed(0)
    model = aelib.build(name, **{**SMALL, **config})
    aelib.fit(model, data, epochs=1, progress=False)
    return model


@pytest.fixture(scope="module")
def vae(offline_data):
    return trained("vae", offline_data)


@pytest.fixture(scope="module")
def cvae(offline_data):
    return trained("cvae", offline_data)


def png_pixels(value) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(bytes(value))).convert("RGB"))


def marker_center(lmap, rgb, base=None) -> np.ndarray:
    """(column, row) centre of the pixels where ``rgb`` differs from ``base`` (default: the map's background)."""
    rows, cols = np.nonzero((rgb != (lmap.background if base is None else base)).any(axis=2))
    assert len(rows), "no marker drawn"
    return np.array([(cols.min() + cols.max()) / 2, (rows.min() + rows.max()) / 2])


# ------------------------------------------------------------------------------------------ pixel mapping
@pytest.fixture(scope="module")
def square_map():
    codes = np.random.default_rng(0).normal(size=(300, 2))
    return raster.LatentMap(codes, np.arange(300) % 10, xlim=(-2.0, 3.0), ylim=(-1.0, 4.0))


def test_to_pixel_agrees_with_matplotlib(square_map):
    transform, height = square_map.transform
    z = np.random.default_rng(1).uniform([-2, -1], [3, 4], size=(50, 2))
    display = transform.transform(z)
    expected = np.stack([display[:, 0], height - display[:, 1]], axis=1)
    np.testing.assert_allclose(square_map.to_pixel(z), expected, atol=1e-6)


def test_corners_map_to_the_axes_corners(square_map):
    left, top, right, bottom = square_map.axes_box
    np.testing.assert_allclose(square_map.to_pixel([-2.0, 4.0]), [left, top], atol=1.0)      # top left
    np.testing.assert_allclose(square_map.to_pixel([3.0, -1.0]), [right, bottom], atol=1.0)  # bottom right
    assert square_map.background.shape == (raster.MAP_SIZE[1], raster.MAP_SIZE[0], 3)


def test_a_drawn_point_is_where_to_pixel_says():
    """Draw one big dot with matplotlib; the centre of its coloured pixels is to_pixel of its code."""
    code = np.array([[0.3, -0.7]])
    lmap = raster.LatentMap(code, [3], xlim=(-1, 1), ylim=(-1, 1), point_size=150)
    red = np.array(DIGIT_COLORS(3)[:3]) * 255
    blended = 0.7 * red + 0.3 * 255                       # alpha 0.7 over white paper
    close = np.abs(lmap.background.astype(float) - blended).max(axis=2) < 30
    rows, cols = np.nonzero(close[:, : lmap.axes_box[2]])  # inside the axes (not the legend's swatch)
    centre = np.array([cols.mean() + 0.5, rows.mean() + 0.5])   # pixel (c, r) covers [c, c + 1)
    np.testing.assert_allclose(centre, lmap.to_pixel(code[0]), atol=1.0)


def test_marker_is_drawn_at_the_code_and_nowhere_else(square_map):
    for z in ([0.0, 0.0], [2.5, -0.5], [-1.0, 3.0]):
        rgb = square_map.render(z)
        np.testing.assert_allclose(marker_center(square_map, rgb), square_map.to_pixel(z), atol=1.0)
        rows, cols = np.nonzero((rgb != square_map.background).any(axis=2))
        assert cols.max() - cols.min() <= 16 and rows.max() - rows.min() <= 16
    assert np.array_equal(square_map.render(None), square_map.background)


def test_the_geometry_sent_to_the_browser_is_the_pixel_mapping(square_map):
    """explorer.js computes col = a0 + (z1 - x0) * a1, row = a2 + (z2 - y0) * a3 from map_geometry: the same map."""
    g = square_map.geometry()
    json.dumps(g)   # plain JSON
    a0, a1, a2, a3 = g["affine"]
    z = np.random.default_rng(2).uniform([-2, -1], [3, 4], size=(20, 2))
    js = np.stack([a0 + (z[:, 0] - g["xlim"][0]) * a1, a2 + (z[:, 1] - g["ylim"][0]) * a3], axis=1)
    np.testing.assert_allclose(js, square_map.to_pixel(z), atol=1e-9)
    assert (g["width"], g["height"]) == raster.MAP_SIZE and g["axes_box"] == list(square_map.axes_box)
    assert len(g["digit_colors"]) == 10


# ------------------------------------------------------------------------------------------ packed weights
@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_packed_weights_decode_like_the_model(name, vae, cvae):
    """The reference of explorer.js's arithmetic (decode_packed, float64) on the packed float32 weights reproduces
    model.decode; int8 weights are 4x smaller and close."""
    model = {"vae": vae, "cvae": cvae}[name]
    spec, data = packing.pack_decoder(model)
    n_params = sum(p.numel() for p in model.decoder.parameters())
    assert len(data) == 4 * n_params and spec["dtype"] == "float32"
    assert [layer["rows"] for layer in spec["layers"]] == [*model.config.hidden_dims, 784]
    json.dumps(spec)
    z = np.random.default_rng(0).normal(scale=1.5, size=(50, 2))
    for y in (range(10) if model.conditional else [None]):
        labels = None if y is None else torch.full((50,), y)
        expected = model.decode(torch.tensor(z, dtype=torch.float32), labels).reshape(50, -1).numpy()
        assert np.abs(packing.decode_packed(spec, data, z, y) - expected).max() <= 1e-5
        small_spec, small = packing.requantize(spec, data, "int8")
        assert len(small) < 0.3 * len(data) and small_spec["key"] == spec["key"]
        assert np.abs(packing.decode_packed(small_spec, small, z, y) - expected).max() <= 0.02


def test_a_wrong_spec_or_dtype_is_a_clear_error(vae):
    spec, data = packing.pack_decoder(vae)
    with pytest.raises(AelibError, match="dtype must be one of"):
        packing.pack_decoder(vae, "float16")
    with pytest.raises(AelibError, match="describes .* bytes"):
        packing.decode_packed(spec, data[:-4], [[0.0, 0.0]])
    with pytest.raises(AelibError, match="conditional"):
        packing.decode_packed(*packing.pack_decoder(aelib.build("cvae", **SMALL)), [[0.0, 0.0]])


def test_the_weights_key_names_the_weights(vae, cvae):
    assert packing.pack_decoder(vae)[0]["key"] == packing.pack_decoder(vae)[0]["key"]
    assert packing.pack_decoder(vae)[0]["key"] != packing.pack_decoder(cvae)[0]["key"]


# ------------------------------------------------------------------------------------------ decoding, ranges
def test_decode_image_is_the_decoder_output_in_bytes(vae):
    z = np.array([0.5, -1.0])
    was_training = vae.training
    expected = vae.decode(torch.tensor(z[None], dtype=torch.float32)).reshape(28, 28).numpy()
    image = packing.decode_image(vae, z)
    assert image.dtype == np.uint8 and image.shape == (28, 28)
    assert np.abs(image.astype(float) - 255 * expected).max() <= 0.5 + 1e-3
    assert vae.training == was_training   # decoding ran in eval mode and restored the flag


def test_decode_image_needs_the_digit_for_a_conditional_model(cvae):
    with pytest.raises(AelibError, match="conditional"):
        packing.decode_image(cvae, [0.0, 0.0])


def test_slider_ranges_cover_the_codes_but_ignore_one_outlier():
    codes = np.random.default_rng(0).normal(size=(2000, 2)) * [1.0, 1.5]
    codes[0] = [40.0, 40.0]
    (lo1, hi1), (lo2, hi2) = raster.slider_ranges(codes)
    inside = (codes[:, 0] >= lo1) & (codes[:, 0] <= hi1) & (codes[:, 1] >= lo2) & (codes[:, 1] <= hi2)
    assert inside[1:].mean() >= 0.999 and not inside[0]   # percentiles: all but the rarest codes
    assert np.isclose(hi1 - lo1, hi2 - lo2)   # similar spans become equal: the map keeps its geometry


def test_explorer_ranges_cover_the_encoded_test_digits(vae, offline_data):
    explorer = explorers.latent_explorer(vae, offline_data)
    codes = vae.encode(offline_data.test_x).numpy()
    for (lo, hi), column in ((explorer.z1_range, codes[:, 0]), (explorer.z2_range, codes[:, 1])):
        assert np.mean((column >= lo) & (column <= hi)) >= 0.99
    assert explorer.z1_range == explorer.map.xlim and explorer.z2_range == explorer.map.ylim


# ------------------------------------------------------------------------------------------ latent explorer
def test_the_latent_explorer_sends_the_decoder_and_the_map(vae, offline_data):
    explorer = explorers.latent_explorer(vae, offline_data)
    spec, data = packing.pack_decoder(vae)
    assert explorer.decoder_spec == spec and explorer.decoder_weights == data
    assert np.array_equal(png_pixels(explorer.map_png), explorer.map.background)
    assert explorer.map_geometry == explorer.map.geometry()
    assert explorer.codes == b"" and explorer.n_codes == 0   # the latent explorer needs no codes in the browser
    assert explorer.note == "" and not explorer.conditional


def test_setting_z1_moves_the_code_and_the_picture(vae, offline_data):
    explorer = explorers.latent_explorer(vae, offline_data)
    before_digit, before_picture = explorer.decoded(), explorer.snapshot()
    lo, hi = explorer.z1_range
    explorer.z1 = lo + 0.8 * (hi - lo)
    np.testing.assert_array_equal(explorer.decoded(), packing.decode_image(vae, [explorer.z1, explorer.z2]))
    assert np.abs(explorer.decoded().astype(int) - before_digit).max() > 10
    assert not np.array_equal(explorer.snapshot(), before_picture)
    explorer.z1 = hi + 100                        # beyond the slider: held at its end, as the slider would
    assert explorer.z1 == hi
    with pytest.raises(AelibError, match="finite"):
        explorer.z2 = float("nan")


def test_the_picture_shows_the_digit_and_the_marker(vae, offline_data):
    explorer = explorers.latent_explorer(vae, offline_data)
    explorer.z1, explorer.z2 = 0.5, -0.5
    picture = explorer.snapshot()
    digit = 255 - explorer.decoded().repeat(raster.DIGIT_SCALE, 0).repeat(raster.DIGIT_SCALE, 1)
    np.testing.assert_array_equal(picture[12:12 + 168, 12:12 + 168, 0], digit)
    left = 2 * 12 + 168
    lmap = picture[:raster.MAP_SIZE[1], left:left + raster.MAP_SIZE[0]]
    np.testing.assert_allclose(marker_center(explorer.map, lmap), explorer.map.to_pixel([0.5, -0.5]), atol=1.0)


def test_a_viewer_without_widgets_gets_a_picture_not_a_repr(vae, offline_data):
    explorer = explorers.latent_explorer(vae, offline_data)
    bundle, _ = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    picture = png_pixels(base64.b64decode(bundle["image/png"]))
    np.testing.assert_array_equal(picture, explorer.snapshot())
    assert bundle["text/plain"].startswith("VAE latent explorer") and "children" not in bundle["text/plain"]


def test_the_digit_of_a_cvae(cvae, offline_data):
    explorer = explorers.latent_explorer(cvae, offline_data)
    assert explorer.conditional and explorer.decoder_spec["classes"] == 10
    explorer.digit = 7
    z = [explorer.z1, explorer.z2]
    np.testing.assert_array_equal(explorer.decoded(), packing.decode_image(cvae, z, 7))
    assert not np.array_equal(explorer.decoded(), packing.decode_image(cvae, z, 1))
    with pytest.raises(AelibError, match="digit must be 0..9"):
        explorer.digit = 10


def test_a_latent_dim_5_model_gets_two_sliders_and_a_note(offline_data):
    torch.manual_seed(0)
    model = aelib.build("vae", latent_dim=5, **SMALL)
    explorer = explorers.latent_explorer(model, offline_data, max_points=200)
    assert "latent_dim=5" in explorer.note and "held at 0" in explorer.note
    assert explorer.decoder_spec["latent_dim"] == 5
    explorer.z1, explorer.z2 = 0.3, -0.9
    full = torch.tensor([[explorer.z1, explorer.z2, 0.0, 0.0, 0.0]], dtype=torch.float32)
    expected = packing.to_bytes(model.decode(full).reshape(28, 28).numpy())
    np.testing.assert_array_equal(explorer.decoded(), expected)
    spec, data = packing.pack_decoder(model)
    np.testing.assert_allclose(packing.decode_packed(spec, data, [[explorer.z1, explorer.z2]]),
                               model.decode(full).reshape(1, -1).numpy(), atol=1e-5)   # the rest held at 0


def test_a_latent_dim_1_model_is_a_clear_error(offline_data):
    model = aelib.build("vae", latent_dim=1, **SMALL)
    with pytest.raises(AelibError, match="latent_dim >= 2"):
        explorers.latent_explorer(model, offline_data, max_points=50)


def test_an_aae_map_shows_the_prior_and_covers_it(offline_data):
    torch.manual_seed(0)
    model = aelib.build("aae", prior="mixture", **SMALL)
    explorer = explorers.latent_explorer(model, offline_data, max_points=200)
    prior = latent.prior_samples(model)
    assert prior.shape == (latent.MAX_PRIOR_POINTS, 2)
    (lo1, hi1), (lo2, hi2) = explorer.z1_range, explorer.z2_range
    inside = np.mean((prior[:, 0] >= lo1) & (prior[:, 0] <= hi1) & (prior[:, 1] >= lo2) & (prior[:, 1] <= hi2))
    assert inside >= 0.98
    grey = np.all(np.abs(explorer.map.background.astype(int) - 204) <= 3, axis=2)
    assert grey.sum() > 500, "the prior samples are not drawn"
    guided = aelib.build("caae", prior="mixture", label_guided=True, **SMALL)
    assert latent.prior_samples(guided).shape == (latent.MAX_PRIOR_POINTS, 2)


# ------------------------------------------------------------------------------------- interpolation explorer
def test_interpolation_ends_are_the_decodes_of_the_two_codes(vae, offline_data):
    explorer = explorers.interpolation_explorer(vae, offline_data, index_a=5, index_b=17)
    code_a = vae.encode(offline_data.test_x[5:6]).numpy()[0]
    code_b = vae.encode(offline_data.test_x[17:18]).numpy()[0]
    np.testing.assert_allclose(explorer.code_a, code_a, atol=1e-5)
    np.testing.assert_allclose(explorer.code_b, code_b, atol=1e-5)
    n, d = explorer.n_codes, explorer.latent_dim   # what the browser gets: float32 codes, then uint8 labels
    sent = np.frombuffer(explorer.codes, np.float32, n * d).reshape(n, d)
    np.testing.assert_allclose(sent[[5, 17]], [code_a, code_b], atol=1e-5)
    np.testing.assert_array_equal(np.frombuffer(explorer.codes, np.uint8, n, 4 * n * d), offline_data.test_y)
    explorer.t = 1.0
    np.testing.assert_array_equal(explorer.decoded(), packing.decode_image(vae, code_b))
    explorer.t = 0.5
    np.testing.assert_array_equal(explorer.decoded(), packing.decode_image(vae, (code_a + code_b) / 2))
    row = explorer.decoded_strip()
    np.testing.assert_array_equal(row[0], packing.decode_image(vae, code_a))
    np.testing.assert_array_equal(row[-1], packing.decode_image(vae, code_b))
    with pytest.raises(AelibError, match=r"t must be in \[0, 1\]"):
        explorer.t = 1.5
    with pytest.raises(AelibError, match="index of a test digit"):
        explorer.index_b = n


def test_interpolation_of_a_cvae_decodes_with_the_label_of_a(cvae, offline_data):
    labels = offline_data.test_y.numpy()
    explorer = explorers.interpolation_explorer(cvae, offline_data)
    assert labels[explorer.index_a] == 3 and labels[explorer.index_b] == 8 and explorer.digit == 3
    other = explorers.interpolation_explorer(cvae, offline_data, index_a=0, index_b=1)
    assert other.digit == labels[0]
    code_a = cvae.encode(offline_data.test_x[:1], offline_data.test_y[:1]).numpy()[0]
    np.testing.assert_array_equal(other.decoded(), packing.decode_image(cvae, code_a, int(labels[0])))


# ------------------------------------------------------------------------------------------ style explorer
def test_style_explorer_needs_a_conditional_model(vae, offline_data):
    with pytest.raises(AelibError, match="conditional model .cvae or caae."):
        explorers.style_explorer(vae, offline_data)


def test_style_explorer_keeps_the_style_and_switches_the_digit(cvae, offline_data):
    explorer = explorers.style_explorer(cvae, offline_data)
    z = [explorer.z1, explorer.z2]
    explorer.digit = 2
    np.testing.assert_array_equal(explorer.decoded(), packing.decode_image(cvae, z, 2))
    row = explorer.decoded_strip()
    for digit in range(10):
        np.testing.assert_array_equal(row[digit], packing.decode_image(cvae, z, digit))
    explorer.copy_style(42)                                            # a test digit's style on the sliders
    code = cvae.encode(offline_data.test_x[42:43], offline_data.test_y[42:43]).numpy()[0]
    assert explorer.z1 == pytest.approx(np.clip(code[0], *explorer.z1_range), abs=1e-6)
    assert explorer.z2 == pytest.approx(np.clip(code[1], *explorer.z2_range), abs=1e-6)
    assert explorer.snapshot().shape[0] > raster.MAP_SIZE[1]          # the picture has the row of ten


# ------------------------------------------------------------------------------------------ saved pages
def test_save_html_writes_one_self_contained_page(vae, offline_data, tmp_path):
    explorer = explorers.latent_explorer(vae, offline_data)
    path = explorer.save_html(tmp_path / "vae.html")
    text = path.read_text()
    sources = json.loads(json.loads(_json_after(text, "const sources = JSON.parse(")))
    assert sources == {kinds.LATENT_ID: latent.ESM}
    for forbidden in ("http://", "https://", "src=", "<link"):
        assert forbidden not in text, f"the page refers to something outside itself: {forbidden}"
    state = json.loads(json.loads(_json_after(text, "JSON.parse(")))["explorer"]
    weights = base64.b64decode(state["decoder_weights"]["base64"])
    assert weights == explorer.decoder_weights and state["decoder_spec"]["dtype"] == "float32"
    small = explorer.save_html(tmp_path / "small.html", dtype="int8")
    assert small.stat().st_size < 0.4 * path.stat().st_size
    with pytest.raises(AelibError, match="ending in .html"):
        explorer.save_html(tmp_path / "vae.png")


def test_a_page_cannot_be_broken_by_a_title(vae, offline_data):
    explorer = explorers.latent_explorer(vae, offline_data, max_points=100)
    text = explorer.to_html(title="</script><script>alert(1)</script>")
    assert "<script>alert(1)" not in text


def _json_after(text: str, marker: str) -> str:
    """The JSON string literal that follows ``marker`` in ``text``."""
    start = text.index(marker) + len(marker)
    value, end = json.JSONDecoder().raw_decode(text[start:])
    return json.dumps(value)


# ------------------------------------------------------------------------------------------ stored widget state


def test_stored_explorers_keep_int8_weights_once_per_decoder(vae, cvae, offline_data):
    made = [explorers.latent_explorer(vae, offline_data), explorers.interpolation_explorer(vae, offline_data),
                 explorers.latent_explorer(cvae, offline_data)]
    metadata = {"widgets": {stored.WIDGET_STATE: {"state": {f"m{i}": stored.stored_state(e)
                                                             for i, e in enumerate(made)}}}}
    entries = metadata["widgets"][stored.WIDGET_STATE]["state"]
    entries["m0"]["state"]["_esm"] = "// an older explorer.js"
    before = len(json.dumps(metadata))
    assert stored.compact_widget_state(metadata) == {"explorers": 3, "shared": 1}
    assert len(json.dumps(metadata)) < 0.35 * before   # 3 float32 decoders -> 2 int8 (maps, module stay)
    assert all(e["state"]["_esm"] == latent.ESM for e in entries.values())
    first, second, other = (entries[k] for k in ("m0", "m1", "m2"))
    assert second["buffers"] == [b for b in second["buffers"] if b["path"] != ["decoder_weights"]]   # shares
    assert second["state"]["decoder_spec"] == first["state"]["decoder_spec"]   # same key and dtype: found by JS
    for entry, model in ((first, vae), (other, cvae)):
        spec = entry["state"]["decoder_spec"]
        data = base64.b64decode(next(b["data"] for b in entry["buffers"] if b["path"] == ["decoder_weights"]))
        assert spec["dtype"] == "int8"
        z = np.random.default_rng(0).normal(size=(20, 2))
        y = 3 if model.conditional else None
        expected = model.decode(torch.tensor(z, dtype=torch.float32), y if y is None else torch.full((20,), y))
        assert np.abs(packing.decode_packed(spec, data, z, y) - expected.reshape(20, -1).numpy()).max() < 0.02
    again = json.dumps(metadata)
    stored.compact_widget_state(metadata)
    assert json.dumps(metadata) == again   # idempotent: `nbtools.py check` stays quiet


def test_a_stored_explorer_boots_from_the_same_state_as_a_saved_page(vae, offline_data):
    explorer = explorers.interpolation_explorer(vae, offline_data, max_points=300)
    assert page.page_state_from_stored(stored.stored_state(explorer)) == explorer.page_state()
    script = page.boot_script({"a": explorer.page_state(), "b": explorer.page_state("int8")})
    assert script.count("__aelib_explorer_weights_v1__") == 1   # explorer.js is inlined once, for both
    assert "</script>" not in script[:-len("</script>")]


# --- hostile input: a clear error, never a late numpy or torch one -------------------------------------------------
def test_bad_data_for_an_explorer_is_named(vae, cvae, offline_data):
    import dataclasses

    with pytest.raises(AelibError, match="data must be an MNIST object"):
        explorers.latent_explorer(vae, (offline_data.test_x, offline_data.test_y))
    empty = dataclasses.replace(offline_data, test_x=offline_data.test_x[:0], test_y=offline_data.test_y[:0])
    with pytest.raises(AelibError, match="no test digits"):
        explorers.latent_explorer(vae, empty)
    with pytest.raises(AelibError, match="no test labels"):
        explorers.latent_explorer(cvae, dataclasses.replace(offline_data, test_y=None))
    for bad in (0, -1, 2.5):
        with pytest.raises(AelibError, match="max_points must be"):
            explorers.latent_explorer(vae, offline_data, max_points=bad)


def test_bad_controls_of_an_explorer_are_named(vae, offline_data, tmp_path):
    with pytest.raises(AelibError, match="steps must be"):
        explorers.interpolation_explorer(vae, offline_data, steps=-5)
    with pytest.raises(AelibError, match="index_a must be"):
        explorers.interpolation_explorer(vae, offline_data, index_a=True)
    explorer = explorers.latent_explorer(vae, offline_data, dtype="int8")
    with pytest.raises(AelibError, match="is a folder"):
        explorer.save_html(tmp_path)
    assert not list(tmp_path.iterdir())
    with pytest.raises(AelibError, match="build the explorer with dtype='float32'"):
        explorer.save_html(tmp_path / "page.html")
    assert explorer.save_html(tmp_path / "page.html", dtype="int8").is_file()
