r"""Held-out metrics, per image, in nats (lower negative values are worse; see each function).

* :func:`elbo`: the evidence lower bound, E_q[log p(x|z)] - KL(q(z|x) || p(z)) (VAE, CVAE).
* :func:`log_likelihood`: the importance-weighted estimate of log p(x) with k samples (VAE, CVAE); a tighter
  lower bound than the ELBO, approaching log p(x) as k grows.
* :func:`rate_distortion`: the ELBO's two halves, the rate (mean KL) and the distortion (-E_q log p(x|z)),
  with the rate of each latent dimension (VAE, CVAE; notebook 08).
* :func:`reconstruction_error`: -log p(x | z = encode(x)), the binary cross-entropy of the deterministic
  reconstruction (all five models).
* :func:`held_out`: all of the above that apply to a model, plus the conditional accuracy (a judge reads the digits
  it generates, :mod:`aelib.classifier`) and how well its codes match its prior (:mod:`aelib.metrics`);
  :func:`format_table` prints such results for several models as one table (``python -m aelib evaluate``).
"""
from __future__ import annotations

import torch

from . import checks, losses, metrics
from .errors import AelibError
from .models import AE
from .networks import evaluating

EVAL_BATCH = 500  # images per forward pass when evaluating
ELBO_SAMPLES = 10  # draws of z per image for the held-out ELBO (less noise than one; the same expectation)


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


def _elbo_terms(model: AE, x, y, samples: int, what: str) -> torch.Tensor:
    """Per image: E_q[log p(x|z)] (``samples`` draws of z), then the KL of each latent dimension; shape (N, 1 + d)."""
    _require_variational(model, what)
    samples = checks.positive_int("samples", samples)

    def fn(xb, yb):
        mu, logvar = model.posterior(xb, yb)
        log_lik = torch.stack([losses.bernoulli_log_likelihood(model.decoder(losses.reparameterize(mu, logvar), yb), xb)
                               for _ in range(samples)]).mean(0)
        return torch.cat([log_lik[:, None], losses.gaussian_kl_per_dimension(mu, logvar)], dim=1)

    return _batched(model, x, y, fn).reshape(-1, 1 + model.latent_dim)


def elbo(model: AE, x: torch.Tensor, y=None, samples: int = 1) -> torch.Tensor:
    """Per-image ELBO in nats, shape (N,), with the KL in closed form and E_q[log p(x|z)] averaged over
    ``samples`` draws of z (more draws: less noise, same expectation)."""
    terms = _elbo_terms(model, x, y, samples, "the ELBO")
    return terms[:, 0] - terms[:, 1:].sum(dim=1)


def rate_distortion(model: AE, x: torch.Tensor, y=None, samples: int = 1) -> dict:
    r"""The rate and the distortion of a VAE / CVAE on images x, nats per image (the two halves of -ELBO):

    * ``rate`` R = mean over x of KL(q(z|x) || p(z)), in closed form. It is an upper bound on the mutual information
      between x and z under q (x drawn from the images given, z ~ q(z|x)): R = I_q(x; z) + KL(q(z) || p(z)), where
      q(z) is the average of q(z|x) over the images;
    * ``distortion`` D = mean over x of -E_q[log p(x|z)], with ``samples`` draws of z per image;
    * ``negative_elbo`` = D + R (what a beta-VAE weighs as D + beta R);
    * ``rate_per_dimension``: R split over the latent dimensions, a list of d floats that sums to R (a dimension
      whose share is ~0 carries no information: its q(z_j|x) is the prior for every image).

    With the same seed, ``negative_elbo`` is minus the mean of :func:`elbo` (the same draws of z), up to rounding.
    """
    terms = _elbo_terms(model, x, y, samples, "the rate and the distortion").double().mean(dim=0)
    rate_per_dimension = terms[1:]
    return {"rate": rate_per_dimension.sum().item(), "distortion": -terms[0].item(),
            "negative_elbo": (rate_per_dimension.sum() - terms[0]).item(),
            "rate_per_dimension": rate_per_dimension.tolist()}


def log_likelihood(model: AE, x: torch.Tensor, y=None, k: int = 100) -> torch.Tensor:
    """Per-image importance-weighted estimate of log p(x) (Burda et al., 2016) with ``k`` samples, shape (N,)."""
    _require_variational(model, "the importance-weighted log-likelihood")
    k = checks.positive_int("k", k)

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
    return _batched(model, x, y, lambda xb, yb: -losses.bernoulli_log_likelihood(model.decoder(model.encode(xb, yb), yb), xb))


