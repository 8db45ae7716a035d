"""The latent-space explorers without a browser: pixel mapping, marker, decoding, ranges and the update path.

Setting a control's value runs the same observer a slider drag runs in JupyterLab (decode, composite, PNG-encode,
assign ``Image.value``), so these tests exercise the real update path; tests/test_browser.py checks the rendering.
"""
import io

import numpy as np
import pytest
import torch
from PIL import Image

import aelib
from aelib import AelibError, widgets
from aelib.plotting import DIGIT_COLORS

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


def marker_center(lmap, frame, base=None) -> np.ndarray:
    """(column, row) centre of the pixels where ``frame`` differs from ``base`` (default: the map's background)."""
    rows, cols = np.nonzero(frame != (lmap.indexed if base is None else base))
    assert len(rows), "no marker drawn"
    return np.array([(cols.min() + cols.max()) / 2, (rows.min() + rows.max()) / 2])


# ------------------------------------------------------------------------------------------ pixel mapping
@pytest.fixture(scope="module")
def square_map():
    codes = np.random.default_rng(0).normal(size=(300, 2))
    return widgets.LatentMap(codes, np.arange(300) % 10, xlim=(-2.0, 3.0), ylim=(-1.0, 4.0))


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
    assert square_map.background.shape == (widgets.MAP_SIZE[1], widgets.MAP_SIZE[0], 3)


def test_a_drawn_point_is_where_to_pixel_says():
    """Draw one big dot with matplotlib; the centre of its coloured pixels is to_pixel of its code."""
    code = np.array([[0.3, -0.7]])
    lmap = widgets.LatentMap(code, [3], xlim=(-1, 1), ylim=(-1, 1), point_size=150)
    red = np.array(DIGIT_COLORS(3)[:3]) * 255
    blended = 0.7 * red + 0.3 * 255                       # alpha 0.7 over white paper
    close = np.abs(lmap.background.astype(float) - blended).max(axis=2) < 30
    rows, cols = np.nonzero(close[:, : lmap.axes_box[2]])  # inside the axes (not the legend's swatch)
    centre = np.array([cols.mean() + 0.5, rows.mean() + 0.5])   # pixel (c, r) covers [c, c + 1)
    np.testing.assert_allclose(centre, lmap.to_pixel(code[0]), atol=1.0)


def test_marker_is_drawn_at_the_code_and_nowhere_else(square_map):
    for z in ([0.0, 0.0], [2.5, -0.5], [-1.0, 3.0]):
        frame = square_map.frame(z)
        np.testing.assert_allclose(marker_center(square_map, frame), square_map.to_pixel(z), atol=1.0)
        rows, cols = np.nonzero(frame != square_map.indexed)
        assert cols.max() - cols.min() <= 16 and rows.max() - rows.min() <= 16
    assert np.array_equal(square_map.render(None), square_map.palette[square_map.indexed])


def test_the_palette_keeps_the_background_faithful(square_map):
    error = np.abs(square_map.rgb(square_map.indexed).astype(int) - square_map.background.astype(int))
    assert error.mean() < 2.0


def test_png_of_a_frame_decodes_to_its_rgb(square_map):
    frame = square_map.frame([1.0, 1.0])
    assert np.array_equal(png_pixels(square_map.png(frame)), square_map.rgb(frame))


# ------------------------------------------------------------------------------------------ decoding, ranges
def test_decode_image_is_the_decoder_output_in_bytes(vae):
    z = np.array([0.5, -1.0])
    was_training = vae.training
    expected = vae.decode(torch.tensor(z[None], dtype=torch.float32)).reshape(28, 28).numpy()
    image = widgets.decode_image(vae, z)
    assert image.dtype == np.uint8 and image.shape == (28, 28)
    assert np.abs(image.astype(float) - 255 * expected).max() <= 0.5 + 1e-3
    assert vae.training == was_training   # decoding ran in eval mode and restored the flag


def test_decode_image_needs_the_digit_for_a_conditional_model(cvae):
    with pytest.raises(AelibError, match="conditional"):
        widgets.decode_image(cvae, [0.0, 0.0])


def test_slider_ranges_cover_the_codes_but_ignore_one_outlier():
    codes = np.random.default_rng(0).normal(size=(2000, 2)) * [1.0, 1.5]
    codes[0] = [40.0, 40.0]
    (lo1, hi1), (lo2, hi2) = widgets.slider_ranges(codes)
    inside = (codes[:, 0] >= lo1) & (codes[:, 0] <= hi1) & (codes[:, 1] >= lo2) & (codes[:, 1] <= hi2)
    assert inside[1:].mean() >= 0.999 and not inside[0]   # percentiles: all but the rarest codes
    assert np.isclose(hi1 - lo1, hi2 - lo2)   # similar spans become equal: the map keeps its geometry


