r"""Losses in nats per image: **sum** over pixels and latent dimensions, then **mean** over the batch.

Why the sum matters: log p(x|z) of a 784-pixel image is a sum of 784 per-pixel terms, and KL(q(z|x) || p(z)) is a sum
over the d latent dimensions. Averaging the first over pixels and the second over dimensions (as many tutorials do)
silently multiplies the KL by 784/d. Every function here returns one value per image, shape (N,), so the caller
chooses the batch reduction and the units stay honest.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""log p(x|z) = sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)], with p = sigmoid(logits); shape (N,).

    Computed from logits (never clamp-then-log): it is exact and stable for any logit. It is minus the binary
    cross-entropy; grey levels x in [0, 1] are allowed (the "continuous Bernoulli" normaliser is not included).
    """
    bce = F.binary_cross_entropy_with_logits(logits.flatten(1), x.flatten(1), reduction="none")
    return -bce.sum(dim=1)


def gaussian_kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""KL(N(mu_j, exp(logvar_j)) || N(0, 1)) = 1/2 (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1) for each latent
    dimension j of each image; shape (N, d). aelib's one copy of the Gaussian KL formula: every KL below uses it."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""KL(N(mu, diag(exp(logvar))) || N(0, I)) = 1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1); shape (N,).

    The sum over dimensions of :func:`gaussian_kl_per_dimension` (a diagonal Gaussian's KL to N(0, I) splits into
    one term per dimension)."""
    return gaussian_kl_per_dimension(mu, logvar).sum(dim=1)


def free_bits_kl(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float = 0.0) -> torch.Tensor:
    r"""sum_j max(lambda, KL_j), the KL penalty with "free bits" (Kingma et al., 2016, appendix C.8); a scalar, nats.

    KL_j is the KL of latent dimension j averaged over the **batch**, and lambda = ``free_bits`` nats. A dimension
    whose average KL is below lambda costs a constant lambda, so its KL gets no gradient: the encoder may put up to
    lambda nats per dimension into the code for free, which keeps a large KL weight from collapsing the code to the
    prior. Above lambda the dimension pays its full KL.

    Why the batch mean and not each image's KL: the floor protects a dimension's *rate*, its KL averaged over the
    data (the batch mean estimates it), which is what collapses (see :func:`aelib.evaluate.rate_distortion`), and
    this is what Kingma et al. do. A floor per image would switch the KL's gradient off image by image: every image
    whose own KL is below lambda would feel no pull towards the prior at all, so up to lambda nats per dimension and
    image would be spent with no regard for how the codes of all images together fill p(z). With the batch mean the
    images of a batch share one floor, and once the dimension's average is above it every image pays its full KL.
    With ``free_bits=0`` the value is the batch-mean KL (sum_j KL_j = mean over images of :func:`gaussian_kl`).
    """
    kl_j = gaussian_kl_per_dimension(mu, logvar).mean(dim=0)
    return torch.clamp(kl_j, min=free_bits).sum()


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor | float = 0.0,
                         logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    r"""log N(z; mu, diag(exp(logvar))), summed over the last dimension."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(dim=-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""z = mu + sigma * eps with eps ~ N(0, I): a sample of q(z|x) through which gradients reach mu and sigma."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


class ELBO(NamedTuple):
    """The evidence lower bound and its two terms, each of shape (N,), in nats per image."""

    elbo: torch.Tensor
    log_likelihood: torch.Tensor   # E_q[log p(x|z)], estimated with the sampled z
    kl: torch.Tensor               # KL(q(z|x) || p(z)), in closed form


def elbo(x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> ELBO:
    r"""ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)), with p(x|z) Bernoulli(sigmoid(logits)) and p(z) = N(0, I)."""
    log_likelihood = bernoulli_log_likelihood(logits, x)
    kl = gaussian_kl(mu, logvar)
    return ELBO(log_likelihood - kl, log_likelihood, kl)


def iwae_bound(log_px_given_z: torch.Tensor, log_pz: torch.Tensor, log_qz: torch.Tensor) -> torch.Tensor:
    r"""Importance-weighted bound (Burda et al., 2016): log (1/k) sum_s p(x, z_s) / q(z_s|x), with z_s ~ q(z|x).

    Inputs have shape (k, N), one row per sample z_s; returns shape (N,). k = 1 is a one-sample estimate of the ELBO; the bound rises
    towards log p(x) as k grows.
    """
    log_w = log_px_given_z + log_pz - log_qz
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""-[log D(z_prior) + log(1 - D(z_encoded))], batch mean, from logits: the discriminator's cross-entropy."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""-log D(z_encoded), batch mean: the encoder's "non-saturating" loss for fooling the discriminator."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
