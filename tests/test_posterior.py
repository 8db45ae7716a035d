"""aelib.course.posterior (the true posterior of a 2-D VAE) checked against oracles.

Oracles: the exact evidence and posterior of aelib.elbo.LinearGaussian with d = 2 (the grid must agree to 1e-9
nats and 1e-9 in the moments, and its refinement error must bound its true error); for a trained VAE, where nothing
is exact: the chain ELBO <= IWAE_k <= log p(x) from aelib.evaluate's independent Monte Carlo code, IWAE_k close
below log p(x), a self-normalised importance-sampling estimate of the posterior mean, and normalisation.
"""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

import aelib
from aelib import losses
from aelib.course import elbo_lab
from aelib.course import posterior as P

f64 = torch.float64
EXACT = 1e-9        # nats (log p(x)) and z units (posterior moments) on the linear-Gaussian model, n = 64


def _toy(diagonal: bool = False) -> elbo_lab.LinearGaussian:
    return elbo_lab.LinearGaussian.random(D=5, d=2, noise_std=0.5, diagonal_posterior=diagonal, seed=1)


def _log_joint(toy: elbo_lab.LinearGaussian, x: torch.Tensor) -> P.LogJoint:
    return lambda z: toy.log_likelihood(x, z) + losses.gaussian_log_density(z)


def _data(toy, n: int = 6):
    x = toy.sample(n, torch.Generator().manual_seed(2))
    return x, _log_joint(toy, x)


# ------------------------------------------------------------------------------ exact on the linear-Gaussian
@pytest.mark.parametrize("diagonal", [True, False])
def test_grid_log_evidence_is_exact_on_the_linear_gaussian_model(diagonal):
    toy = _toy(diagonal)
    x, log_joint = _data(toy)
    ev = P.log_evidence(log_joint, *P.default_box(*toy.best_diagonal_q(x)), n=64)
    assert ((ev.log_px - toy.log_evidence(x)).abs() < EXACT).all()
    assert (ev.error < EXACT).all() and (ev.edge_mass < 1e-12).all()


def test_refinement_error_bounds_the_true_error():
    """|L_2n - exact| <= |L_2n - L_n| from a coarse grid (4 cells per axis, error ~1e-2) to a fine one (1e-8)."""
    toy = _toy()
    x, log_joint = _data(toy)
    box = P.default_box(*toy.best_diagonal_q(x))
    errors = []
    for n in (4, 6, 8, 12, 16):
        ev = P.log_evidence(log_joint, *box, n=n)
        true_error = (ev.log_px - toy.log_evidence(x)).abs()
        assert (true_error <= ev.error).all(), n
        errors.append(ev.error.max().item())
    assert errors == sorted(errors, reverse=True) and errors[0] > 1e-2 and errors[-1] < 1e-7


def test_grid_posterior_moments_match_the_exact_posterior():
    toy = _toy(diagonal=False)
    x, log_joint = _data(toy)
    ev = P.log_evidence(log_joint, *P.default_box(*toy.best_diagonal_q(x)), n=64, keep=True)
    mean, cov = P.grid_moments(ev.values, ev.lo, ev.hi)
    exact_mean, exact_cov = toy.posterior(x)
    assert exact_cov[0, 1].abs() > 0.01                       # a correlated posterior, which no diagonal q matches
    torch.testing.assert_close(mean, exact_mean, rtol=0, atol=EXACT)
    torch.testing.assert_close(cov, exact_cov.expand_as(cov), rtol=0, atol=EXACT)
    # log p(x, z) - log p(x) on the grid is the exact log posterior density
    post = torch.distributions.MultivariateNormal(exact_mean.view(-1, 1, 1, 2), exact_cov)
    z1, z2 = P._axes(ev.lo, ev.hi, 128)
    zz = torch.stack(torch.broadcast_tensors(z1.unsqueeze(1), z2.unsqueeze(2)), dim=-1)
    torch.testing.assert_close(ev.values - ev.log_px.view(-1, 1, 1), post.log_prob(zz), rtol=0, atol=1e-8)


