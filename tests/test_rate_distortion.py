"""beta, free bits and the rate-distortion numbers (notebook 08), checked against independent oracles.

Oracles: torch.distributions' KL and F.binary_cross_entropy on probabilities (float64), the KL's derivatives
written out by hand (d KL_j / d mu_j = mu_j, d KL_j / d logvar_j = (sigma_j^2 - 1) / 2), the gradients of the loss's
own terms, and training runs whose outcome (collapse, or a rate held at the floor) is known in advance.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

import aelib
from aelib import AelibError, CheckpointError, evaluate, losses

f64 = torch.float64
SMALL = {"hidden_dims": (32,)}


def small(name="vae", seed=0, **config):
    torch.manual_seed(seed)
    return aelib.build(name, **{**SMALL, **config})


def batch(n=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), torch.arange(n) % 10


def oracle_kl_per_dimension(mu, logvar):
    """KL(N(mu, sigma) || N(0, 1)) of each entry, from torch.distributions, in float64."""
    mu, logvar = mu.to(f64), logvar.to(f64)
    return kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu)))


def oracle_negative_elbo(model, x, y, z, mu, logvar):
    """-ELBO per image in float64 from probabilities (not logits) and torch.distributions' KL."""
    probs = torch.sigmoid(model.decoder(z, y).to(f64)).flatten(1)
    recon = F.binary_cross_entropy(probs, x.to(f64).flatten(1), reduction="none").sum(1)
    return recon, oracle_kl_per_dimension(mu, logvar).sum(1)


# ------------------------------------------------------------------------------------- the loss's KL penalty
def test_gaussian_kl_per_dimension_matches_torch_distributions_and_sums_to_gaussian_kl():
    torch.manual_seed(0)
    mu, logvar = 2 * torch.randn(40, 6, dtype=f64), 2 * torch.randn(40, 6, dtype=f64)
    per_dim = losses.gaussian_kl_per_dimension(mu, logvar)
    assert per_dim.shape == (40, 6)
    torch.testing.assert_close(per_dim, oracle_kl_per_dimension(mu, logvar), rtol=1e-12, atol=1e-12)
    assert torch.equal(per_dim.sum(1), losses.gaussian_kl(mu, logvar))


@pytest.mark.parametrize("free_bits", [0.0, 0.3, 1.0, 100.0])
def test_free_bits_kl_matches_its_definition(free_bits):
    """sum_j max(lambda, mean_n KL_nj), with KL from torch.distributions."""
    torch.manual_seed(1)
    mu, logvar = torch.randn(30, 5, dtype=f64), torch.randn(30, 5, dtype=f64) - 1
    kl_j = oracle_kl_per_dimension(mu, logvar).mean(0)
    expected = sum(max(free_bits, k) for k in kl_j.tolist())
    assert losses.free_bits_kl(mu, logvar, free_bits).item() == pytest.approx(expected, rel=1e-12)
    if free_bits == 100.0:    # every dimension below the floor: a constant d * lambda
        assert losses.free_bits_kl(mu, logvar, free_bits).item() == 5 * 100.0


