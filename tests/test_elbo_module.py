"""aelib.elbo (notebook 02's library code) checked against independent oracles.

Oracles: torch.distributions (MultivariateNormal, kl_divergence), brute-force numerical integration over a 1-D
latent, closed-form variances of the two gradient estimators, and the definitions of the reductions.
"""
from __future__ import annotations

import math

import matplotlib
import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

import aelib
from aelib import losses
from aelib.course import elbo_lab

matplotlib.use("Agg")
f64 = torch.float64


def _mvn_evidence(toy: elbo_lab.LinearGaussian) -> MultivariateNormal:
    cov = toy.W @ toy.W.T + toy.noise_std ** 2 * torch.eye(toy.D, dtype=f64)
    return MultivariateNormal(toy.b, covariance_matrix=cov)


# ----------------------------------------------------------------------------------- the toy model is exact
@pytest.mark.parametrize("diagonal", [True, False])
def test_log_evidence_matches_multivariate_normal(diagonal):
    toy = elbo_lab.LinearGaussian.random(D=5, d=3, noise_std=0.6, diagonal_posterior=diagonal, seed=1)
    x = toy.sample(50, torch.Generator().manual_seed(2))
    assert x.shape == (50, 5) and x.dtype == f64
    torch.testing.assert_close(toy.log_evidence(x), _mvn_evidence(toy).log_prob(x), rtol=1e-12, atol=1e-12)


