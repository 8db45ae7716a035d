"""aelib.course.plotting: image tiling is exact, and every figure function returns a Figure (tiny untrained models)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import aelib  # noqa: E402
from aelib import plotting  # noqa: E402

SMALL = {"hidden_dims": (16,)}


def small(name, latent_dim=2):
    torch.manual_seed(0)
    return aelib.build(name, latent_dim=latent_dim, **SMALL)


@pytest.fixture
def digits():
    g = torch.Generator().manual_seed(0)
    return torch.rand(12, 1, 28, 28, generator=g), torch.arange(12) % 10


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_tile_places_each_image_row_by_row():
    images = torch.stack([torch.full((1, 28, 28), (i + 1) / 10) for i in range(5)])
    out = plotting.tile(images, ncols=3, pad=1, pad_value=0.0)
    assert out.shape == (2 * 29 + 1, 3 * 29 + 1)
    for i in range(5):
        r, c = divmod(i, 3)
        block = out[1 + r * 29: 1 + r * 29 + 28, 1 + c * 29: 1 + c * 29 + 28]
        assert np.allclose(block, (i + 1) / 10), f"image {i} is not at row {r}, column {c}"
    assert np.all(out[1 + 29: 1 + 29 + 28, 1 + 2 * 29: 1 + 2 * 29 + 28] == 0.0), "the empty slot keeps pad_value"
    assert np.all(out[0, :] == 0.0) and np.all(out[:, 29] == 0.0), "padding lines between images"


def test_tile_accepts_flat_images():
    flat = torch.rand(4, 784)
    assert np.allclose(plotting.tile(flat, ncols=4, pad=0), torch.cat(list(flat.view(4, 28, 28)), dim=1).numpy())


def test_image_and_curve_figures(digits):
    x, _ = digits
    assert isinstance(plotting.image_grid(x, ncols=5, row_labels=["a", "b", "c"]), Figure)
    history = aelib.History([{"loss": 3.0, "kl": 1.0}, {"loss": 2.0, "kl": 1.5}])
    fig = plotting.loss_curves(history, keys=["loss", "kl"])
    assert isinstance(fig, Figure)
    assert [line.get_label() for line in fig.axes[0].lines] == ["loss", "kl"]


def test_model_figures(digits):
    x, y = digits
    vae = small("vae")
    for fig in (plotting.reconstructions(vae, x, n=4),
                plotting.latent_scatter(vae.encode(x), y, background=torch.randn(20, 2)),
                plotting.manifold(vae, "quantiles", n=4),
                plotting.manifold(small("ae", latent_dim=3), 2.0, n=3),
                plotting.interpolation(vae, x[0], x[1], steps=5)):
        assert isinstance(fig, Figure)


def test_conditional_figures():
    cvae = small("cvae")
    assert isinstance(plotting.digit_grid(cvae, n=2), Figure)
    assert isinstance(plotting.style_grid(cvae, torch.zeros(2, 2)), Figure)


def test_decoded_codes_numbers_crosses_and_images(digits):
    x, y = digits
    ae = small("ae")
    z = torch.randn(7, 2)
    fig = plotting.decoded_codes(ae, z, ae.encode(x), y, ncols=4, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    latent_map, images = fig.axes
    assert [t.get_text() for t in latent_map.texts] == [str(i) for i in range(7)]
    assert [t.get_text() for t in images.texts] == [str(i) for i in range(7)]
    assert images.images[0].get_array().shape == (2 * 29 + 1, 4 * 29 + 1)
    only_images = plotting.decoded_codes(ae, z, numbers=False)
    assert len(only_images.axes) == 1 and not only_images.axes[0].texts
