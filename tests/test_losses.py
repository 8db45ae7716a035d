"""aelib's loss maths checked against independent oracles.

Oracles used: torch.distributions (Normal, MultivariateNormal, kl_divergence), F.binary_cross_entropy on
probabilities, exact float64 softplus formulas, Monte Carlo averages, and a linear-Gaussian latent-variable
model whose evidence log p(x) and posterior p(z|x) are known in closed form.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import MultivariateNormal, Normal, kl_divergence

import aelib
from aelib import evaluate, losses

f64 = torch.float64


def exact_log_bernoulli(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Exact sum_i [x_i log sigmoid(l_i) + (1 - x_i) log sigmoid(-l_i)] in float64, via log sigmoid(l) = -logaddexp(0, -l)."""
    l, x = logits.to(f64).flatten(1), x.to(f64).flatten(1)
    zero = torch.zeros_like(l)
    return -(x * torch.logaddexp(zero, -l) + (1 - x) * torch.logaddexp(zero, l)).sum(1)


# ----------------------------------------------------------------------------------------------- 1. Gaussian KL
def test_gaussian_kl_matches_torch_distributions():
    """gaussian_kl(mu, logvar) == sum_j KL(N(mu_j, sigma_j) || N(0, 1)) from torch.distributions; >= 0; 0 at the prior."""
    torch.manual_seed(0)
    mu = 2 * torch.randn(50, 7, dtype=f64)
    logvar = 3 * torch.randn(50, 7, dtype=f64)
    ours = losses.gaussian_kl(mu, logvar)
    oracle = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1)
    assert ours.shape == (50,)
    torch.testing.assert_close(ours, oracle, rtol=1e-12, atol=1e-12)
    assert (ours >= 0).all()
    assert (ours > 0).all()  # random q is never exactly the prior
    zero = losses.gaussian_kl(torch.zeros(3, 5, dtype=f64), torch.zeros(3, 5, dtype=f64))
    assert torch.equal(zero, torch.zeros(3, dtype=f64))


def test_gaussian_kl_monte_carlo():
    """gaussian_kl == E_q[log q(z) - log p(z)], estimated with 400k samples per distribution (loose tolerance)."""
    torch.manual_seed(1)
    mu = torch.tensor([[0.0, 0.0], [1.5, -0.5], [0.3, 2.0]], dtype=f64)
    logvar = torch.tensor([[0.0, 0.0], [-1.0, 0.5], [0.8, -0.3]], dtype=f64)
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((400_000,))                                                         # (S, N, d)
    log_ratio = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1)              # (S, N)
    mc, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(z))
    ours = losses.gaussian_kl(mu, logvar)
    assert ours[0].item() == 0.0
    assert (ours[1:] > 0.5).all()
    assert ((ours - mc).abs() <= 5 * se + 1e-3).all(), (ours, mc, se)


