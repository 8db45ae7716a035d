r"""Held-out metrics, per image, in nats (lower negative values are worse; see each function).

* :func:`elbo`: the evidence lower bound, E_q[log p(x|z)] - KL(q(z|x) || p(z)) (VAE, CVAE).
* :func:`log_likelihood`: the importance-weighted estimate of log p(x) with k samples (VAE, CVAE); a tighter
  lower bound than the ELBO, approaching log p(x) as k grows.
* :func:`reconstruction_error`: -log p(x | z = encode(x)), the binary cross-entropy of the deterministic
  reconstruction (all five models).
"""
from __future__ import annotations

import torch

from . import losses
from .errors import AelibError
from .models import AE, evaluating

EVAL_BATCH = 500  # images per forward pass when evaluating


def _batched(model: AE, x, y, fn, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    x, y = model.check_inputs(x, y)
    out = []
    with evaluating(model):
        for start in range(0, len(x), batch_size):
            yb = y[start:start + batch_size] if y is not None else None
            out.append(fn(x[start:start + batch_size], yb).cpu())
    return torch.cat(out) if out else torch.zeros(0)


def _require_variational(model: AE, what: str) -> None:
    if not model.variational:
        raise AelibError(f"{what} needs a model with an encoder distribution q(z|x) ('vae' or 'cvae'); "
                         f"{model.name!r} has none: use reconstruction_error instead")


def elbo(model: AE, x: torch.Tensor, y=None, samples: int = 1) -> torch.Tensor:
    """Per-image ELBO in nats, shape (N,), with the KL in closed form and E_q[log p(x|z)] averaged over
    ``samples`` draws of z (more draws: less noise, same expectation)."""
    _require_variational(model, "the ELBO")

    def fn(xb, yb):
        mu, logvar = model.posterior(xb, yb)
        log_lik = torch.stack([losses.bernoulli_log_likelihood(model.decoder(losses.reparameterize(mu, logvar), yb), xb)
                               for _ in range(samples)]).mean(0)
        return log_lik - losses.gaussian_kl(mu, logvar)

    return _batched(model, x, y, fn)


def log_likelihood(model: AE, x: torch.Tensor, y=None, k: int = 100) -> torch.Tensor:
    """Per-image importance-weighted estimate of log p(x) (Burda et al., 2016) with ``k`` samples, shape (N,)."""
    _require_variational(model, "the importance-weighted log-likelihood")
    if k < 1:
        raise AelibError(f"k must be at least 1, got {k}")

    def fn(xb, yb):
        mu, logvar = model.posterior(xb, yb)
        z = losses.reparameterize(mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape))  # (k, N, d)
        n = len(xb)
        flat_y = yb.repeat(k) if yb is not None else None
        logits = model.decoder(z.reshape(k * n, -1), flat_y)
        log_px_z = losses.bernoulli_log_likelihood(logits, xb.repeat(k, 1, 1, 1)).view(k, n)
        return losses.iwae_bound(log_px_z, losses.gaussian_log_density(z), losses.gaussian_log_density(z, mu, logvar))

    return _batched(model, x, y, fn, batch_size=max(1, EVAL_BATCH * 10 // k))


def reconstruction_error(model: AE, x: torch.Tensor, y=None) -> torch.Tensor:
    """Per-image -log p(x | z = encode(x)) in nats (binary cross-entropy summed over pixels), shape (N,)."""
    return _batched(model, x, y, lambda xb, yb: -losses.bernoulli_log_likelihood(model.decoder(model.code(xb, yb), yb), xb))


def summary(model: AE, x: torch.Tensor, y=None, k: int = 100) -> dict[str, float]:
    """The held-out metrics that apply to ``model``, averaged over the images (nats per image)."""
    result = {"reconstruction_error": reconstruction_error(model, x, y).mean().item()}
    if model.variational:
        result["negative_elbo"] = -elbo(model, x, y).mean().item()
        result[f"nll_iw{k}"] = -log_likelihood(model, x, y, k=k).mean().item()
    return result