def test_explorer_ranges_cover_the_encoded_test_digits(vae, offline_data):
    explorer = widgets.latent_explorer(vae, offline_data)
    codes = vae.encode(offline_data.test_x).numpy()
    for slider, column in ((explorer.z1, codes[:, 0]), (explorer.z2, codes[:, 1])):
        inside = np.mean((column >= slider.min) & (column <= slider.max))
        assert inside >= 0.99, f"{slider.description}: only {inside:.1%} of the test codes are in range"
    assert (explorer.z1.min, explorer.z1.max) == explorer.map.xlim
    assert (explorer.z2.min, explorer.z2.max) == explorer.map.ylim
    assert explorer.z1.continuous_update and explorer.z2.continuous_update


# ------------------------------------------------------------------------------------------ latent explorer
def test_moving_z1_changes_the_digit_and_moves_the_marker(vae, offline_data):
    explorer = widgets.latent_explorer(vae, offline_data)
    assert explorer.digit is None and explorer.note.value == ""
    before_png, before_digit = bytes(explorer.image.value), explorer.last_digit
    before_map, before_marker = bytes(explorer.map_image.value), marker_center(explorer.map, explorer.last_frame)
    z1 = explorer.z1.min + 0.8 * (explorer.z1.max - explorer.z1.min)
    explorer.z1.value = z1                                  # what a slider drag does: the observer redraws
    assert bytes(explorer.image.value) != before_png
    assert np.abs(explorer.last_digit.astype(int) - before_digit).max() > 10
    np.testing.assert_array_equal(explorer.last_digit, widgets.decode_image(vae, [z1, explorer.z2.value]))
    after = marker_center(explorer.map, explorer.last_frame)
    np.testing.assert_allclose(after, explorer.map.to_pixel([z1, explorer.z2.value]), atol=1.0)
    assert after[0] - before_marker[0] > 20 and abs(after[1] - before_marker[1]) < 1
    assert bytes(explorer.map_image.value) != before_map
    assert np.array_equal(png_pixels(explorer.map_image.value), explorer.last_map)


def test_the_digit_picker_changes_the_image_of_a_cvae(cvae, offline_data):
    explorer = widgets.latent_explorer(cvae, offline_data)
    assert explorer.digit is not None and explorer.digit.options == tuple(range(10))
    before_png, before_frame = bytes(explorer.image.value), explorer.last_frame
    explorer.digit.value = 7
    assert bytes(explorer.image.value) != before_png
    z = [explorer.z1.value, explorer.z2.value]
    np.testing.assert_array_equal(explorer.last_digit, widgets.decode_image(cvae, z, 7))
    assert not np.array_equal(explorer.last_digit, widgets.decode_image(cvae, z, 1))
    assert np.array_equal(explorer.last_frame, before_frame)   # the code did not move


