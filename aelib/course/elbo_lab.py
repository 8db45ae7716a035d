r"""The ELBO checked with numbers (notebook 02): a toy model with an exact evidence, Gaussian KLs, gradient
estimators, the source post's mean-over-pixels loss, and self-checks for the exercises.

* :class:`LinearGaussian`: p(z) = N(0, I_d), p(x|z) = N(Wz + b, s^2 I_D). Its evidence p(x) = N(b, WW^T + s^2 I)
  and its posterior p(z|x) are Gaussian in closed form, so log p(x) - ELBO = KL(q || p(z|x)) can be checked to
  the last digit. Its ELBO and importance-weighted bound use aelib.losses, so the check covers the library's code.
* :func:`gaussian_kl_full`: KL between two Gaussians with full covariances (the general formula).
* :func:`gradient_estimates`: the reparameterisation and score-function (REINFORCE) estimators of
  d/dmu E_{z ~ N(mu, sigma^2)}[f(z)], many times over, to compare their spread.
* :func:`mean_reduced_elbo` and :class:`MeanReducedVAE`: the source post's "ELBO", which averages the
  log-likelihood over 784 pixels and the KL over d latent dimensions: a hidden KL weight of 784/d.
* :func:`clamped_bernoulli_log_likelihood`: the source post's clamp-then-log likelihood, to show where it fails.
* :func:`check_kl`, :func:`check_reparameterize`: test a student's function against aelib's; print pass / fail.
* :func:`print_table`: rounded, aligned tables, so printed numbers are the same on every machine.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .. import losses
from ..checks import N_PIXELS
from ..models import VAE
from ..networks import evaluating

f64 = torch.float64


# ------------------------------------------------------------------------------------------- the toy model
class LinearGaussian:
    r"""A latent-variable model whose evidence and posterior are exact: p(z) = N(0, I_d), p(x|z) = N(Wz + b, s^2 I_D).

    * evidence: p(x) = N(x; b, W W^T + s^2 I_D) (a linear map of a Gaussian plus independent Gaussian noise);
    * posterior: p(z|x) = N(m(x), C) with precision C^{-1} = I_d + W^T W / s^2 and mean m(x) = C W^T (x - b) / s^2.

    The approximate posteriors q are diagonal Gaussians given as ``(mu, logvar)`` of shape (N, d), as in the VAE.
    All tensors are float64, so identities hold to ~1e-12.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, noise_std: float):
        self.W = torch.as_tensor(W, dtype=f64)
        self.b = torch.as_tensor(b, dtype=f64)
        self.noise_std = float(noise_std)
        if self.W.dim() != 2 or self.b.shape != (self.W.shape[0],) or not self.noise_std > 0:
            raise ValueError("need W of shape (D, d), b of shape (D,) and noise_std > 0")

    @classmethod
    def random(cls, D: int = 5, d: int = 2, noise_std: float = 0.5, diagonal_posterior: bool = True,
               seed: int = 0) -> "LinearGaussian":
        """A random model. With ``diagonal_posterior`` the columns of W are orthogonal (W^T W is diagonal), so the
        exact posterior has a diagonal covariance: a VAE-style diagonal q can then match it exactly."""
        g = torch.Generator().manual_seed(seed)
        W = torch.randn(D, d, generator=g, dtype=f64)
        if diagonal_posterior:
            Q, _ = torch.linalg.qr(W)                                         # orthonormal columns
            W = Q * torch.linspace(2.0, 0.8, d, dtype=f64)                    # of different lengths
        return cls(W, torch.randn(D, generator=g, dtype=f64), noise_std)

    @property
    def D(self) -> int:
        return self.W.shape[0]

    @property
    def d(self) -> int:
        return self.W.shape[1]

    @property
    def noise_logvar(self) -> float:
        return 2 * math.log(self.noise_std)

    def __repr__(self):
        return f"LinearGaussian(D={self.D}, d={self.d}, noise_std={self.noise_std})"

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n data points x ~ p(x), drawn the generative way: z ~ p(z), then x ~ p(x|z). Shape (n, D)."""
        z = torch.randn(n, self.d, generator=generator, dtype=f64)
        return z @ self.W.T + self.b + self.noise_std * torch.randn(n, self.D, generator=generator, dtype=f64)

    # --- exact quantities ----------------------------------------------------------------------------------
    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        r"""Exact log p(x) = log N(x; b, W W^T + s^2 I), shape (N,), through a Cholesky factor of the covariance."""
        cov = self.W @ self.W.T + self.noise_std ** 2 * torch.eye(self.D, dtype=f64)
        L = torch.linalg.cholesky(cov)
        r = torch.linalg.solve_triangular(L, (x - self.b).T, upper=False)           # L^{-1} (x - b), (D, N)
        log_det = 2 * torch.log(torch.diagonal(L)).sum()
        return -0.5 * (self.D * losses.LOG_2PI + log_det + r.pow(2).sum(0))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact posterior p(z|x): its means, shape (N, d), and its covariance, shape (d, d) (the same for all x)."""
        cov = torch.linalg.inv(torch.eye(self.d, dtype=f64) + self.W.T @ self.W / self.noise_std ** 2)
        return (x - self.b) @ self.W @ cov / self.noise_std ** 2, cov

    def best_diagonal_q(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The diagonal Gaussian q closest to p(z|x) in KL(q || p): the posterior mean and variances 1 / Lambda_jj,
        where Lambda is the posterior precision. It equals the posterior when the posterior is diagonal."""
        mean, cov = self.posterior(x)
        precision = torch.linalg.inv(cov)
        logvar = -torch.log(torch.diagonal(precision))
        return mean, logvar.expand_as(mean).clone()

    def kl_to_posterior(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || p(z|x)) for the diagonal q = N(mu, diag exp(logvar)), shape (N,)."""
        mean, cov = self.posterior(x)
        return gaussian_kl_full(mu, torch.diag_embed(logvar.exp()), mean, cov)

    # --- the ELBO and the importance-weighted bound -----------------------------------------------------------
    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) = log N(x; Wz + b, s^2 I); z may carry leading sample dimensions, e.g. (k, N, d) -> (k, N)."""
        return losses.gaussian_log_density(x, z @ self.W.T + self.b, self.noise_logvar)

    def elbo(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        r"""The ELBO of q = N(mu, diag exp(logvar)) in closed form, shape (N,):

        E_q[log p(x|z)] - KL(q || p(z)), where E_q[log N(x; Wz + b, s^2 I)] = log N(x; W mu + b, s^2 I)
        - sum_ij W_ij^2 v_j / (2 s^2) (the spread of z adds W diag(v) W^T to the mean squared error), and the KL
        is aelib.losses.gaussian_kl.
        """
        spread = (self.W.pow(2) * logvar.exp().unsqueeze(1)).sum(dim=(1, 2)) / (2 * self.noise_std ** 2)
        expected_log_likelihood = self.log_likelihood(x, mu) - spread
        return expected_log_likelihood - losses.gaussian_kl(mu, logvar)

    def log_weights(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw z_1..z_k ~ q for each x and return log p(x|z_s), log p(z_s), log q(z_s|x), each of shape (k, N)."""
        eps = torch.randn(k, *mu.shape, generator=generator, dtype=f64)
        z = mu + torch.exp(0.5 * logvar) * eps                                      # the reparameterisation
        return (self.log_likelihood(x, z), losses.gaussian_log_density(z),
                losses.gaussian_log_density(z, mu, logvar))

    def elbo_mc(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, samples: int = 10_000,
                generator: torch.Generator | None = None, with_se: bool = False):
        r"""Monte Carlo ELBO, shape (N,): the average of log [p(x|z) p(z) / q(z|x)] over ``samples`` draws z ~ q.

        With ``with_se``, also its standard error (the standard deviation of the log-weights / sqrt(samples)),
        returned as a pair (estimate, standard error). It is 0 when q is the exact posterior: every log-weight is
        then log p(x)."""
        log_px_z, log_pz, log_qz = self.log_weights(x, mu, logvar, samples, generator)
        log_w = log_px_z + log_pz - log_qz
        if with_se:
            return log_w.mean(0), log_w.std(0) / math.sqrt(samples)
        return log_w.mean(0)

    def iwae(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw of the importance-weighted bound with k samples (aelib.losses.iwae_bound), shape (N,)."""
        return losses.iwae_bound(*self.log_weights(x, mu, logvar, k, generator))


def gaussian_kl_full(mu0: torch.Tensor, cov0: torch.Tensor, mu1: torch.Tensor, cov1: torch.Tensor) -> torch.Tensor:
    r"""KL(N(mu0, cov0) || N(mu1, cov1)) with full covariances; batched over leading dimensions.

    = 1/2 [ tr(cov1^{-1} cov0) + (mu1 - mu0)^T cov1^{-1} (mu1 - mu0) - d + log det cov1 - log det cov0 ].
    With mu1 = 0, cov1 = I and a diagonal cov0 it reduces to aelib.losses.gaussian_kl.
    """
    d = mu0.shape[-1]
    cov1_inv = torch.linalg.inv(cov1)
    diff = (mu1 - mu0).unsqueeze(-1)
    trace = torch.diagonal(cov1_inv @ cov0, dim1=-2, dim2=-1).sum(-1)
    mahalanobis = (diff.transpose(-2, -1) @ cov1_inv @ diff).squeeze(-1).squeeze(-1)
    return 0.5 * (trace + mahalanobis - d + torch.logdet(cov1) - torch.logdet(cov0))


def gaussian_kl_mc(mu: torch.Tensor, logvar: torch.Tensor, samples: int = 100_000,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Monte Carlo KL(N(mu, diag exp(logvar)) || N(0, I)) = E_q[log q(z) - log p(z)] from ``samples`` draws of z.

    Returns the estimate and its standard error, each of shape (N,). Uses aelib.losses.gaussian_log_density.
    """
    g = torch.Generator().manual_seed(seed)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(samples, *mu.shape, generator=g, dtype=mu.dtype)
    log_ratio = losses.gaussian_log_density(z, mu, logvar) - losses.gaussian_log_density(z)     # (samples, N)
    return log_ratio.mean(0), log_ratio.std(0) / math.sqrt(samples)


# ----------------------------------------------------------------------------- two gradient estimators
def gradient_estimates(f: Callable[[torch.Tensor], torch.Tensor], mu: float, sigma: float, n_estimates: int = 10_000,
                       samples: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    r"""``n_estimates`` independent estimates of d/dmu E_{z ~ N(mu, sigma^2)}[f(z)], each from ``samples`` draws.

    * reparameterisation: z = mu + sigma * eps, eps ~ N(0, 1); the estimate is d f(z) / d mu, by autograd;
    * score function (REINFORCE): the estimate is f(z) * d log N(z; mu, sigma^2) / d mu = f(z) (z - mu) / sigma^2,
      by autograd of the surrogate f(z) * log q(z) with z held fixed.

    Both use the same eps, so they differ only in the estimator. Returns a dict of two tensors of shape
    (n_estimates,), keyed "reparameterisation" and "score function".
    """
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(n_estimates, samples, generator=g, dtype=f64)
    logvar = 2 * math.log(sigma)

    mu_r = torch.full((n_estimates, 1), float(mu), dtype=f64, requires_grad=True)   # one copy of mu per estimate
    f(mu_r + sigma * eps).mean(1).sum().backward()                                  # gradients flow through z

    mu_s = torch.full((n_estimates, 1), float(mu), dtype=f64, requires_grad=True)
    z = (mu_s + sigma * eps).detach()                                               # a sample: no path back to mu
    log_q = losses.gaussian_log_density(z.unsqueeze(-1), mu_s.unsqueeze(-1), logvar)  # (n_estimates, samples)
    (f(z) * log_q).mean(1).sum().backward()
    return {"reparameterisation": mu_r.grad[:, 0], "score function": mu_s.grad[:, 0]}


# ------------------------------------------------------------------- the source post's mean-over-pixels loss
def hidden_kl_weight(latent_dim: int) -> float:
    """The factor by which averaging over pixels (784) and latent dimensions (d) multiplies the KL: 784 / d."""
    return N_PIXELS / latent_dim


def mean_reduced_elbo(x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""The source post's "ELBO", a scalar: the per-pixel log-likelihood averaged over batch and pixels, minus the
    per-dimension KL averaged over batch and latent dimensions. (Computed from logits; only the reduction is copied.)

    It equals ELBO_terms / 784 with the KL multiplied by 784 / d:
    mean_reduced_elbo = mean_n[log p(x_n|z_n)] / 784 - mean_n[KL_n] / d.
    """
    log_likelihood = -F.binary_cross_entropy_with_logits(logits.flatten(1), x.flatten(1), reduction="none").mean()
    kl = losses.gaussian_kl_per_dimension(mu, logvar).mean()
    return log_likelihood - kl


def clamped_bernoulli_log_likelihood(probs: torch.Tensor, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    r"""The source post's log p(x|z): clamp the probabilities to [eps, 1 - eps], then take logs; shape (N,).

    Kept only to show what goes wrong; use aelib.losses.bernoulli_log_likelihood (from logits). In float32,
    1 - 1e-8 rounds to 1, so the upper clamp does nothing: log(1 - p) becomes log 0 = -inf for confident pixels.
    Where the clamp does bite, the value is wrong and its gradient is zero.
    """
    p = probs.flatten(1).clamp(eps, 1 - eps)
    x = x.flatten(1)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(dim=1)


class MeanReducedVAE(VAE):
    """A VAE trained on the source post's mean-over-pixels loss (:func:`mean_reduced_elbo`), for comparison.

    Same network as :class:`aelib.VAE` and the same config (its name is "vae", so it saves and loads as a VAE);
    only ``loss`` differs. Its "recon" and "kl" terms are reported in proper nats per image, so its history can be
    compared with a VAE's. Minimising -mean_reduced_elbo is minimising (recon + (784/d) KL) / 784: a VAE whose KL
    weighs 784/d times too much (392 at d = 2), scaled by 1/784, a constant that Adam's step sizes ignore.
    """

    def loss(self, x, y=None):
        mu, logvar = self.posterior(x, y)
        logits = self.decoder(losses.reparameterize(mu, logvar), y)
        terms = losses.elbo(x, logits, mu, logvar)
        return {"loss": -mean_reduced_elbo(x, logits, mu, logvar),
                "recon": -terms.log_likelihood.mean().detach(), "kl": terms.kl.mean().detach()}


def kl_per_dimension(model: VAE, x: torch.Tensor, y=None) -> torch.Tensor:
    """The average KL(q(z_j|x) || N(0, 1)) of each latent dimension j over the images x, in nats, shape (d,).

    A dimension whose KL is ~0 carries no information about x: its q(z_j|x) is the prior for every image.
    """
    x, y = model.check_inputs(x, y)
    with evaluating(model):
        mu, logvar = model.posterior(x, y)
    return losses.gaussian_kl_per_dimension(mu, logvar).mean(0).cpu()


# ------------------------------------------------------------------------------- self-checks for exercises
NOT_WRITTEN = "not written yet: write your function in the cell above (replace the `raise NotImplementedError`), " \
              "run that cell, then run this one again."


def check_kl(student_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], seed: int = 0) -> bool:
    r"""Test ``student_fn(mu, logvar)``, meant to return KL(N(mu, diag exp(logvar)) || N(0, I)) per row, shape (N,),
    against aelib.losses.gaussian_kl on random inputs. Prints PASS or the first mismatch; returns True / False."""
    g = torch.Generator().manual_seed(seed)
    cases = [(torch.zeros(2, 3), torch.zeros(2, 3))]                                 # q = p: the KL is 0
    for n, d in ((6, 2), (4, 7), (3, 1)):
        cases.append((2 * torch.randn(n, d, generator=g), 1.5 * torch.randn(n, d, generator=g)))
    for mu, logvar in cases:
        expected = losses.gaussian_kl(mu, logvar)
        try:
            got = student_fn(mu.clone(), logvar.clone())
        except NotImplementedError:
            print(f"check_kl: {NOT_WRITTEN}")
            return False
        if not torch.is_tensor(got):
            print(f"check_kl: FAIL: your function returned a {type(got).__name__}; return a torch.Tensor of shape "
                  f"{tuple(expected.shape)}")
            return False
        if got.shape != expected.shape:
            hint = ""
            if got.shape == mu.shape:
                hint = ": one KL per image, so sum over the latent dimensions (dim=1)"
            elif got.dim() == 0:
                hint = ": do not reduce over the batch; return one KL per row"
            print(f"check_kl: FAIL: for mu and logvar of shape {tuple(mu.shape)} your function returned shape "
                  f"{tuple(got.shape)}, expected {tuple(expected.shape)}{hint}")
            return False
        got = got.detach().to(expected.dtype)
        bad = ~torch.isclose(got, expected, rtol=1e-4, atol=1e-5)
        if bad.any():
            i = int(bad.nonzero()[0, 0])
            print(f"check_kl: FAIL at row {i} of an input of shape {tuple(mu.shape)}:\n"
                  f"  mu     = {fmt(mu[i])}\n  logvar = {fmt(logvar[i])}\n"
                  f"  yours  = {got[i].item():.6g}\n  aelib  = {expected[i].item():.6g}{_kl_hint(got, expected, mu.shape[1])}")
            return False
    print(f"check_kl: PASS: your KL matches aelib.losses.gaussian_kl on {len(cases)} random inputs "
          "(including q = p, where it is 0).")
    return True


def _kl_hint(got, expected, d):
    close = lambda a: bool(torch.allclose(got, a, rtol=1e-4, atol=1e-5))
    if d > 1 and close(expected / d):
        return "\n  hint: yours is the aelib value divided by d: a mean over the latent dimensions; the KL sums them"
    if close(2 * expected):
        return "\n  hint: yours is twice the aelib value: the formula has a factor 1/2"
    if close(expected / 2):
        return "\n  hint: yours is half the aelib value"
    return ""


def check_reparameterize(student_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], seed: int = 0,
                         n: int = 100_000) -> bool:
    r"""Test ``student_fn(mu, logvar)``, meant to return z ~ N(mu, diag exp(logvar)) through which gradients flow.

    Checks: the shape; that z is random; that its mean and standard deviation match mu and exp(logvar / 2)
    (n samples per coordinate); and that autograd gives dz/dmu = 1 and dz/dlogvar = (z - mu) / 2, which holds only
    for z = mu + sigma * eps. Prints PASS or the first failure; returns True / False.
    """
    mu0 = torch.tensor([0.0, 2.0, -1.0])
    logvar0 = torch.tensor([0.5, -2.0, 1.2])
    mu = mu0.repeat(n, 1).requires_grad_(True)
    logvar = logvar0.repeat(n, 1).requires_grad_(True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        try:
            z = student_fn(mu, logvar)
            z_again = student_fn(mu[:5], logvar[:5])
        except NotImplementedError:
            print(f"check_reparameterize: {NOT_WRITTEN}")
            return False
    name = "check_reparameterize: FAIL"
    if not torch.is_tensor(z) or z.shape != mu.shape:
        shape = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
        print(f"{name}: for mu of shape {tuple(mu.shape)} your function returned {shape}; expected the same shape as mu")
        return False
    if torch.allclose(z_again.detach(), z[:5].detach()):
        print(f"{name}: z is not random (two calls gave the same values); draw eps with torch.randn_like(mu)")
        return False
    sigma0 = torch.exp(0.5 * logvar0)
    mean, std = z.detach().mean(0), z.detach().std(0)
    for j in range(3):
        if abs(mean[j] - mu0[j]) > 5 * sigma0[j] / math.sqrt(n) + 1e-4:
            print(f"{name}: for mu = {mu0[j]:.2f}, logvar = {logvar0[j]:.2f} the mean of your z is {mean[j]:.4f}, "
                  f"expected {mu0[j]:.4f}; is eps drawn from N(0, 1) (torch.randn_like, not torch.rand_like)?")
            return False
        if abs(std[j] / sigma0[j] - 1) > 0.03:
            print(f"{name}: for mu = {mu0[j]:.2f}, logvar = {logvar0[j]:.2f} the standard deviation of your z is "
                  f"{std[j]:.4f}, expected sigma = exp(logvar / 2) = {sigma0[j]:.4f}; note logvar is log sigma^2")
            return False
    if not z.requires_grad:
        print(f"{name}: no gradient flows from z back to mu and logvar; build z from them with arithmetic "
              "(mu + sigma * eps), not with a sampler such as torch.normal")
        return False
    grad_mu, grad_logvar = torch.autograd.grad(z.sum(), (mu, logvar), allow_unused=True)
    if grad_mu is None or not torch.allclose(grad_mu, torch.ones_like(mu)):
        print(f"{name}: dz/dmu should be 1 for every sample (z = mu + sigma * eps)")
        return False
    expected = 0.5 * (z.detach() - mu.detach())
    if grad_logvar is None or not torch.allclose(grad_logvar, expected, rtol=1e-4, atol=1e-5):
        print(f"{name}: dz/dlogvar should be sigma * eps / 2 = (z - mu) / 2; check sigma = exp(logvar / 2)")
        return False
    print(f"check_reparameterize: PASS: right shape, random, mean and standard deviation match on {n:,} samples "
          "per coordinate, and gradients reach mu and logvar as they should.")
    return True


# ---------------------------------------------------------------------------------------- printing numbers
def _number(value, digits: int) -> str:
    v = float(value.detach()) if torch.is_tensor(value) else float(value)
    if math.isfinite(v):
        v = round(v, digits) + 0.0                       # + 0.0 turns -0.0 into 0.0
    return f"{v:.{digits}f}"


def fmt(values, digits: int = 4) -> str:
    """A vector (tensor, list or number) as "[a, b, ...]" with ``digits`` decimals; -0.0000 is printed as 0.0000."""
    t = torch.as_tensor(values).detach().flatten().tolist()
    return "[" + ", ".join(_number(v, digits) for v in t) + "]"


def print_table(headers: list[str], rows: list[list], digits: int = 4) -> None:
    """Print an aligned table; numbers (floats, 0-d tensors) are rounded to ``digits`` decimals, text is left as is.

    Rounding first means the printed table is the same on every machine, down to the sign of a zero.
    """
    cells = [[c if isinstance(c, str) else _number(c, digits) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [not isinstance(rows[0][i], str) for i in range(len(headers))] if rows else [False] * len(headers)
    line = lambda items: "  ".join(s.rjust(w) if num else s.ljust(w) for s, w, num in zip(items, widths, numeric))
    print(line(headers).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row).rstrip())