def test_log_evidence_and_posterior_match_numerical_integration_in_1d():
    """d = 1: p(x) = integral of p(x|z) p(z) dz, and the posterior's mean and variance, on a fine grid of z."""
    toy = elbo_lab.LinearGaussian.random(D=3, d=1, noise_std=0.8, seed=3)
    x = toy.sample(4, torch.Generator().manual_seed(4))
    z = torch.linspace(-12, 12, 40_001, dtype=f64)
    log_joint = toy.log_likelihood(x, z.view(-1, 1, 1)) + losses.gaussian_log_density(z.view(-1, 1, 1))  # (G, N)
    joint = log_joint.exp()
    px = torch.trapezoid(joint, z, dim=0)
    torch.testing.assert_close(toy.log_evidence(x), px.log(), rtol=1e-9, atol=1e-9)
    mean, cov = toy.posterior(x)
    post_mean = torch.trapezoid(joint * z.view(-1, 1), z, dim=0) / px
    post_var = torch.trapezoid(joint * (z.view(-1, 1) - post_mean) ** 2, z, dim=0) / px
    torch.testing.assert_close(mean[:, 0], post_mean, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(cov[0, 0].expand(4), post_var, rtol=1e-8, atol=1e-10)


def test_diagonal_posterior_option():
    toy = elbo_lab.LinearGaussian.random(D=6, d=3, diagonal_posterior=True, seed=5)
    _, cov = toy.posterior(toy.sample(2))
    assert (cov - torch.diag(torch.diagonal(cov))).abs().max() < 1e-12
    _, cov = elbo_lab.LinearGaussian.random(D=6, d=3, diagonal_posterior=False, seed=5).posterior(toy.sample(2))
    assert (cov - torch.diag(torch.diagonal(cov))).abs().max() > 1e-4


# --------------------------------------------------------------------------------- the ELBO identities
@pytest.mark.parametrize("diagonal", [True, False])
def test_gap_is_kl_to_posterior(diagonal):
    """log p(x) - ELBO == KL(q || p(z|x)) (torch.distributions oracle) > 0 for random q; ELBO_mc agrees with ELBO."""
    toy = elbo_lab.LinearGaussian.random(D=5, d=2, diagonal_posterior=diagonal, seed=6)
    g = torch.Generator().manual_seed(7)
    x = toy.sample(8, g)
    mu, logvar = torch.randn(8, 2, generator=g, dtype=f64), torch.randn(8, 2, generator=g, dtype=f64)
    gap = toy.log_evidence(x) - toy.elbo(x, mu, logvar)
    mean, cov = toy.posterior(x)
    oracle = kl_divergence(MultivariateNormal(mu, covariance_matrix=torch.diag_embed(logvar.exp())),
                           MultivariateNormal(mean, covariance_matrix=cov.expand(8, 2, 2)))
    assert (gap > 0.01).all()
    torch.testing.assert_close(gap, oracle, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(toy.kl_to_posterior(x, mu, logvar), oracle, rtol=1e-9, atol=1e-9)
    samples = 200_000
    log_px_z, log_pz, log_qz = toy.log_weights(x, mu, logvar, samples, g)
    log_w = log_px_z + log_pz - log_qz
    se = log_w.std(0) / math.sqrt(samples)
    assert ((log_w.mean(0) - toy.elbo(x, mu, logvar)).abs() < 5 * se).all()
    # elbo_mc returns the same estimate and, when asked, its standard error
    g1, g2 = torch.Generator().manual_seed(17), torch.Generator().manual_seed(17)
    estimate, est_se = toy.elbo_mc(x, mu, logvar, 50_000, g1, with_se=True)
    torch.testing.assert_close(estimate, toy.elbo_mc(x, mu, logvar, 50_000, g2))
    assert (est_se > 0).all() and ((estimate - toy.elbo(x, mu, logvar)).abs() < 5 * est_se).all()
    # for the exact posterior every log-weight is log p(x): no noise at all
    if diagonal:
        best_mu, best_logvar = toy.best_diagonal_q(x)
        estimate, est_se = toy.elbo_mc(x, best_mu, best_logvar, 1_000, g1, with_se=True)
        torch.testing.assert_close(estimate, toy.log_evidence(x), rtol=0, atol=1e-10)
        assert (est_se < 1e-10).all()


def test_elbo_tight_only_when_the_family_holds_the_posterior():
    toy = elbo_lab.LinearGaussian.random(D=5, d=2, diagonal_posterior=True, seed=8)
    x = toy.sample(5, torch.Generator().manual_seed(9))
    mu, logvar = toy.best_diagonal_q(x)
    torch.testing.assert_close(toy.elbo(x, mu, logvar), toy.log_evidence(x), rtol=0, atol=1e-10)
    assert (toy.elbo(x, mu + 0.1, logvar) < toy.log_evidence(x) - 1e-3).all()
    # correlated posterior: the best diagonal q still leaves a gap, equal to its KL to the posterior
    corr = elbo_lab.LinearGaussian.random(D=5, d=2, diagonal_posterior=False, seed=8)
    mu, logvar = corr.best_diagonal_q(x)
    gap = corr.log_evidence(x) - corr.elbo(x, mu, logvar)
    assert (gap > 1e-4).all()
    torch.testing.assert_close(gap, corr.kl_to_posterior(x, mu, logvar), rtol=1e-9, atol=1e-12)
    # and it is the best: nudging its variances or mean only widens the gap
    for dmu, dlv in ((0.05, 0.0), (0.0, 0.1), (0.0, -0.1)):
        assert (corr.elbo(x, mu + dmu, logvar + dlv) < corr.elbo(x, mu, logvar)).all()


def test_gaussian_kl_full_matches_torch_and_reduces_to_losses_gaussian_kl():
    g = torch.Generator().manual_seed(10)
    A, B = torch.randn(6, 3, 3, generator=g, dtype=f64), torch.randn(6, 3, 3, generator=g, dtype=f64)
    cov0, cov1 = A @ A.mT + 0.1 * torch.eye(3, dtype=f64), B @ B.mT + 0.1 * torch.eye(3, dtype=f64)
    mu0, mu1 = torch.randn(6, 3, generator=g, dtype=f64), torch.randn(6, 3, generator=g, dtype=f64)
    oracle = kl_divergence(MultivariateNormal(mu0, cov0), MultivariateNormal(mu1, cov1))
    torch.testing.assert_close(elbo_lab.gaussian_kl_full(mu0, cov0, mu1, cov1), oracle, rtol=1e-9, atol=1e-9)
    logvar = torch.randn(6, 3, generator=g, dtype=f64)
    torch.testing.assert_close(elbo_lab.gaussian_kl_full(mu0, torch.diag_embed(logvar.exp()), torch.zeros(3, dtype=f64),
                                                     torch.eye(3, dtype=f64)),
                               losses.gaussian_kl(mu0, logvar), rtol=1e-10, atol=1e-10)


def test_iwae_rises_towards_log_evidence():
    toy = elbo_lab.LinearGaussian.random(D=5, d=2, seed=11)
    g = torch.Generator().manual_seed(12)
    x = toy.sample(1, g).expand(400, -1)
    mu = torch.zeros(400, 2, dtype=f64)
    logvar = torch.zeros(400, 2, dtype=f64)                                  # q = the prior: a poor q
    log_px = toy.log_evidence(x[:1]).item()
    means = {k: toy.iwae(x, mu, logvar, k, g).mean().item() for k in (1, 10, 100, 2000)}
    assert means[1] < means[10] < means[100] < log_px + 0.05
    assert abs(means[2000] - log_px) < 0.1
    assert log_px - toy.elbo(x[:1], mu[:1], logvar[:1]).item() > 1.0             # the ELBO gap is real


# ------------------------------------------------------------------------------------ gradient estimators
def test_gradient_estimators_are_unbiased_with_the_predicted_variances():
    """f(z) = (z - 2)^2, mu = 0, sigma = 1: gradient 2(mu - 2) = -4; variances 4 sigma^2 = 4 and 87 (E[eps^6]...)."""
    est = elbo_lab.gradient_estimates(lambda z: (z - 2) ** 2, mu=0.0, sigma=1.0, n_estimates=400_000, seed=13)
    for values in est.values():
        assert values.shape == (400_000,)
        assert abs(values.mean().item() + 4) < 5 * values.std().item() / math.sqrt(len(values))
    assert est["reparameterisation"].var().item() == pytest.approx(4.0, rel=0.02)
    assert est["score function"].var().item() == pytest.approx(87.0, rel=0.08)
    # averaging 10 samples per estimate divides the variance by 10
    ten = elbo_lab.gradient_estimates(lambda z: (z - 2) ** 2, mu=0.0, sigma=1.0, n_estimates=100_000, samples=10, seed=14)
    assert ten["reparameterisation"].var().item() == pytest.approx(0.4, rel=0.03)


# --------------------------------------------------------------------------------- the mean-reduced loss
def test_mean_reduced_elbo_is_recon_over_784_plus_kl_over_d():
    g = torch.Generator().manual_seed(15)
    for d in (2, 16):
        x = torch.rand(7, 1, 28, 28, generator=g, dtype=f64)
        logits = 3 * torch.randn(7, 1, 28, 28, generator=g, dtype=f64)
        mu, logvar = torch.randn(7, d, generator=g, dtype=f64), torch.randn(7, d, generator=g, dtype=f64)
        terms = losses.elbo(x, logits, mu, logvar)
        recon, kl = -terms.log_likelihood.mean(), terms.kl.mean()
        flawed = -elbo_lab.mean_reduced_elbo(x, logits, mu, logvar)
        torch.testing.assert_close(flawed, recon / 784 + kl / d, rtol=1e-12, atol=1e-12)
        # the same thing as (recon + (784 / d) KL) / 784: a hidden KL weight of 784 / d
        torch.testing.assert_close(flawed, (recon + elbo_lab.hidden_kl_weight(d) * kl) / 784, rtol=1e-12, atol=1e-12)
    assert elbo_lab.hidden_kl_weight(2) == 392 and elbo_lab.hidden_kl_weight(16) == 49


def test_mean_reduced_vae_loss_and_training(offline_data):
    model = elbo_lab.MeanReducedVAE(latent_dim=2, hidden_dims=(32,))
    assert isinstance(model, aelib.VAE) and model.name == "vae" and model.config.name == "vae"
    x = offline_data.train_x[:16]
    torch.manual_seed(0)
    terms = model.loss(x)
    torch.manual_seed(0)
    mu, logvar = model.posterior(x)
    z = losses.reparameterize(mu, logvar)
    logits = model.decoder(z)
    ref = losses.elbo(x, logits, mu, logvar)
    torch.testing.assert_close(terms["loss"], -elbo_lab.mean_reduced_elbo(x, logits, mu, logvar))
    torch.testing.assert_close(terms["recon"], -ref.log_likelihood.mean())
    torch.testing.assert_close(terms["kl"], ref.kl.mean())
    torch.testing.assert_close(terms["loss"], terms["recon"] / 784 + terms["kl"] / 2)
    history = aelib.fit(model, offline_data.train_x[:256], epochs=1, progress=False)
    assert set(history[0]) == {"loss", "recon", "kl"} and all(math.isfinite(v) for v in history[0].values())
    kl = elbo_lab.kl_per_dimension(model, offline_data.test_x[:50])
    assert kl.shape == (2,) and (kl >= 0).all()
    mu, logvar = model.posterior(model.check_inputs(offline_data.test_x[:50])[0])
    torch.testing.assert_close(kl.sum(), losses.gaussian_kl(mu, logvar).mean().detach(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ the checkers
def test_check_kl_accepts_aelib_and_rejects_wrong_kls(capsys):
    assert elbo_lab.check_kl(losses.gaussian_kl) is True
    assert "PASS" in capsys.readouterr().out
    mean_over_dims = lambda mu, logvar: 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).mean(1)
    assert elbo_lab.check_kl(mean_over_dims) is False
    out = capsys.readouterr().out
    assert "FAIL" in out and "mean over the latent dimensions" in out
    assert elbo_lab.check_kl(lambda mu, logvar: (mu ** 2 + logvar.exp() - logvar - 1).sum(1)) is False   # no 1/2
    assert "twice" in capsys.readouterr().out
    assert elbo_lab.check_kl(lambda mu, logvar: 0.5 * (mu ** 2 + logvar.exp() - logvar - 1)) is False     # no sum
    assert "shape" in capsys.readouterr().out
    assert elbo_lab.check_kl(lambda mu, logvar: 0.5 * (mu ** 2 + logvar - logvar.exp().log() - 1).sum(1)) is False


def test_checkers_report_an_unwritten_function(capsys):
    def stub(mu, logvar):
        raise NotImplementedError

    assert elbo_lab.check_kl(stub) is False
    assert elbo_lab.check_reparameterize(stub) is False
    assert capsys.readouterr().out.count("not written yet") == 2


def test_check_reparameterize_accepts_aelib_and_rejects_wrong_samplers(capsys):
    state = torch.get_rng_state()
    assert elbo_lab.check_reparameterize(losses.reparameterize) is True
    assert torch.equal(torch.get_rng_state(), state)                            # the checker leaves the RNG alone
    assert "PASS" in capsys.readouterr().out
    wrong = {
        "std": lambda mu, logvar: mu + logvar.exp() * torch.randn_like(mu),                # exp(logvar) is sigma^2
        "mean": lambda mu, logvar: mu + torch.exp(0.5 * logvar) * torch.rand_like(mu),     # uniform noise
        "gradient": lambda mu, logvar: torch.normal(mu.detach(), torch.exp(0.5 * logvar.detach())),
        "random": lambda mu, logvar: mu.clone(),                                            # no noise at all
        "shape": lambda mu, logvar: (mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)).sum(1),
    }
    for what, fn in wrong.items():
        assert elbo_lab.check_reparameterize(fn) is False, what
        assert "FAIL" in capsys.readouterr().out


# ------------------------------------------------------------------------------- the plots notebook 02 uses
def test_new_plotting_functions_draw():
    import matplotlib.pyplot as plt

    from aelib import plotting

    fig = plotting.lines([1, 2, 3], {"a": [1, 2, 3], "b": torch.tensor([3.0, 2, 1])}, styles={"b": "o"},
                         hlines={"target": 2.5}, logx=True, xlabel="k")
    assert len(fig.axes[0].lines) == 3
    fig2 = plotting.histograms({"a": torch.randn(500), "b": 2 * torch.randn(500)}, vlines={"zero": 0.0})
    assert fig2.axes[0].get_ylabel() == "density"
    models = {"vae": aelib.build("vae", latent_dim=2, hidden_dims=(16,)),
              "cvae": aelib.build("cvae", latent_dim=2, hidden_dims=(16,))}
    x, y = torch.rand(40, 1, 28, 28), torch.arange(40) % 10
    fig3 = plotting.compare_models(models, x, y, n_recon=5, n_samples=10)
    assert len(fig3.axes) >= 6
    plt.close("all")
