r"""The true posterior of a VAE with a 2-D latent, by quadrature on a grid (notebook 03).

With d = 2 the evidence log p(x) = log \int p(x|z) p(z) dz is a 2-D integral, small enough to compute on a grid:
the midpoint rule over cells of area h1 h2 centred at z_c gives

    log p(x) ~= logsumexp_c [log p(x|z_c) + log p(z_c)] + log(h1 h2),

and p(z|x) = p(x|z) p(z) / p(x) on the same cells. Nothing is sampled, so log p(x) - ELBO, the gap that the
encoder leaves, is measured rather than assumed. Everything is float64 (the decoder runs on a float64 copy).

How the grid is chosen (:func:`log_evidence`):

1. a *search* grid over a box that holds where p(x|z) p(z) can have its mass: the union of +-8 sd of q(z|x) (a
   Gaussian holds ~1e-15 beyond) and the prior's bulk [-4, 4]^2 (:func:`default_box`). If more than 1e-9 of the
   mass on it lies in its outer ring of cells, the box is cut too small: it is doubled and searched again;
2. a *fine* box: the search cells whose log p(x, z) is within ``drop`` = 30 nats of the best cell, padded by one
   cell (everything left out is below e^-30 of the peak cell: ~1e-9 of the mass even if all 16k cells sat there);
3. the midpoint rule on the fine box with n and 2n cells per axis. The answer is the 2n value; the stated
   accuracy is |L_2n - L_n|, which bounds the error of both when the rule converges (it does fast: for a smooth
   integrand that vanishes at the box's edges the midpoint rule's error falls faster than any power of h; a ReLU
   decoder has kinks, so there it is slower, ~1e-4 nats at n = 64).

* :func:`grid_log_evidence`, :func:`grid_log_joint`, :func:`grid_moments`: the quadrature for any model, given
  log p(x, z) as a function of z; chunked over the grid, so memory stays bounded (``max_points`` at a time).
* :func:`log_evidence`: log p(x) with its refinement error, for any log p(x, z) (:func:`vae_evidence` for a VAE).
* :func:`true_posterior`: p(z|x) on the grid for heat maps, with q(z|x) and the moments of p(z|x);
  :func:`ellipse` gives the 1- and 2-sd ellipses to draw on top.
* :func:`bound_chain`: ELBO <= IWAE_k <= log p(x) for given digits, with aelib.evaluate's ELBO and IWAE.

Checked against the exact evidence and posterior of :class:`aelib.course.elbo_lab.LinearGaussian` (tests/test_posterior.py).
Measured (notebook 03's VAE, 20 epochs on the offline digits, seed 0; test digits 0-99; 1.8 s per digit on one
CPU thread): mean log p(x) = -168.82 (refinement error 2e-4, max 2e-3), IWAE_5000 -170.52, IWAE_100 -171.41,
ELBO -174.62: an approximation gap of 5.8 nats on average (median 2.3, from 0.4 to 92 where q misses the mode).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from .. import evaluate, losses
from ..errors import AelibError
from ..models import AE, VAE
from ..networks import evaluating

f64 = torch.float64
LogJoint = Callable[[torch.Tensor], torch.Tensor]   # z of shape (g, N, 2) -> log p(x_i, z_gi), shape (g, N)
MAX_POINTS = 1 << 13     # log p(x, z) evaluations at a time: the memory bound (a VAE: 784 float64 logits each, 50 MB)


# ------------------------------------------------------------------------------------- quadrature on a grid
def _axes(lo: torch.Tensor, hi: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres along z1 and z2 for each box, each of shape (N, n)."""
    t = (torch.arange(n, dtype=f64, device=lo.device) + 0.5) / n
    centres = lo.unsqueeze(-1) + (hi - lo).unsqueeze(-1) * t            # (N, 2, n)
    return centres[:, 0], centres[:, 1]