def test_free_bits_gradient_is_zero_below_the_floor_and_the_kl_gradient_above_it():
    """d/d(mu, logvar) of beta * free_bits_kl: exactly 0 for a dimension whose batch-mean KL is below lambda; for one
    above it, beta times the KL's derivatives written out by hand: beta mu / N and beta (sigma^2 - 1) / (2 N)."""
    torch.manual_seed(2)
    n, beta, free_bits = 12, 3.0, 0.5
    scale = torch.tensor([0.1, 2.0, 0.2, 1.5, 0.05], dtype=f64)       # small mu and sigma ~ 1: KL below 0.5
    mu = (scale * torch.randn(n, 5, dtype=f64)).requires_grad_()
    logvar = (scale * torch.randn(n, 5, dtype=f64)).requires_grad_()
    kl_j = oracle_kl_per_dimension(mu, logvar).mean(0).detach()
    below = kl_j < free_bits
    assert below.tolist() == [True, False, True, False, True], f"the test needs both kinds of dimension: {kl_j}"
    d_mu, d_logvar = torch.autograd.grad(beta * losses.free_bits_kl(mu, logvar, free_bits), (mu, logvar))
    assert torch.equal(d_mu[:, below], torch.zeros(n, 3, dtype=f64))
    assert torch.equal(d_logvar[:, below], torch.zeros(n, 3, dtype=f64))
    with torch.no_grad():
        torch.testing.assert_close(d_mu[:, ~below], beta * mu[:, ~below] / n, rtol=1e-12, atol=0)
        torch.testing.assert_close(d_logvar[:, ~below], beta * (logvar[:, ~below].exp() - 1) / (2 * n),
                                   rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------------ the models' loss
@pytest.mark.parametrize("name", ["vae", "cvae"])
@pytest.mark.parametrize("config", [{}, {"beta": 1.0, "free_bits": 0.0}, {"beta": 1, "free_bits": 0}])
def test_default_loss_is_the_negative_elbo_bit_for_bit(name, config):
    """beta = 1 and no free bits: the loss is -ELBO, computed exactly as before (bit for bit, the same draw of z),
    and within rounding of a float64 oracle from probabilities and torch.distributions."""
    model = small(name, **config).train()
    x, y = batch()
    y = y if model.conditional else None
    torch.manual_seed(5)
    terms = model.loss(x, y)
    torch.manual_seed(5)
    mu, logvar = model.posterior(x, y)
    z = losses.reparameterize(mu, logvar)
    before = losses.elbo(x, model.decoder(z, y), mu, logvar)         # the loss as it was: -ELBO, batch mean
    assert torch.equal(terms["loss"], -before.elbo.mean())
    assert torch.equal(terms["recon"], -before.log_likelihood.mean())
    assert torch.equal(terms["kl"], before.kl.mean())
    recon, kl = oracle_negative_elbo(model, x, y, z, mu, logvar)
    assert terms["loss"].item() == pytest.approx((recon + kl).mean().item(), rel=1e-5)


@pytest.mark.parametrize("name", ["vae", "cvae"])
@pytest.mark.parametrize("beta, free_bits", [(4.0, 0.0), (0.25, 0.0), (20.0, 0.05), (2.0, 10.0)])
def test_loss_is_recon_plus_beta_times_the_floored_kl_and_the_reported_terms_stay_true(name, beta, free_bits):
    model = small(name, beta=beta, free_bits=free_bits).train()
    x, y = batch()
    y = y if model.conditional else None
    torch.manual_seed(6)
    terms = model.loss(x, y)
    torch.manual_seed(6)
    mu, logvar = model.posterior(x, y)
    recon, kl = oracle_negative_elbo(model, x, y, losses.reparameterize(mu, logvar), mu, logvar)
    kl_j = oracle_kl_per_dimension(mu, logvar).mean(0)
    penalty = sum(max(free_bits, k) for k in kl_j.tolist())
    # the reported terms: the true -E_q log p(x|z) and the true KL, whatever beta and free_bits are
    assert terms["recon"].item() == pytest.approx(recon.mean().item(), rel=1e-5)
    assert terms["kl"].item() == pytest.approx(kl.mean().item(), rel=1e-5)
    # what is minimised
    assert terms["loss"].item() == pytest.approx(recon.mean().item() + beta * penalty, rel=1e-5)
    if free_bits == 10.0:     # far above every dimension's KL: the penalty is the constant beta * d * lambda
        assert terms["loss"].item() == pytest.approx(terms["recon"].item() + beta * 2 * 10.0, rel=1e-6)


def _grads(value, params):
    return torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)