# ------------------------------------------------------------------------------------- 2. Bernoulli likelihood
def test_bernoulli_log_likelihood_matches_bce_on_probabilities():
    """bernoulli_log_likelihood == -F.binary_cross_entropy(sigmoid(logits), x).sum(pixels), for grey-level x."""
    torch.manual_seed(2)
    logits = 4 * torch.randn(6, 1, 28, 28, dtype=f64)
    x = torch.rand(6, 1, 28, 28, dtype=f64)
    x[:, :, :5] = (x[:, :, :5] > 0.5).to(f64)                                       # some binary pixels too
    ours = losses.bernoulli_log_likelihood(logits, x)
    oracle = -F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum(dim=(1, 2, 3))
    assert ours.shape == (6,)
    torch.testing.assert_close(ours, oracle, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(ours, exact_log_bernoulli(logits, x), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_log_likelihood_extreme_logits(dtype):
    """For logits of +-100 .. +-1000 the result is finite and equals the exact float64 softplus value (clamp-then-log would not)."""
    logits = torch.tensor([[100.0, -100.0, 200.0, -200.0, 1000.0, -1000.0, 30.0, -30.0]], dtype=dtype)
    for x in (torch.zeros_like(logits), torch.ones_like(logits), torch.full_like(logits, 0.25)):
        ours = losses.bernoulli_log_likelihood(logits, x)
        exact = exact_log_bernoulli(logits, x)
        assert torch.isfinite(ours).all()
        torch.testing.assert_close(ours.to(f64), exact, rtol=1e-6, atol=1e-6)
    # x = 0 everywhere: log p = -sum softplus(l) = -(100 + 200 + 1000 + 30) (negative logits contribute ~0)
    assert losses.bernoulli_log_likelihood(logits, torch.zeros_like(logits)).item() == pytest.approx(-1330.0, rel=1e-6)
    # the naive clamp-then-log route really is wrong here (log is clamped at -100), so this test can tell them apart
    naive = -F.binary_cross_entropy(torch.sigmoid(logits), torch.zeros_like(logits), reduction="none").sum(1)
    assert abs(naive.item() - (-1330.0)) > 100
    # and the gradient w.r.t. the logits, x - sigmoid(l), stays finite and exact
    l = logits.clone().requires_grad_(True)
    x = torch.full_like(logits, 0.25)
    losses.bernoulli_log_likelihood(l, x).sum().backward()
    torch.testing.assert_close(l.grad, x - torch.sigmoid(logits))


# ------------------------------------------------------------------------------------------ 3. Gaussian density
def test_gaussian_log_density_matches_normal_log_prob():
    """gaussian_log_density(z, mu, logvar) == Normal(mu, exp(logvar / 2)).log_prob(z).sum(-1), incl. defaults and broadcasting."""
    torch.manual_seed(3)
    z = torch.randn(10, 4, 3, dtype=f64) * 2                                        # (k, N, d)
    mu = torch.randn(4, 3, dtype=f64)
    logvar = torch.randn(4, 3, dtype=f64)
    ours = losses.gaussian_log_density(z, mu, logvar)
    oracle = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    assert ours.shape == (10, 4)
    torch.testing.assert_close(ours, oracle, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(losses.gaussian_log_density(z), Normal(0.0, 1.0).log_prob(z).sum(-1), rtol=1e-12, atol=1e-12)
    half, var = torch.tensor(0.5, dtype=f64), torch.tensor(0.3, dtype=f64)        # python-float mu and logvar
    torch.testing.assert_close(losses.gaussian_log_density(z, 0.5, math.log(0.3)),
                               Normal(half, var.sqrt()).log_prob(z).sum(-1), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------- 4. IWAE bound
def test_iwae_bound_k1_and_jensen():
    """iwae_bound with k=1 is log w; for k>1 it is log mean exp(log w) >= mean log w (Jensen), strictly for unequal w."""
    torch.manual_seed(4)
    a, b, c = (torch.randn(1, 9, dtype=f64) * 5 for _ in range(3))
    torch.testing.assert_close(losses.iwae_bound(a, b, c), (a + b - c)[0], rtol=0, atol=1e-12)

    log_px_z, log_pz, log_qz = (torch.randn(50, 9, dtype=f64) * 3 for _ in range(3))
    log_w = log_px_z + log_pz - log_qz
    bound = losses.iwae_bound(log_px_z, log_pz, log_qz)
    assert bound.shape == (9,)
    torch.testing.assert_close(bound, torch.log(torch.exp(log_w).mean(0)), rtol=1e-10, atol=1e-10)
    assert (bound > log_w.mean(0) + 0.1).all()
    # equal weights: no gap, and the 1/k normaliser is right (not log-sum)
    same = torch.full((20, 3), -7.5, dtype=f64)
    torch.testing.assert_close(losses.iwae_bound(same, torch.zeros_like(same), torch.zeros_like(same)),
                               torch.full((3,), -7.5, dtype=f64), rtol=0, atol=1e-12)
    # huge log-weights: still finite (log-sum-exp, not log of a sum of exps)
    assert torch.isfinite(losses.iwae_bound(same * 200, torch.zeros_like(same), torch.zeros_like(same))).all()


def _blobs(n: int, generator: torch.Generator) -> torch.Tensor:
    """n binary 28x28 images, each one or two random discs (thresholded blobs), shape (n, 1, 28, 28)."""
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    img = torch.zeros(n, 28, 28)
    for _ in range(2):
        cy, cx = (torch.rand(n, 1, 1, generator=generator) * 16 + 6 for _ in range(2))
        r = torch.rand(n, 1, 1, generator=generator) * 5 + 3
        img = torch.maximum(img, (((yy - cy) ** 2 + (xx - cx) ** 2) < r ** 2).float())
    return img.unsqueeze(1)


@pytest.fixture(scope="module")
def small_vae():
    """A VAE (latent_dim=2, hidden 64) trained for 150 quick steps on random blobs, plus 32 held-out blobs."""
    torch.manual_seed(5)
    g = torch.Generator().manual_seed(5)
    train, held_out = _blobs(512, g), _blobs(32, g)
    model = aelib.build("vae", latent_dim=2, hidden_dims=(64,))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(150):
        xb = train[(step * 64) % 512:(step * 64) % 512 + 64]
        loss = model.loss(xb)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, held_out


def test_iwae_log_likelihood_increases_with_k_on_a_vae(small_vae):
    """evaluate.log_likelihood (the IWAE bound) rises with k = 1 -> 10 -> 100, and its k=1 mean matches evaluate.elbo's mean."""
    model, x = small_vae
    reps = 20                                                                         # each image 20 times: less MC noise
    xr = x.repeat(reps, 1, 1, 1)
    torch.manual_seed(6)
    ll = {k: evaluate.log_likelihood(model, xr, k=k).double() for k in (1, 10, 100)}
    el = evaluate.elbo(model, xr).double()
    for v in (*ll.values(), el):
        assert v.shape == (len(xr),) and torch.isfinite(v).all()
    mean = {k: v.mean().item() for k, v in ll.items()}

    def paired(a, b):
        """Mean and standard error of a - b, row by row (same image, independent samples): image-to-image spread cancels."""
        diff = a - b
        return diff.mean().item(), (diff.std() / math.sqrt(len(diff))).item()

    # monotone in k (in expectation; allow 3 standard errors), and by a real margin from 1 to 100
    gain_10, se_10 = paired(ll[10], ll[1])
    gain_100, se_100 = paired(ll[100], ll[10])
    assert gain_10 > -3 * se_10 and gain_100 > -3 * se_100, (mean, se_10, se_100)
    assert gain_10 + gain_100 > 1.0, mean                                          # k=100 is > 1 nat above k=1 here
    # k = 1 is a single-sample ELBO: same expectation as evaluate.elbo (closed-form KL); loose tolerance
    diff, se = paired(ll[1], el)
    assert abs(diff) < 4 * se + 0.1, (mean[1], el.mean().item(), se)
    # the per-image bounds also rise: log p(x) estimates with k=100 beat the ELBO on almost every image
    per_image = lambda v: v.view(reps, len(x)).mean(0)
    assert (per_image(ll[100]) > per_image(el)).float().mean() > 0.9


# ------------------------------------------------------------------------- 5. ELBO on a linear-Gaussian model
class LinearGaussian:
    """p(z) = N(0, I_d), p(x|z) = N(Wz + b, s^2 I_D): p(x) = N(b, WW^T + s^2 I) and p(z|x) Gaussian, all exact."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor, s: float):
        self.W, self.b, self.s = W, b, s
        self.D, self.d = W.shape

    def log_px(self, x):
        cov = self.W @ self.W.T + self.s ** 2 * torch.eye(self.D, dtype=f64)
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def posterior(self, x):
        """Exact p(z|x): precision I + W^T W / s^2, mean cov W^T (x - b) / s^2; returns (means (N, d), cov (d, d))."""
        cov = torch.linalg.inv(torch.eye(self.d, dtype=f64) + self.W.T @ self.W / self.s ** 2)
        return (x - self.b) @ self.W @ cov / self.s ** 2, cov

    def log_px_given_z(self, x, z):
        """log N(x; Wz + b, s^2 I) with aelib's gaussian_log_density; z may carry leading sample dimensions."""
        return losses.gaussian_log_density(x, z @ self.W.T + self.b, 2 * math.log(self.s))

    def elbo(self, x, m, logvar):
        """ELBO of q = N(m, diag exp(logvar)), analytic: E_q log p(x|z) - gaussian_kl(m, logvar).

        E_q log N(x; Wz+b, s^2 I) = log N(x; Wm+b, s^2 I) - tr(W diag(v) W^T) / (2 s^2).
        """
        trace = (self.W.pow(2) * logvar.exp().unsqueeze(1)).sum(dim=(1, 2))          # (N,)
        expected = self.log_px_given_z(x, m) - 0.5 * trace / self.s ** 2
        return expected - losses.gaussian_kl(m, logvar)


def _toy(seed: int, orthogonal: bool = False) -> LinearGaussian:
    g = torch.Generator().manual_seed(seed)
    D, d = 5, 3
    W = torch.randn(D, d, generator=g, dtype=f64)
    if orthogonal:                                                                   # W^T W diagonal: diagonal posterior
        Q, _ = torch.linalg.qr(W)
        W = Q * torch.tensor([2.0, 1.0, 0.5], dtype=f64)
    return LinearGaussian(W, torch.randn(D, generator=g, dtype=f64), s=0.7)


def test_linear_gaussian_analytic_elbo_matches_monte_carlo():
    """The analytic expected log-likelihood used below equals a 200k-sample Monte Carlo average of gaussian_log_density."""
    toy = _toy(7)
    torch.manual_seed(7)
    x = torch.randn(4, toy.D, dtype=f64) * 2
    m, logvar = torch.randn(4, toy.d, dtype=f64), torch.randn(4, toy.d, dtype=f64) * 0.5
    z = losses.reparameterize(m.expand(200_000, *m.shape), logvar.expand(200_000, *logvar.shape))
    lp = toy.log_px_given_z(x, z)                                                   # (S, N)
    mc = lp.mean(0) - losses.gaussian_kl(m, logvar)
    se = lp.std(0) / math.sqrt(len(lp))
    assert ((toy.elbo(x, m, logvar) - mc).abs() < 5 * se + 1e-3).all()


def test_elbo_gap_is_kl_to_exact_posterior():
    """For random diagonal q: ELBO <= log p(x), and log p(x) - ELBO == KL(q || p(z|x)) (MultivariateNormal oracle)."""
    toy = _toy(8)
    torch.manual_seed(8)
    x = torch.randn(20, toy.D, dtype=f64) * 2
    m, logvar = torch.randn(20, toy.d, dtype=f64), torch.randn(20, toy.d, dtype=f64)
    log_px, elbo = toy.log_px(x), toy.elbo(x, m, logvar)
    assert (elbo <= log_px).all()
    post_mean, post_cov = toy.posterior(x)
    q = MultivariateNormal(m, covariance_matrix=torch.diag_embed(logvar.exp()))
    gap = kl_divergence(q, MultivariateNormal(post_mean, covariance_matrix=post_cov.expand(20, -1, -1)))
    assert (gap > 0.01).all()
    torch.testing.assert_close(log_px - elbo, gap, rtol=1e-9, atol=1e-9)


def test_elbo_is_tight_at_the_exact_posterior():
    """When q is the exact (diagonal, since W has orthogonal columns) posterior, ELBO == log p(x) to rounding."""
    toy = _toy(9, orthogonal=True)
    torch.manual_seed(9)
    x = torch.randn(10, toy.D, dtype=f64) * 2
    post_mean, post_cov = toy.posterior(x)
    off_diagonal = post_cov - torch.diag(torch.diagonal(post_cov))
    assert off_diagonal.abs().max() < 1e-12
    logvar = torch.log(torch.diagonal(post_cov)).expand(10, -1)
    torch.testing.assert_close(toy.elbo(x, post_mean, logvar), toy.log_px(x), rtol=0, atol=1e-10)
    # and a slightly wrong q is strictly worse
    assert (toy.elbo(x, post_mean + 0.1, logvar) < toy.log_px(x) - 1e-4).all()


def test_iwae_bound_approaches_exact_log_px():
    """iwae_bound with k=20000 samples of an imperfect q is within 0.05 nats of the exact log p(x), and beats the ELBO (k=1)."""
    toy = _toy(10)
    torch.manual_seed(10)
    x = torch.randn(6, toy.D, dtype=f64) * 2
    post_mean, post_cov = toy.posterior(x)
    m = post_mean + 0.3                                                               # imperfect, over-dispersed q
    logvar = torch.log(1.5 * torch.diagonal(post_cov)).expand(6, -1)
    k = 20_000
    z = losses.reparameterize(m.expand(k, *m.shape), logvar.expand(k, *logvar.shape))  # (k, N, d)
    log_pxz, log_pz, log_qz = toy.log_px_given_z(x, z), losses.gaussian_log_density(z), losses.gaussian_log_density(z, m, logvar)
    iwae = losses.iwae_bound(log_pxz, log_pz, log_qz)
    log_px, elbo = toy.log_px(x), toy.elbo(x, m, logvar)
    assert ((iwae - log_px).abs() < 0.05).all(), (iwae - log_px)
    assert (log_px - elbo > 0.2).all()                                               # the ELBO gap is real ...
    assert (iwae > elbo + 0.15).all()                                                # ... and the IWAE bound closes it
    k1 = losses.iwae_bound(log_pxz[:1], log_pz[:1], log_qz[:1])                      # a k=1 bound: one sample's log w
    torch.testing.assert_close(k1, (log_pxz + log_pz - log_qz)[0])
    # the mean of the k=1 bounds over all samples is the (MC) ELBO
    log_w = log_pxz + log_pz - log_qz
    assert ((log_w.mean(0) - elbo).abs() < 5 * log_w.std(0) / math.sqrt(k)).all()


# ------------------------------------------------------------------------------------------------ 6. GAN losses
def test_discriminator_and_generator_losses_match_bce():
    """discriminator_loss == BCE(sigmoid(real), 1) + BCE(sigmoid(fake), 0) (batch means); generator_loss == BCE(sigmoid(fake), 1)."""
    torch.manual_seed(11)
    real, fake = torch.randn(32, dtype=f64) * 3, torch.randn(32, dtype=f64) * 3
    d = losses.discriminator_loss(real, fake)
    expected = (F.binary_cross_entropy(torch.sigmoid(real), torch.ones_like(real))
                + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros_like(fake)))
    assert d.shape == ()
    torch.testing.assert_close(d, expected, rtol=1e-12, atol=1e-12)
    # explicit formula: -mean log D(real) - mean log(1 - D(fake))
    torch.testing.assert_close(d, -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean()))
    g = losses.generator_loss(fake)
    torch.testing.assert_close(g, F.binary_cross_entropy(torch.sigmoid(fake), torch.ones_like(fake)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, -torch.log(torch.sigmoid(fake)).mean())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gan_losses_finite_for_extreme_logits(dtype):
    """GAN losses at logits +-100 and +-1000: finite, ~0 when the discriminator is right, = |logit| when it is wrong."""
    for big in (100.0, 1000.0):
        pos, neg = torch.full((4,), big, dtype=dtype), torch.full((4,), -big, dtype=dtype)
        assert losses.discriminator_loss(pos, neg).item() == pytest.approx(0.0, abs=1e-30)
        assert losses.discriminator_loss(neg, pos).item() == pytest.approx(2 * big, rel=1e-6)
        assert losses.generator_loss(pos).item() == pytest.approx(0.0, abs=1e-30)
        assert losses.generator_loss(neg).item() == pytest.approx(big, rel=1e-6)
        for v in (pos, neg):
            fake = v.clone().requires_grad_(True)
            losses.generator_loss(fake).backward()
            assert torch.isfinite(fake.grad).all()


# ----------------------------------------------------------------------------------------- 7. the ELBO's units
def test_elbo_terms_and_sum_over_pixels_convention():
    """losses.elbo: elbo == log_likelihood - kl, shape (N,); the likelihood sums pixels (twice the pixels, twice the term) while the KL sums latent dims only."""
    torch.manual_seed(12)
    x = (torch.rand(5, 1, 28, 28, dtype=f64) > 0.7).to(f64)
    logits = torch.randn(5, 1, 28, 28, dtype=f64) * 2
    mu, logvar = torch.randn(5, 2, dtype=f64), torch.randn(5, 2, dtype=f64)
    terms = losses.elbo(x, logits, mu, logvar)
    for t in terms:
        assert t.shape == (5,)
    torch.testing.assert_close(terms.elbo, terms.log_likelihood - terms.kl, rtol=0, atol=1e-12)
    torch.testing.assert_close(terms.log_likelihood, exact_log_bernoulli(logits, x), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(terms.kl, losses.gaussian_kl(mu, logvar), rtol=0, atol=0)
    # per image: the sum over 784 pixels is 784 x the per-pixel mean (no averaging over pixels)
    per_pixel_mean = F.binary_cross_entropy_with_logits(logits, x, reduction="none").mean(dim=(1, 2, 3))
    torch.testing.assert_close(terms.log_likelihood, -784 * per_pixel_mean, rtol=1e-12, atol=1e-9)
    # each image's terms are its own (no batch reduction / mixing)
    one = losses.elbo(x[2:3], logits[2:3], mu[2:3], logvar[2:3])
    torch.testing.assert_close(one.elbo, terms.elbo[2:3], rtol=0, atol=1e-12)
    # doubling the image (the same picture twice side by side) doubles log p(x|z); the KL does not move
    doubled = losses.elbo(torch.cat([x, x], dim=-1), torch.cat([logits, logits], dim=-1), mu, logvar)
    torch.testing.assert_close(doubled.log_likelihood, 2 * terms.log_likelihood, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(doubled.kl, terms.kl, rtol=0, atol=0)
    torch.testing.assert_close(doubled.elbo, 2 * terms.log_likelihood - terms.kl, rtol=1e-12, atol=1e-9)
    # doubling the latent dimensions doubles the KL (a sum over dims, not a mean)
    wide = losses.elbo(x, logits, torch.cat([mu, mu], 1), torch.cat([logvar, logvar], 1))
    torch.testing.assert_close(wide.kl, 2 * terms.kl, rtol=1e-12, atol=1e-12)
    assert (terms.kl > 0.1).all()                                                    # so the doubling is visible