def test_a_wrong_q_does_not_lose_the_mass():
    """q far from the posterior and too narrow: the prior's bulk in the search box still finds it; a posterior
    outside the prior's bulk (z1 ~ 5.5) is found by growing the search box."""
    toy = _toy(diagonal=True)
    z = torch.tensor([[1.0, -2.0], [5.5, 0.0]], dtype=f64)
    x = z @ toy.W.T + toy.b                                     # the posterior sits near z
    mu, logvar = torch.zeros(2, 2, dtype=f64), torch.full((2, 2), math.log(0.1 ** 2), dtype=f64)
    lo, hi = P.default_box(mu, logvar)
    assert (lo == -4).all() and (hi == 4).all()
    ev = P.log_evidence(_log_joint(toy, x), lo, hi, n=64)
    assert ((ev.log_px - toy.log_evidence(x)).abs() < EXACT).all()
    assert ev.hi[1, 0] > 6 and ev.edge_mass.max() < 1e-9


def test_chunking_bounds_memory_without_changing_the_answer():
    toy = _toy()
    x, log_joint = _data(toy, 3)
    calls = []

    def counted(z):
        calls.append(z.shape[0] * z.shape[1])
        return log_joint(z)

    box = P.default_box(*toy.best_diagonal_q(x))
    small = P.grid_log_evidence(counted, *box, n=40, max_points=100)
    assert max(calls) <= 100 and len(calls) == math.ceil(40 * 40 / 33)
    torch.testing.assert_close(small, P.grid_log_evidence(log_joint, *box, n=40), rtol=0, atol=1e-12)
    values = P.grid_log_joint(log_joint, *box, n=40, max_points=100)
    torch.testing.assert_close(values, P.grid_log_joint(log_joint, *box, n=40), rtol=0, atol=0)


def test_bad_grids_raise():
    log_joint = _data(_toy())[1]
    lo, hi = -torch.ones(6, 2), torch.ones(6, 2)
    with pytest.raises(aelib.AelibError, match="lo < hi"):
        P.grid_log_evidence(log_joint, hi, lo, n=8)
    with pytest.raises(aelib.AelibError, match="n \\(cells per axis\\)"):
        P.grid_log_evidence(log_joint, lo, hi, n=1)