@pytest.mark.parametrize("beta", [0.1, 3.0, 50.0])
def test_beta_scales_the_kl_gradient_by_beta(beta):
    """d loss / d theta = d recon / d theta + beta * d KL / d theta, for every parameter (encoder and decoder)."""
    model = small("vae", beta=beta).train()
    x, _ = batch()
    terms = model.loss(x)
    params = list(model.parameters())
    for g_loss, g_recon, g_kl, p in zip(_grads(terms["loss"], params), _grads(terms["recon"], params),
                                        _grads(terms["kl"], params), params):
        g_kl = torch.zeros_like(p) if g_kl is None else g_kl      # the decoder does not touch the KL
        torch.testing.assert_close(g_loss, g_recon + beta * g_kl, rtol=1e-4, atol=1e-6)
    assert any(g is not None and g.abs().sum() > 0 for g in _grads(terms["kl"], params))


def test_free_bits_switch_off_the_kl_gradient_of_each_dimension_below_the_floor():
    """The encoder's last layer has one row per mu_j and per logvar_j. With the floor between the dimensions' KLs,
    the gradient of (loss - recon) reaches the rows of the dimensions above the floor only, as beta * d KL_j."""
    d, beta = 6, 5.0
    x, _ = batch(32)
    plain = small("vae", latent_dim=d).train()
    with torch.no_grad():
        kl_j = losses.gaussian_kl_per_dimension(*plain.posterior(x)).mean(0)
    order = kl_j.sort().values
    free_bits = float((order[2] + order[3]) / 2)          # three dimensions below the floor, three above
    model = small("vae", latent_dim=d, beta=beta, free_bits=free_bits).train()
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), model.state_dict().values()))
    last = model.encoder.net[-1]
    terms = model.loss(x)
    (g_penalty,) = _grads(terms["loss"] - terms["recon"], [last.weight])
    mu, logvar = model.posterior(x)
    per_dim = losses.gaussian_kl_per_dimension(mu, logvar).mean(0)
    below = (kl_j < free_bits).tolist()
    assert sum(below) == 3
    for j in range(d):
        rows = g_penalty[[j, d + j]]
        if below[j]:
            assert torch.equal(rows, torch.zeros_like(rows)), f"dimension {j} is below the floor"
        else:
            (g_kl_j,) = _grads(per_dim[j], [last.weight])
            torch.testing.assert_close(rows, beta * g_kl_j[[j, d + j]], rtol=1e-5, atol=1e-7)
            assert rows.abs().sum() > 0


def test_free_bits_at_a_huge_beta_keep_the_rate_that_the_same_run_without_them_collapses():
    """500 digits, beta = 50: without free bits every dimension's KL goes to ~0 (posterior collapse); the same run
    with lambda = 0.5 keeps every dimension alive, a rate of the order of d * lambda = 2 nats. (The rate settles
    below the floor: a batch whose mean KL is above it is pushed back hard by beta, one below it only gently, by the
    reconstruction alone. On the first 500 digits of the offline split, seeds 0-2 gave 1.74-1.92 nats with free bits,
    0.013-0.015 without, when the split was sorted by digit (500 zeros); 1.46 (dimensions 0.30-0.46) since it is
    shuffled.)"""
    x = aelib.data.load_offline().train_x[:500]
    d, free_bits, rates = 4, 0.5, {}
    for lam in (0.0, free_bits):
        model = small("vae", latent_dim=d, beta=50.0, free_bits=lam, hidden_dims=(128,))
        history = aelib.fit(model, x, epochs=20, batch_size=64, progress=False)
        torch.manual_seed(0)
        rates[lam] = evaluate.rate_distortion(model, x)
        assert history[-1]["kl"] == pytest.approx(rates[lam]["rate"], abs=0.3)   # "kl" is the true KL
    collapsed, kept = rates[0.0], rates[free_bits]
    assert collapsed["rate"] < 0.05 and max(collapsed["rate_per_dimension"]) < 0.02, collapsed
    assert 0.5 * d * free_bits < kept["rate"] < 1.25 * d * free_bits, kept
    assert min(kept["rate_per_dimension"]) > 0.4 * free_bits, kept
    # the code is used: its nats buy more than their worth in distortion (5.3 nats for 1.46 on the shuffled split)
    assert collapsed["distortion"] - kept["distortion"] > 2 * kept["rate"], (kept, collapsed)


