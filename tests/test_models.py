"""The five models: one interface, shapes, gradients, eval-mode inference, and clear errors for bad input."""
import pytest
import torch

import aelib
from aelib import AelibError

NAMES = list(aelib.MODELS)
SMALL = {"hidden_dims": (32,), "disc_hidden_dims": (16,)}


def small(name, **config):
    torch.manual_seed(0)
    return aelib.build(name, **{**SMALL, **config})


def batch(n=6):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 28, 28, generator=g), torch.arange(n) % 10


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("latent_dim", [2, 5])
def test_interface_shapes(name, latent_dim):
    model = small(name, latent_dim=latent_dim)
    x, y = batch()
    z = model.encode(x, y)
    assert z.shape == (6, latent_dim)
    for out in (model.decode(z, y), model.reconstruct(x, y), model.sample(6, y)):
        assert out.shape == (6, 1, 28, 28)
        assert 0 <= out.min() and out.max() <= 1
    # a single int label means "this digit for every image"
    assert model.sample(4, 7).shape == (4, 1, 28, 28)


@pytest.mark.parametrize("name", NAMES)
def test_unconditional_models_run_without_labels(name):
    model = small(name)
    x, _ = batch()
    if model.conditional:
        with pytest.raises(AelibError, match="conditional"):
            model.encode(x)
    else:
        assert model.reconstruct(x).shape == x.shape
        assert model.sample(3).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("name", NAMES)
def test_training_step_gives_gradients_to_every_parameter(name):
    model = small(name).train()
    x, y = batch(8)
    optimizers = model.configure_optimizers(1e-3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    terms = model.training_step(x, y, optimizers)
    assert torch.isfinite(terms["loss"])
    for key, value in model.state_dict().items():
        assert not torch.equal(before[key], value), f"{name}: {key} did not change after one step"


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_vae_loss_terms(name):
    model = small(name).train()
    x, y = batch()
    terms = model.loss(x, y)
    assert set(terms) == {"loss", "recon", "kl"}
    assert torch.allclose(terms["loss"], terms["recon"] + terms["kl"])
    assert terms["kl"] >= 0
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_conditional_decoder_uses_the_label():
    model = small("cvae")
    z = torch.zeros(2, 2)
    a, b = model.decode(z, torch.tensor([3, 3])), model.decode(z, torch.tensor([3, 8]))
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])


@pytest.mark.parametrize("name", ["cvae", "caae"])
def test_the_label_reaches_every_layer_of_a_conditional_network(name):
    model = aelib.build(name, hidden_dims=(32, 16))
    for net in (model.encoder.net, model.decoder.net):
        linears = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
        widths = [linears[0].in_features - 10] + [layer.out_features for layer in linears[:-1]]
        assert [layer.in_features for layer in linears] == [w + 10 for w in widths]
    # a label change reaching only the first layer could be undone there; zero the first layer's label weights and
    # the decoder must still depend on the label
    with torch.no_grad():
        model.decoder.net[0].weight[:, -10:] = 0
    z = torch.zeros(2, 2)
    assert not torch.allclose(*model.decode(z, torch.tensor([3, 8])))


def test_caae_discriminator_judges_code_and_label_pairs():
    """The CAAE's discriminator sees the digit (each digit's codes must fill the prior); the plain AAE's does not."""
    caae, aae = small("caae"), small("aae")
    z = torch.zeros(2, 2)
    logits = caae.discriminator(z, torch.tensor([1, 7]))
    assert logits.shape == (2,) and logits[0] != logits[1]
    assert caae.discriminator_sees_label and not aae.discriminator_sees_label
    assert small("aae", prior="mixture", label_guided=True).discriminator_sees_label


@pytest.mark.parametrize("name", NAMES)
def test_inference_runs_in_eval_mode_and_restores_training_flag(name):
    model = small(name, dropout=0.5).train()
    x, y = batch()
    first, second = model.reconstruct(x, y), model.reconstruct(x, y)
    assert torch.equal(first, second), "dropout must be off when reconstructing"
    z = torch.zeros(6, 2)
    assert torch.equal(model.decode(z, y), model.decode(z, y))
    assert model.training, "inference must restore the training flag"
    assert not model.decode(z, y).requires_grad


def test_discriminator_has_one_logit():
    model = small("aae")
    assert model.discriminator(torch.zeros(5, 2)).shape == (5,)
    guided = small("aae", prior="mixture", label_guided=True)
    assert guided.discriminator(torch.zeros(5, 2), torch.arange(5)).shape == (5,)