def test_a_latent_dim_5_model_gets_two_sliders_and_a_note(offline_data):
    torch.manual_seed(0)
    model = aelib.build("vae", latent_dim=5, **SMALL)
    explorer = widgets.latent_explorer(model, offline_data, max_points=200)
    assert "latent_dim=5" in explorer.note.value and "held at 0" in explorer.note.value
    z1 = explorer.z1.min + 0.3 * (explorer.z1.max - explorer.z1.min)
    z2 = explorer.z2.min + 0.9 * (explorer.z2.max - explorer.z2.min)
    explorer.z1.value, explorer.z2.value = z1, z2
    full = torch.tensor([[z1, z2, 0.0, 0.0, 0.0]], dtype=torch.float32)
    expected = (model.decode(full).reshape(28, 28) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    np.testing.assert_array_equal(explorer.last_digit, expected)


def test_a_latent_dim_1_model_is_a_clear_error(offline_data):
    model = aelib.build("vae", latent_dim=1, **SMALL)
    with pytest.raises(AelibError, match="latent_dim >= 2"):
        widgets.latent_explorer(model, offline_data, max_points=50)


def test_an_aae_map_shows_the_prior_and_covers_it(offline_data):
    torch.manual_seed(0)
    model = aelib.build("aae", prior="mixture", **SMALL)
    explorer = widgets.latent_explorer(model, offline_data, max_points=200)
    prior = widgets.prior_samples(model)
    assert prior.shape == (widgets.MAX_PRIOR_POINTS, 2)
    inside = np.mean((prior[:, 0] >= explorer.z1.min) & (prior[:, 0] <= explorer.z1.max)
                     & (prior[:, 1] >= explorer.z2.min) & (prior[:, 1] <= explorer.z2.max))
    assert inside >= 0.98
    grey = np.all(np.abs(explorer.map.background.astype(int) - 204) <= 3, axis=2)
    assert grey.sum() > 500, "the prior samples are not drawn"
    guided = aelib.build("caae", prior="mixture", label_guided=True, **SMALL)
    assert widgets.prior_samples(guided).shape == (widgets.MAX_PRIOR_POINTS, 2)


# ------------------------------------------------------------------------------------- interpolation explorer
def test_interpolation_ends_are_the_decodes_of_the_two_codes(vae, offline_data):
    explorer = widgets.interpolation_explorer(vae, offline_data, index_a=5, index_b=17)
    code_a = vae.encode(offline_data.test_x[5:6]).numpy()[0]
    code_b = vae.encode(offline_data.test_x[17:18]).numpy()[0]
    np.testing.assert_allclose(explorer.code_a, code_a, atol=1e-5)
    np.testing.assert_allclose(explorer.code_b, code_b, atol=1e-5)
    explorer.t.value = 1.0
    np.testing.assert_array_equal(explorer.last_digit, widgets.decode_image(vae, code_b))
    explorer.t.value = 0.0
    np.testing.assert_array_equal(explorer.last_digit, widgets.decode_image(vae, code_a))
    np.testing.assert_array_equal(explorer.strip_digits[0], widgets.decode_image(vae, code_a))
    np.testing.assert_array_equal(explorer.strip_digits[-1], widgets.decode_image(vae, code_b))
    np.testing.assert_allclose(marker_center(explorer.map, explorer.last_frame, explorer.path_map),
                               explorer.map.to_pixel(code_a), atol=1.0)
    before = bytes(explorer.image.value)
    explorer.t.value = 0.5
    np.testing.assert_array_equal(explorer.last_digit, widgets.decode_image(vae, (code_a + code_b) / 2))
    assert bytes(explorer.image.value) != before


def test_interpolation_endpoints_can_change(cvae, offline_data):
    explorer = widgets.interpolation_explorer(cvae, offline_data)
    labels = offline_data.test_y.numpy()
    assert labels[explorer.index_a.value] == 3 and labels[explorer.index_b.value] == 8
    assert explorer.digit.value == 3                  # the decoder gets A's label
    explorer.index_a.value = 0
    assert explorer.digit.value == labels[0]          # ... and follows A
    code_a = cvae.encode(offline_data.test_x[:1], offline_data.test_y[:1]).numpy()[0]
    np.testing.assert_allclose(explorer.code_a, code_a, atol=1e-5)
    explorer.t.value = 0.0
    np.testing.assert_array_equal(explorer.last_digit, widgets.decode_image(cvae, code_a, int(labels[0])))


# ------------------------------------------------------------------------------------------ style explorer
def test_style_explorer_needs_a_conditional_model(vae, offline_data):
    with pytest.raises(AelibError, match="conditional model .cvae or caae."):
        widgets.style_explorer(vae, offline_data)


def test_style_explorer_keeps_the_style_and_switches_the_digit(cvae, offline_data):
    explorer = widgets.style_explorer(cvae, offline_data)
    z = [explorer.z1.value, explorer.z2.value]
    for digit in (2, 9):
        explorer.digit.value = digit
        np.testing.assert_array_equal(explorer.last_digit, widgets.decode_image(cvae, z, digit))
    for digit in range(10):
        np.testing.assert_array_equal(explorer.last_row[digit], widgets.decode_image(cvae, z, digit))
    before = bytes(explorer.row_image.value)
    explorer.z2.value = explorer.z2.min                                # same digit, another style
    assert bytes(explorer.row_image.value) != before
    explorer.style_of.value = 42                                       # copy a test digit's style
    code = cvae.encode(offline_data.test_x[42:43], offline_data.test_y[42:43]).numpy()[0]
    assert explorer.z1.value == pytest.approx(np.clip(code[0], explorer.z1.min, explorer.z1.max), abs=1e-6)
    assert explorer.z2.value == pytest.approx(np.clip(code[1], explorer.z2.min, explorer.z2.max), abs=1e-6)
    np.testing.assert_array_equal(explorer.last_digit,
                                  widgets.decode_image(cvae, [explorer.z1.value, explorer.z2.value], 9))