# ------------------------------------------------------------------------------------ config, errors, checkpoints
def test_beta_and_free_bits_are_config_fields():
    model = aelib.build("vae", latent_dim=2, beta=4.0, free_bits=0.5)
    assert (model.config.beta, model.config.free_bits) == (4.0, 0.5)
    assert model.config.to_dict()["beta"] == 4.0 and model.config.to_dict()["free_bits"] == 0.5
    assert type(aelib.build("cvae", beta=2, free_bits=1).config.beta) is float
    assert evaluate.describe(model) == "vae d=2 beta=4 free_bits=0.5"
    assert evaluate.describe(aelib.build("vae")) == "vae d=2"


@pytest.mark.parametrize("config, message", [
    ({"beta": "2"}, r"beta must be a positive finite number, got '2' \(a str\)"),
    ({"beta": float("nan")}, "beta must be a positive finite number, got nan"),
    ({"beta": float("inf")}, "beta must be a positive finite number, got inf"),
    ({"beta": 0.0}, "beta must be a positive finite number"),
    ({"beta": -1.0}, "beta must be a positive finite number, got -1.0"),
    ({"beta": True}, "beta must be a positive finite number, got True"),
    ({"beta": None}, "beta must be a positive finite number, got None"),
    ({"free_bits": -0.5}, "free_bits must be a finite number of at least 0, got -0.5"),
    ({"free_bits": float("nan")}, "free_bits must be a finite number of at least 0, got nan"),
    ({"free_bits": float("inf")}, "free_bits must be a finite number of at least 0"),
    ({"free_bits": "0.5"}, r"free_bits must be a finite number of at least 0, got '0.5' \(a str\)"),
    ({"free_bits": False}, "free_bits must be a finite number of at least 0, got False"),
    ({"free_bits": [0.5]}, "free_bits must be a finite number of at least 0"),
])
def test_bad_beta_and_free_bits_are_a_clear_error(config, message):
    with pytest.raises(AelibError, match=message):
        aelib.build("vae", **config)


@pytest.mark.parametrize("name", ["ae", "aae", "caae"])
@pytest.mark.parametrize("config", [{"beta": 4.0}, {"free_bits": 0.5}])
def test_models_without_a_kl_term_refuse_beta_and_free_bits(name, config):
    with pytest.raises(AelibError, match=f"'vae' and 'cvae' only; '{name}' has no KL term"):
        aelib.build(name, **config)
    assert aelib.build(name, beta=1.0, free_bits=0.0).config.beta == 1.0     # the defaults are fine


def test_rate_distortion_needs_a_kl():
    with pytest.raises(AelibError, match="needs a model with an encoder distribution"):
        evaluate.rate_distortion(small("ae"), batch()[0])


def test_beta_and_free_bits_round_trip_through_a_checkpoint(tmp_path):
    model = small("cvae", beta=0.3, free_bits=0.25)
    loaded = aelib.load(aelib.save(model, tmp_path / "m.pt"))
    assert loaded.config == model.config and loaded.config.beta == 0.3 and loaded.config.free_bits == 0.25


def test_an_old_checkpoint_without_beta_and_free_bits_still_loads(tmp_path):
    """A checkpoint written before the fields existed: its config has no 'beta' / 'free_bits' keys."""
    model = small("vae")
    path = aelib.save(model, tmp_path / "old.pt")
    payload = torch.load(path, weights_only=True)
    del payload["config"]["beta"], payload["config"]["free_bits"]
    torch.save(payload, path)
    loaded = aelib.load(path)
    assert (loaded.config.beta, loaded.config.free_bits) == (1.0, 0.0)
    x = batch()[0]
    assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))