@pytest.mark.parametrize("prior", ["gaussian", "mixture", "swiss_roll"])
def test_priors_sample_2d_codes(prior):
    p = aelib.priors.make_prior(prior, 2)
    z = p.sample(1000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (1000, 2) and torch.isfinite(z).all()


def test_label_guided_mixture_puts_each_digit_on_its_own_component():
    p = aelib.priors.make_prior("mixture", 2, label_guided=True)
    y = torch.arange(10).repeat(100)
    z = p.sample(1000, y, generator=torch.Generator().manual_seed(0))
    angle = torch.atan2(z[:, 1], z[:, 0]) % (2 * torch.pi)
    nearest = torch.round(angle / (2 * torch.pi / 10)).long() % 10
    assert (nearest == y).float().mean() > 0.95


def test_label_guided_aae_samples_the_requested_component():
    model = small("aae", prior="mixture", label_guided=True)
    torch.manual_seed(0)
    a = model.prior_sample(200, torch.full((200,), 2))
    b = model.prior_sample(200, torch.full((200,), 7))
    assert (a.mean(0) - b.mean(0)).norm() > 3


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("shape", [(4, 3, 28, 28), (4, 1, 32, 32), (4, 28), (784,), (4, 1, 28, 28, 1)])
def test_wrong_image_shape_is_a_clear_error(shape):
    model = small("ae")
    with pytest.raises(AelibError, match=r"shape \(N, 1, 28, 28\)"):
        model.encode(torch.rand(*shape))


def test_flat_and_channel_less_images_are_accepted():
    model = small("ae")
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(model.encode(x.view(3, 784)), model.encode(x))
    assert torch.equal(model.encode(x.view(3, 28, 28)), model.encode(x))


def test_integer_images_are_a_clear_error():
    with pytest.raises(AelibError, match="255"):
        small("ae").encode(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def with_nan(x):
    x = x.clone()
    x[1, 0, 5, 5] = float("nan")
    return x


@pytest.mark.parametrize("change, message", [
    (lambda x: x * 255, r"values from .* to .*: divide by 255"),
    (lambda x: (x - 0.5) / 0.3, r"floats in \[0, 1\].*undo a normalisation"),
    (with_nan, "1 of 8 images contain NaN pixel values"),
    (lambda x: x.index_fill(0, torch.tensor([0]), float("inf")), "infinite"),
])
@pytest.mark.parametrize("entry", ["encode", "reconstruct", "reconstruction_error", "elbo", "prior_matching",
                                   "judge"])
def test_pixel_values_outside_0_1_are_a_clear_error(change, message, entry):
    model = small("vae")
    call = {"encode": model.encode, "reconstruct": model.reconstruct,
            "reconstruction_error": lambda x: aelib.evaluate.reconstruction_error(model, x),
            "elbo": lambda x: aelib.evaluate.elbo(model, x),
            "prior_matching": lambda x: aelib.metrics.prior_matching(model, x),
            "judge": aelib.classifier.DigitClassifier().predict}[entry]
    x = torch.rand(8, 1, 28, 28)
    call(x)
    with pytest.raises(AelibError, match=message):
        call(change(x))


@pytest.mark.parametrize("labels, message", [
    (torch.tensor([0, 10]), "digits 0..9"),
    (torch.tensor([-1, 3]), "digits 0..9"),
    (torch.tensor([1, 2, 3]), r"shape \(2,\)"),
    (torch.tensor([0.5, 1.0]), "integers"),
])
@pytest.mark.parametrize("name", ["cvae", "caae"])
def test_bad_labels_are_a_clear_error(name, labels, message):
    model = small(name)
    with pytest.raises(AelibError, match=message):
        model.reconstruct(torch.rand(2, 1, 28, 28), labels)
    with pytest.raises(AelibError, match=message):
        model.sample(2, labels)


@pytest.mark.parametrize("name", ["cvae", "caae"])
def test_missing_labels_for_conditional_model(name):
    model = small(name)
    with pytest.raises(AelibError, match="pass the digit labels"):
        model.sample(3)
    with pytest.raises(AelibError, match="pass the digit labels"):
        model.decode(torch.zeros(3, 2))


def test_wrong_code_shape_is_a_clear_error():
    with pytest.raises(AelibError, match=r"shape \(N, 2\)"):
        small("vae").decode(torch.zeros(3, 5))


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "vea"}, "model name must be one of ae, vae, cvae, aae, caae, got 'vea'"),
    ({"name": "aae", "prior": "banana"}, "prior must be one of gaussian, mixture, swiss_roll, got 'banana'"),
    ({"name": "vae", "prior": "mixture"}, "'aae' and 'caae' only"),
    ({"name": "aae", "prior": "swiss_roll", "latent_dim": 3}, "latent_dim=2"),
    ({"name": "aae", "label_guided": True}, "label-guided"),
    ({"name": "ae", "latent_dim": 0}, "latent_dim"),
    ({"name": "ae", "hidden_dims": (0,)}, "hidden_dims"),
    ({"name": "ae", "hidden_dims": "wide"}, "hidden_dims"),
    ({"name": "ae", "dropout": 1.5}, "dropout"),
    ({"name": "ae", "widht": 3}, "unknown option"),
])
def test_bad_config_is_a_clear_error(kwargs, message):
    kwargs = dict(kwargs)
    with pytest.raises(AelibError, match=message):
        aelib.build(kwargs.pop("name"), **kwargs)