def test_ellipse_points_lie_at_the_stated_mahalanobis_distance():
    mean = torch.tensor([[0.5, -1.0], [0.0, 0.0]], dtype=f64)
    cov = torch.tensor([[[2.0, 0.8], [0.8, 0.5]], [[0.04, 0.0], [0.0, 0.09]]], dtype=f64)
    e = P.ellipse(mean, cov, sds=2.0)
    t = torch.linspace(0, 2 * math.pi, 50, dtype=f64)
    angle = torch.deg2rad(e["angle"]).view(-1, 1)
    a, b = (e["width"] / 2).view(-1, 1), (e["height"] / 2).view(-1, 1)   # as matplotlib.patches.Ellipse draws it
    px = a * torch.cos(t) * torch.cos(angle) - b * torch.sin(t) * torch.sin(angle)
    py = a * torch.cos(t) * torch.sin(angle) + b * torch.sin(t) * torch.cos(angle)
    d = torch.stack([px, py], -1)                                          # offsets from the centre, (2, 50, 2)
    mahalanobis = torch.einsum("ntj,njk,ntk->nt", d, torch.linalg.inv(cov), d)
    torch.testing.assert_close(mahalanobis, torch.full_like(mahalanobis, 4.0), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(e["angle"][1], torch.tensor(90.0, dtype=f64))  # the diagonal q of a VAE: upright
    torch.testing.assert_close(e["height"][1], torch.tensor(0.8, dtype=f64))


# -------------------------------------------------------------------------------------- a trained VAE
@pytest.fixture(scope="module")
def vae_and_digits():
    data = aelib.data.load_offline()
    model = aelib.build("vae", latent_dim=2, hidden_dims=(128,))
    aelib.fit(model, data, epochs=1, progress=False)
    return model, data.test_x[:4]


@pytest.mark.slow
def test_elbo_below_iwae_below_grid_log_evidence(vae_and_digits):
    """ELBO <= IWAE_1000 <= log p(x). After one epoch q(z|x) is poor (gaps of 5-50 nats), so the importance weights
    are heavy-tailed and one draw of IWAE_1000 can exceed log p(x) (by up to ~1 nat in 30 draws); its *mean* may
    not. So: the mean of 20 draws <= log p(x) + refinement error + 3 standard errors of that mean, and, for the
    digits whose gap is under 10 nats (where IWAE_1000's bias is small; a 69-nat gap left it 7.7 nats short), within
    2 nats below log p(x) (a grid that overshot would fail this)."""
    model, x = vae_and_digits
    chain = P.bound_chain(model, x, ks=(1000,), elbo_samples=1000)
    assert (chain.elbo <= chain.iwae[1000]).all()
    assert (chain.error < 1e-2).all()
    torch.testing.assert_close(chain.gap, chain.log_px - chain.elbo)
    assert (chain.gap > 0).all()
    draws = torch.stack([aelib.evaluate.log_likelihood(model, x, k=1000).double() for _ in range(20)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert (mean <= chain.log_px + chain.error + 3 * se).all()
    close = chain.gap < 10
    assert close.sum() >= 2, f"too few well-fitted digits to check against: gaps {chain.gap.tolist()}"
    assert (chain.log_px - mean < 2.0)[close].all()


@pytest.mark.slow
def test_true_posterior_is_normalised_and_matches_importance_sampling(vae_and_digits):
    """p(z|x) integrates to 1 on its grid. Independent check of log p(x) and of the posterior mean: importance
    sampling with 20,000 draws from a defensive mixture (the grid posterior's Gaussian fit with twice its
    covariance, q(z|x) with four times its variance, the prior), through the float32 decoder; they must agree to
    5 standard errors (from the effective sample size)."""
    model, x = vae_and_digits
    post = P.true_posterior(model, x, n=48)
    assert post.density.shape == (4, 96, 96) and (post.density >= 0).all()
    total = post.density.flatten(1).sum(1) * post.cell_area
    torch.testing.assert_close(total, torch.ones(4, dtype=f64), rtol=0, atol=1e-9)
    torch.testing.assert_close(post.log_px, P.vae_evidence(model, x, n=48, show_q_sds=2.5).log_px, rtol=0, atol=1e-9)
    q_sd = post.q_var.sqrt()                                  # the heat map's box holds q's 2-sd ellipse
    assert (post.z1[:, 0] < post.q_mean[:, 0] - 2 * q_sd[:, 0]).all()
    assert (post.z2[:, -1] > post.q_mean[:, 1] + 2 * q_sd[:, 1]).all()

    k, eye = 20_000, torch.eye(2, dtype=f64).expand(4, 2, 2)
    components = torch.distributions.MultivariateNormal(
        torch.stack([post.mean, post.q_mean, torch.zeros(4, 2, dtype=f64)], 1),
        torch.stack([2 * post.cov, 4 * post.q_cov, eye], 1))
    proposal = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.tensor([0.5, 0.4, 0.1], dtype=f64).expand(4, 3)), components)
    torch.manual_seed(0)
    z = proposal.sample((k,))                                                            # (k, 4, 2)
    with torch.no_grad():
        logits = model.decoder(z.float().reshape(-1, 2))
    log_px_z = losses.bernoulli_log_likelihood(logits, x.repeat(k, 1, 1, 1)).view(k, 4).double()
    log_w = log_px_z + losses.gaussian_log_density(z) - proposal.log_prob(z)
    w = torch.softmax(log_w, 0)
    ess = 1 / w.pow(2).sum(0)
    assert (ess > 1000).all()
    log_px = torch.logsumexp(log_w, 0) - math.log(k)
    assert ((log_px - post.log_px).abs() <= 5 / ess.sqrt() + post.error).all()
    mean = torch.einsum("kn,knj->nj", w, z)
    assert ((mean - post.mean).abs() <= 5 * (torch.diagonal(post.cov, dim1=1, dim2=2) / ess.unsqueeze(1)).sqrt()).all()


@pytest.mark.parametrize("name, latent_dim, message", [("vae", 3, "latent_dim=3"), ("ae", 2, "'ae'"),
                                                       ("cvae", 2, "'cvae'")])
def test_only_a_2d_vae_has_a_grid_posterior(name, latent_dim, message):
    model = aelib.build(name, latent_dim=latent_dim, hidden_dims=(16,))
    x = torch.rand(2, 1, 28, 28)
    for fn in (P.true_posterior, P.vae_evidence, P.bound_chain):
        with pytest.raises(aelib.AelibError, match=message):
            fn(model, x)


def test_posterior_is_a_lazy_submodule():
    code = "import sys, aelib; assert 'aelib.course.posterior' not in sys.modules; aelib.posterior.true_posterior"
    subprocess.run([sys.executable, "-c", code], check=True)