def summary(model: AE, x: torch.Tensor, y=None, k: int = 100, seed: int = 0) -> dict[str, float]:
    """The likelihood metrics that apply to ``model``, averaged over the images (nats per image): the same numbers,
    computed the same way, as the first columns of :func:`held_out` (so ``train`` and ``evaluate`` agree)."""
    k, seed = checks.positive_int("k", k), checks.seed("seed", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        result = {"reconstruction_error": reconstruction_error(model, x, y if model.conditional else None)
                  .mean().item()}
        if model.variational:
            result["negative_elbo"] = -elbo(model, x, y, samples=ELBO_SAMPLES).mean().item()
            result[f"nll_iw{k}"] = -log_likelihood(model, x, y, k=k).mean().item()
    return result


# -------------------------------------------------------------------------------- one table for every model
def describe(model: AE) -> str:
    """A short description of a model's configuration, e.g. ``aae d=2 mixture guided``."""
    cfg = model.config
    text = f"{model.name} d={cfg.latent_dim}"
    if model.adversarial:
        text += f" {cfg.prior}" + (" guided" if cfg.label_guided else "")
    if model.variational:
        text += (f" beta={cfg.beta:g}" if cfg.beta != 1.0 else "") + \
            (f" free_bits={cfg.free_bits:g}" if cfg.free_bits != 0.0 else "")
    return text


def held_out(model: AE, x: torch.Tensor, y=None, judge=None, k: int = 100, n_per_digit: int = 500,
             seed: int = 0) -> dict:
    """Every held-out metric that applies to ``model`` on test digits (x, y), as a dict:

    * ``reconstruction_error`` (all models), ``negative_elbo`` (``ELBO_SAMPLES`` draws of z per image) and
      ``nll_iw{k}`` (VAE, CVAE): nats per image, lower is better (:func:`summary`);
    * ``conditional_accuracy``, ``worst_digit_accuracy``, ``per_digit_accuracy`` (models whose ``sample`` obeys a
      label: CVAE, CAAE, label-guided AAE; needs ``judge``, see :mod:`aelib.classifier`), from ``n_per_digit``
      generated images per digit;
    * ``prior_mmd2``, ``prior_two_sample_accuracy``: the codes of the test digits against the prior that ``sample``
      draws from (see :func:`aelib.metrics.prior_matching`);
    * ``own_component``: label-guided priors only, see :func:`aelib.metrics.own_component_fraction`.
    """
    k, n_per_digit = checks.positive_int("k", k), checks.positive_int("n_per_digit", n_per_digit)
    seed = checks.seed("seed", seed)
    labels = y if model.uses_labels else None
    if labels is None and model.uses_labels:
        raise AelibError(f"{model.name!r} uses the digit labels: pass the test labels y")
    result: dict = summary(model, x, labels, k=k, seed=seed)
    if model.uses_labels and judge is not None:
        acc = metrics.conditional_accuracy(model, judge, n_per_digit=n_per_digit, seed=seed)
        result["conditional_accuracy"] = acc["overall"]
        result["worst_digit_accuracy"] = min(acc["per_digit"])
        result["per_digit_accuracy"] = acc["per_digit"]
    match = metrics.prior_matching(model, x, labels, seed=seed)
    result["prior_mmd2"] = match["mmd2"]
    result["prior_two_sample_accuracy"] = match["two_sample_accuracy"]
    if model.label_guided:
        result["own_component"] = metrics.own_component_fraction(model, x, labels, seed=seed)
    return result


TABLE_COLUMNS = (  # (key, header, format); percentages are stored as fractions
    ("negative_elbo", "-ELBO", "{:.1f}"),
    ("nll_iw", "NLL", "{:.1f}"),
    ("reconstruction_error", "recon", "{:.1f}"),
    ("conditional_accuracy", "cond acc", "{:.1%}"),
    ("worst_digit_accuracy", "worst digit", "{:.1%}"),
    ("prior_mmd2", "MMD^2", "{:.3f}"),
    ("prior_two_sample_accuracy", "2-sample", "{:.1%}"),
    ("own_component", "own comp", "{:.1%}"),
)


def format_table(rows: list[tuple[str, str, dict]], per_digit: bool = True) -> str:
    """``rows`` of (name, description, :func:`held_out` dict) as one aligned text table ('-': does not apply),
    followed (when ``per_digit``) by the per-digit conditional accuracy of the models that have one."""
    def cell(result, key, fmt):
        if key == "nll_iw":
            key = next((k for k in result if k.startswith("nll_iw")), key)
        value = result.get(key)
        return "-" if value is None else fmt.format(value)

    nll_header = next((f"NLL k={k[6:]}" for _, _, m in rows for k in m if k.startswith("nll_iw")), "NLL")
    headers = ["checkpoint", "model"] + [nll_header if key == "nll_iw" else head for key, head, _ in TABLE_COLUMNS]
    body = [[name, desc] + [cell(m, key, fmt) for key, _, fmt in TABLE_COLUMNS] for name, desc, m in rows]
    widths = [max(len(r[i]) for r in [headers] + body) for i in range(len(headers))]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    lines = [line(headers), line(["-" * w for w in widths])] + [line(r) for r in body]
    digits = [(name, m["per_digit_accuracy"]) for name, _, m in rows if "per_digit_accuracy" in m]
    if per_digit and digits:
        width = max(len("checkpoint"), max(len(name) for name, _ in digits))
        lines += ["", "conditional accuracy per requested digit:",
                  "checkpoint".ljust(width) + "".join(f"{d:>7d}" for d in range(10))]
        lines += [name.ljust(width) + "".join(f"{a:7.1%}" for a in accs) for name, accs in digits]
    return "\n".join(lines)