def test_float64_images_and_codes_are_converted_to_the_model_dtype():
    model = small("vae")
    assert model.encode(torch.rand(2, 1, 28, 28, dtype=torch.float64)).dtype == torch.float32
    assert aelib.evaluate.elbo(model, torch.rand(2, 1, 28, 28, dtype=torch.float64)).shape == (2,)
    assert model.decode(torch.zeros(2, 2, dtype=torch.float64)).dtype == torch.float32


# --- every argument checked the same way (type, range, NaN, size) -------------------------------
@pytest.mark.parametrize("config, message", [
    ({"latent_dim": "2"}, r"latent_dim must be a positive whole number, got '2' \(a str\)"),
    ({"latent_dim": True}, "latent_dim must be a positive whole number, got True"),
    ({"latent_dim": 2.5}, "latent_dim must be a positive whole number, got 2.5"),
    ({"hidden_dims": True}, "hidden_dims must be"),
    ({"hidden_dims": (True, 8)}, "hidden_dims must be"),
    ({"hidden_dims": (64.0,)}, "hidden_dims must be"),
    ({"hidden_dims": (float("nan"),)}, "hidden_dims must be"),
    ({"hidden_dims": ()}, "hidden_dims must be"),
    ({"hidden_dims": (1, 10 ** 13)}, r"parameters.*smaller hidden_dims"),
    ({"prior": "gaussian", "latent_dim": 10 ** 13}, r"parameters.*smaller latent_dim"),
    ({"dropout": float("nan")}, "dropout must be a number from 0 to below 1, got nan"),
    ({"dropout": "0.1"}, r"dropout must be a number from 0 to below 1, got '0.1' \(a str\)"),
    ({"dropout": True}, "dropout must be a number"),
    ({"label_guided": "yes"}, "label_guided must be True or False, got 'yes'"),
    ({"label_guided": 1}, "label_guided must be True or False, got 1"),
    ({"prior": None}, "prior must be one of gaussian, mixture, swiss_roll, got None"),
    ({"prior": ["mixture"]}, "prior must be one of"),
    ({"disc_hidden_dims": "16"}, "disc_hidden_dims must be"),
])
def test_bad_config_types_are_a_clear_error(config, message):
    with pytest.raises(AelibError, match=message):
        aelib.build("aae", **{"prior": "mixture", **config})


@pytest.mark.parametrize("name", [None, 5, ["vae"]])
def test_a_model_name_must_be_a_string(name):
    with pytest.raises(AelibError, match="model name must be one of ae, vae, cvae, aae, caae"):
        aelib.build(name)


@pytest.mark.parametrize("call, message", [
    (lambda m: m.sample(2.5), "n must be a whole number of at least 0, got 2.5"),
    (lambda m: m.sample("3"), r"n must be a whole number of at least 0, got '3' \(a str\)"),
    (lambda m: m.sample(True), "n must be a whole number of at least 0, got True"),
    (lambda m: m.sample(-1), "n must be a whole number of at least 0, got -1"),
    (lambda m: m.sample(3, 1, generator=5), "generator must be a torch.Generator on the CPU"),
    (lambda m: m.sample(3, y="3"), "labels must be integers 0..9"),
    (lambda m: m.sample(2, y=[["a"], ["b"]]), "labels must be integers 0..9"),
    (lambda m: m.decode(torch.full((2, 2), float("nan")), 1), "codes z must be finite"),
    (lambda m: m.decode(torch.zeros(2, 2, dtype=torch.bool), 1), "codes z must be numbers"),
    (lambda m: m.decode([[0.0, 0.0]], 1), r"codes z must be a tensor of shape \(N, 2\)"),
    (lambda m: m.encode(torch.rand(2, 1, 28, 28), "3"), "labels must be integers 0..9"),
    (lambda m: m.reconstruct(torch.rand(2, 784), torch.tensor([True, False])), "labels must be integers 0..9"),
])
def test_bad_inference_arguments_are_a_clear_error(call, message):
    with pytest.raises(AelibError, match=message):
        call(small("cvae"))


def test_integer_codes_and_zero_samples_still_work():
    model = small("vae")
    assert model.decode(torch.tensor([[0, 1]])).shape == (1, 1, 28, 28)
    assert model.sample(0).shape == (0, 1, 28, 28)