def _chunks(log_joint: LogJoint, lo: torch.Tensor, hi: torch.Tensor, n: int, max_points: int):
    """log p(x, z) on the n x n cell centres of each box, a chunk of cells at a time: yields tensors (g, N).

    Cells are numbered row by row, k = r n + c, with z = (z1[c], z2[r]): rows follow z2, as in an image."""
    z1, z2 = _axes(lo, hi, n)
    step = max(1, max_points // len(lo))
    for start in range(0, n * n, step):
        k = torch.arange(start, min(start + step, n * n), device=lo.device)
        z = torch.stack([z1[:, k % n].T, z2[:, k // n].T], dim=-1)       # (g, N, 2)
        yield log_joint(z).to(f64)


def _check_box(lo, hi, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = torch.as_tensor(lo, dtype=f64), torch.as_tensor(hi, dtype=f64)
    if lo.dim() != 2 or lo.shape[1] != 2 or hi.shape != lo.shape or not (hi > lo).all():
        raise AelibError(f"a grid needs boxes lo < hi of shape (N, 2), got {tuple(lo.shape)} and {tuple(hi.shape)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise AelibError(f"n (cells per axis) must be an integer >= 2, got {n!r}")
    return lo, hi


def _log_cell_area(lo: torch.Tensor, hi: torch.Tensor, n: int) -> torch.Tensor:
    return torch.log((hi - lo) / n).sum(-1)


def grid_log_evidence(log_joint: LogJoint, lo, hi, n: int, max_points: int = MAX_POINTS) -> torch.Tensor:
    r"""log p(x) = log \int p(x, z) dz by the midpoint rule on n x n cells over the box [lo, hi] of each x; (N,).

    ``log_joint(z)`` takes z of shape (g, N, 2), g points for each of the N inputs, and returns log p(x_i, z_gi) of
    shape (g, N). Only ``max_points`` evaluations are held at a time (a running logsumexp over chunks).
    """
    lo, hi = _check_box(lo, hi, n)
    per_chunk = torch.stack([torch.logsumexp(v, dim=0) for v in _chunks(log_joint, lo, hi, n, max_points)])
    return torch.logsumexp(per_chunk, dim=0) + _log_cell_area(lo, hi, n)


def grid_log_joint(log_joint: LogJoint, lo, hi, n: int, max_points: int = MAX_POINTS) -> torch.Tensor:
    """log p(x, z) at every cell centre, shape (N, n, n); entry [i, r, c] is at z = (z1[c], z2[r]) (rows follow z2).

    Holds N n^2 numbers: for heat maps of a few inputs. For log p(x) alone use :func:`grid_log_evidence`."""
    lo, hi = _check_box(lo, hi, n)
    return torch.cat(list(_chunks(log_joint, lo, hi, n, max_points))).T.reshape(len(lo), n, n)


def grid_moments(values: torch.Tensor, lo, hi) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (N, 2) and covariance (N, 2, 2) of the distribution whose log density, up to a constant, is ``values``
    (N, n, n) on the cells of the boxes [lo, hi], as laid out by :func:`grid_log_joint`: sums over the cells."""
    lo, hi = _check_box(lo, hi, values.shape[-1])
    z1, z2 = _axes(lo, hi, values.shape[-1])
    weights = torch.softmax(values.flatten(1), 1).view_as(values)                # the mass of each cell
    zz = torch.stack(torch.broadcast_tensors(z1.unsqueeze(1), z2.unsqueeze(2)), dim=-1)   # (N, n, n, 2)
    mean = torch.einsum("irc,ircj->ij", weights, zz)
    centred = zz - mean.view(-1, 1, 1, 2)
    return mean, torch.einsum("irc,ircj,irck->ijk", weights, centred, centred)


def default_box(mu: torch.Tensor, logvar: torch.Tensor, q_sds: float = 8.0,
                prior_sds: float = 4.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The union of q(z|x)'s +-``q_sds`` standard deviations and the prior N(0, I)'s [-prior_sds, prior_sds]^2:
    p(x|z) p(z) has its mass where q put it, or, if the encoder is wrong, where the prior does. Each (N, 2)."""
    mu, sd = mu.to(f64), torch.exp(0.5 * logvar.to(f64))
    return (torch.minimum(mu - q_sds * sd, torch.tensor(-prior_sds, dtype=f64)),
            torch.maximum(mu + q_sds * sd, torch.tensor(prior_sds, dtype=f64)))


def _mass_box(values: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, drop: float):
    """The cells of ``values`` (N, n, n) within ``drop`` nats of their maximum, as a box padded by one cell."""
    n = values.shape[-1]
    keep = values >= values.flatten(1).max(1).values.view(-1, 1, 1) - drop
    h = (hi - lo) / n
    bounds = []
    for used in (keep.any(1), keep.any(2)):       # columns (z1) in use, rows (z2) in use: (N, n) each
        index = torch.arange(n, device=values.device).expand_as(used)
        first = torch.where(used, index, n).min(1).values
        last = torch.where(used, index, -1).max(1).values
        bounds.append((first - 1, last + 2))
    (f1, l1), (f2, l2) = bounds
    return lo + h * torch.stack([f1, f2], 1), lo + h * torch.stack([l1, l2], 1)


def _edge_mass(values: torch.Tensor) -> torch.Tensor:
    """The share of the grid's mass in its outermost ring of cells, shape (N,)."""
    inner = values[:, 1:-1, 1:-1].flatten(1)
    return 1 - torch.exp(torch.logsumexp(inner, 1) - torch.logsumexp(values.flatten(1), 1))


class Evidence(NamedTuple):
    """log p(x) by the grid, each field of shape (N,) (boxes (N, 2))."""

    log_px: torch.Tensor      # with 2n cells per axis on the fine box
    error: torch.Tensor       # |L_2n - L_n|: the stated accuracy
    edge_mass: torch.Tensor   # posterior mass in the outer ring of the (last) search grid: ~0 if its box was enough
    lo: torch.Tensor          # the fine box
    hi: torch.Tensor
    values: torch.Tensor | None = None   # with keep=True: log p(x, z) on the fine 2n x 2n grid, (N, 2n, 2n)


def log_evidence(log_joint: LogJoint, lo, hi, n: int = 64, search: int = 128, drop: float = 30.0,
                 include: tuple[torch.Tensor, torch.Tensor] | None = None, keep: bool = False,
                 edge_tol: float = 1e-9, max_growth: int = 3, max_points: int = MAX_POINTS) -> Evidence:
    """log p(x) with its refinement error: search the box [lo, hi] with ``search`` cells per axis (doubling it, at
    most ``max_growth`` times, while more than ``edge_tol`` of the mass sits in its outer ring), zoom to where
    log p(x, z) is within ``drop`` nats of its peak (grown to cover the box ``include``, if given), then integrate
    there with n and 2n cells per axis. ``keep`` also returns the 2n grid's values (for heat maps of a few x).
    See the module's docstring for why each step is there."""
    lo, hi = _check_box(lo, hi, search)
    for growth in range(max_growth + 1):
        coarse = grid_log_joint(log_joint, lo, hi, search, max_points)
        edge_mass = _edge_mass(coarse)
        cut = (edge_mass > edge_tol).unsqueeze(1)
        if growth == max_growth or not cut.any():
            break
        centre, half = (lo + hi) / 2, (hi - lo) / 2
        lo, hi = torch.where(cut, centre - 2 * half, lo), torch.where(cut, centre + 2 * half, hi)
    fine_lo, fine_hi = _mass_box(coarse, lo, hi, drop)
    if include is not None:
        fine_lo = torch.minimum(fine_lo, include[0].to(f64))
        fine_hi = torch.maximum(fine_hi, include[1].to(f64))
    rough = grid_log_evidence(log_joint, fine_lo, fine_hi, n, max_points)
    values = None
    if keep:
        values = grid_log_joint(log_joint, fine_lo, fine_hi, 2 * n, max_points)
        fine = torch.logsumexp(values.flatten(1), 1) + _log_cell_area(fine_lo, fine_hi, 2 * n)
    else:
        fine = grid_log_evidence(log_joint, fine_lo, fine_hi, 2 * n, max_points)
    return Evidence(fine, (fine - rough).abs(), edge_mass, fine_lo, fine_hi, values)


# ------------------------------------------------------------------------------------------------ the VAE
def check_vae(model: AE) -> VAE:
    """``model`` if it is a (non-conditional) VAE with a 2-D latent, else an AelibError saying why not."""
    if not isinstance(model, VAE) or model.conditional:
        name = getattr(model, "name", type(model).__name__)
        raise AelibError(f"the true posterior needs a 'vae' (an encoder q(z|x) and a decoder p(x|z) with the prior "
                         f"N(0, I)); got {name!r}")
    if model.latent_dim != 2:
        raise AelibError(f"the true posterior is computed on a grid over a 2-D latent space; this VAE has "
                         f"latent_dim={model.latent_dim}: build one with latent_dim=2")
    return model


def vae_log_joint(model: VAE, x: torch.Tensor) -> LogJoint:
    """log p(x, z) = log p(x|z) + log p(z) of a VAE for the images x, as a :data:`LogJoint`, in float64: Bernoulli
    p(x|z) from the decoder's logits (aelib.losses.bernoulli_log_likelihood) and p(z) = N(0, I)."""
    model = check_vae(model)
    x, _ = model.check_inputs(x)
    decoder = copy.deepcopy(model.decoder).to(f64).eval()
    pixels = x.flatten(1).to(f64)

    @torch.no_grad()
    def log_joint(z: torch.Tensor) -> torch.Tensor:
        g, n = z.shape[:2]
        z = z.to(pixels.device)
        logits = decoder(z.reshape(g * n, 2))
        log_px_z = losses.bernoulli_log_likelihood(logits, pixels.repeat(g, 1)).view(g, n)
        return (log_px_z + losses.gaussian_log_density(z)).cpu()

    return log_joint


def _encode(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, _ = check_vae(model).check_inputs(x)
    with evaluating(model):
        mu, logvar = model.posterior(x)
    return mu.cpu().to(f64), logvar.cpu().to(f64)


def vae_evidence(model: VAE, x: torch.Tensor, n: int = 64, search: int = 128, drop: float = 30.0,
                 show_q_sds: float = 0.0, keep: bool = False, max_points: int = MAX_POINTS) -> Evidence:
    """:func:`log_evidence` for a VAE's images x, with the search box :func:`default_box` from its q(z|x).
    ``show_q_sds`` > 0 grows the fine box to hold q's +-that many sd (so a heat map shows q's ellipses).

    One image at a time: its grid alone fills the decoder's batches, and a box that must grow costs only its image."""
    mu, logvar = _encode(model, x)
    sd = torch.exp(0.5 * logvar)
    lo, hi = default_box(mu, logvar)
    parts = []
    for i in range(len(mu)):
        include = (mu[i:i + 1] - show_q_sds * sd[i:i + 1], mu[i:i + 1] + show_q_sds * sd[i:i + 1]) \
            if show_q_sds > 0 else None
        parts.append(log_evidence(vae_log_joint(model, x[i:i + 1]), lo[i:i + 1], hi[i:i + 1], n=n, search=search,
                                  drop=drop, include=include, keep=keep, max_points=max_points))
    return Evidence(*(torch.cat(field) if field[0] is not None else None for field in zip(*parts)))


@dataclass
class Posterior:
    """The true posterior p(z|x) of a few images on a grid, next to the encoder's q(z|x).

    ``density[i, r, c]`` is p(z|x_i) at z = (z1[i, c], z2[i, r]), normalised so that density.sum() * cell area = 1;
    rows follow z2, so ``plt.imshow(p.density[i], origin="lower", extent=p.extent(i))`` draws it.
    """

    z1: torch.Tensor          # (N, m) cell centres along z1 (m = 2n)
    z2: torch.Tensor          # (N, m) along z2
    density: torch.Tensor     # (N, m, m)
    log_px: torch.Tensor      # (N,) log p(x) by the grid
    error: torch.Tensor       # (N,) its refinement error |L_2n - L_n|
    mean: torch.Tensor        # (N, 2) mean of p(z|x)
    cov: torch.Tensor         # (N, 2, 2) covariance of p(z|x)
    q_mean: torch.Tensor      # (N, 2) q(z|x) = N(q_mean, diag q_var)
    q_var: torch.Tensor       # (N, 2)

    @property
    def cell_area(self) -> torch.Tensor:
        """(N,) the area of one cell."""
        return (self.z1[:, 1] - self.z1[:, 0]) * (self.z2[:, 1] - self.z2[:, 0])

    @property
    def q_cov(self) -> torch.Tensor:
        """(N, 2, 2) q's covariance (diagonal: the VAE's encoder gives independent coordinates)."""
        return torch.diag_embed(self.q_var)

    def extent(self, i: int) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) of image i's grid, the outer edges of its cells, for plt.imshow."""
        h1, h2 = float(self.z1[i, 1] - self.z1[i, 0]), float(self.z2[i, 1] - self.z2[i, 0])
        return (float(self.z1[i, 0]) - h1 / 2, float(self.z1[i, -1]) + h1 / 2,
                float(self.z2[i, 0]) - h2 / 2, float(self.z2[i, -1]) + h2 / 2)


def true_posterior(model: VAE, x: torch.Tensor, n: int = 64, search: int = 128, drop: float = 30.0,
                   show_q_sds: float = 2.5, max_points: int = MAX_POINTS) -> Posterior:
    """p(z|x) on a 2n x 2n grid for each image x (a few: it keeps N (2n)^2 numbers), with q(z|x) for comparison.

    The grid is the fine box of :func:`vae_evidence`, grown to hold q's +-``show_q_sds`` sd so its 2-sd ellipse
    fits on the heat map. The moments of p(z|x) are sums over the same cells.
    """
    mu, logvar = _encode(model, x)
    ev = vae_evidence(model, x, n, search, drop, show_q_sds, keep=True, max_points=max_points)
    z1, z2 = _axes(ev.lo, ev.hi, 2 * n)
    density = torch.exp(ev.values - ev.log_px.view(-1, 1, 1))                    # p(x, z) / p(x) = p(z|x)
    mean, cov = grid_moments(ev.values, ev.lo, ev.hi)
    return Posterior(z1, z2, density, ev.log_px, ev.error, mean, cov, mu, logvar.exp())


def ellipse(mean: torch.Tensor, cov: torch.Tensor, sds: float = 1.0) -> dict[str, torch.Tensor]:
    """The ``sds``-standard-deviation ellipse of N(mean, cov) (mean (N, 2), cov (N, 2, 2)) in matplotlib's terms:
    ``matplotlib.patches.Ellipse(center, width, height, angle=angle)`` (angle in degrees). In 2-D the 1-sd ellipse
    holds 1 - e^{-1/2} = 39% of the mass and the 2-sd one 1 - e^{-2} = 86%, not 68% and 95%."""
    eigenvalues, eigenvectors = torch.linalg.eigh(cov.to(f64))                  # ascending
    major = eigenvectors[..., :, 1]
    return {"center": mean.to(f64), "width": 2 * sds * eigenvalues[..., 1].clamp_min(0).sqrt(),
            "height": 2 * sds * eigenvalues[..., 0].clamp_min(0).sqrt(),
            "angle": torch.rad2deg(torch.atan2(major[..., 1], major[..., 0]))}


# -------------------------------------------------------------------------------- ELBO <= IWAE_k <= log p(x)
class Chain(NamedTuple):
    """ELBO <= IWAE_k <= log p(x) for each image, nats, each of shape (N,); ``iwae`` maps k to its bound.

    IWAE_k is below log p(x) on average; one draw can land above it when q(z|x) is narrower than p(z|x) (the
    weights are then heavy-tailed), and far below it when q misses the posterior's mode."""

    elbo: torch.Tensor
    iwae: dict[int, torch.Tensor]
    log_px: torch.Tensor
    error: torch.Tensor       # the grid's refinement error on log_px
    gap: torch.Tensor         # log p(x) - ELBO = KL(q(z|x) || p(z|x)): the approximation gap, measured


def sampled_bounds(model: VAE, x: torch.Tensor, ks: tuple[int, ...], elbo_samples: int, seed: int = 0):
    """(ELBO, {k: IWAE_k}) for images x, float64, seeded (the global random state is left alone): the Monte Carlo
    half of :func:`bound_chain`, also used by the posterior explorer, so both show the same numbers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        elbo = evaluate.elbo(model, x, samples=elbo_samples).to(f64)
        iwae = {k: evaluate.log_likelihood(model, x, k=k).to(f64) for k in ks}
    return elbo, iwae


def bound_chain(model: VAE, x: torch.Tensor, ks: tuple[int, ...] = (100, 5000), elbo_samples: int = 1000,
                n: int = 64, seed: int = 0) -> Chain:
    """The ELBO (aelib.evaluate.elbo, its E_q[log p(x|z)] averaged over ``elbo_samples`` draws), the
    importance-weighted bounds IWAE_k (aelib.evaluate.log_likelihood) and log p(x) by the grid, for images x.

    ELBO and IWAE_k are Monte Carlo estimates (seeded; the global random state is left alone), so the chain holds
    up to their noise; log p(x) is deterministic."""
    check_vae(model)
    elbo, iwae = sampled_bounds(model, x, ks, elbo_samples, seed)
    ev = vae_evidence(model, x, n=n)
    return Chain(elbo, iwae, ev.log_px, ev.error, ev.log_px - elbo)