@pytest.mark.parametrize("edit, message", [({"beta": "1"}, "beta must be a positive finite number"),
                                           ({"free_bits": -1.0}, "free_bits must be a finite number of at least 0"),
                                           ({"name": "ae", "beta": 2.0}, "'vae' and 'cvae' only")])
def test_a_checkpoint_with_a_bad_beta_or_free_bits_is_a_checkpoint_error(tmp_path, edit, message):
    model = small("ae" if edit.get("name") == "ae" else "vae")
    path = aelib.save(model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"].update(edit)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        aelib.load(path)


# ------------------------------------------------------------------------------- rate and distortion, held out
def test_rate_distortion_matches_an_oracle_and_the_elbo():
    model = small("vae", latent_dim=3)
    for p in model.parameters():    # away from the initialisation, so that the rate is not ~0
        p.data.add_(0.05 * torch.randn_like(p))
    x, _ = batch(40)
    torch.manual_seed(7)
    rd = evaluate.rate_distortion(model, x)
    torch.manual_seed(7)
    with torch.no_grad():
        mu, logvar = model.posterior(x)
        recon, kl = oracle_negative_elbo(model, x, None, losses.reparameterize(mu, logvar), mu, logvar)
    assert rd["rate"] == pytest.approx(kl.mean().item(), rel=1e-6)
    assert rd["distortion"] == pytest.approx(recon.mean().item(), rel=1e-6)
    assert rd["rate_per_dimension"] == pytest.approx(oracle_kl_per_dimension(mu, logvar).mean(0).tolist(), rel=1e-6)
    assert math.fsum(rd["rate_per_dimension"]) == pytest.approx(rd["rate"], rel=1e-12)
    assert rd["negative_elbo"] == pytest.approx(rd["rate"] + rd["distortion"], rel=1e-12)
    torch.manual_seed(7)
    assert rd["negative_elbo"] == pytest.approx(-evaluate.elbo(model, x).mean().item(), rel=1e-6)
    assert rd["rate"] > 0.1


def test_rate_distortion_of_a_cvae_uses_the_labels_and_more_samples_reduce_the_noise():
    model = small("cvae")
    x, y = batch(20)
    torch.manual_seed(0)
    a = evaluate.rate_distortion(model, x, y, samples=50)
    torch.manual_seed(1)
    b = evaluate.rate_distortion(model, x, y, samples=50)
    assert a["rate"] == b["rate"]                       # the rate is in closed form: no sampling
    assert a["distortion"] == pytest.approx(b["distortion"], rel=2e-3)
    with torch.no_grad():
        mu, logvar = model.posterior(x, y)
    assert a["rate"] == pytest.approx(oracle_kl_per_dimension(mu, logvar).sum(1).mean().item(), rel=1e-6)
    with pytest.raises(AelibError, match="conditional"):
        evaluate.rate_distortion(model, x)


# ------------------------------------------------------------------------------------------------ command line
def test_the_train_command_takes_beta_and_free_bits():
    from aelib.cli import make_parser, model_from_args

    model = model_from_args(make_parser().parse_args(["train", "cvae", "--beta", "4", "--free-bits", "0.5"]))
    assert (model.name, model.config.beta, model.config.free_bits) == ("cvae", 4.0, 0.5)


@pytest.mark.parametrize("argv, message", [
    (["train", "vae", "--beta", "nan"], "--beta must be a positive finite number, got nan"),
    (["train", "vae", "--beta", "0"], "--beta must be a positive finite number"),
    (["train", "vae", "--free-bits", "-1"], "--free-bits must be a finite number of at least 0, got -1.0"),
    (["train", "ae", "--beta", "4"], "'vae' and 'cvae' only; 'ae' has no KL term"),
])
def test_bad_beta_or_free_bits_on_the_command_line_is_exit_code_2_before_training(argv, message, capsys, tmp_path):
    from aelib.cli import main

    assert main(argv + ["--out", str(tmp_path / "m.pt"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()
