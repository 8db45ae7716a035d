r"""Quality numbers beyond the likelihood: does a generator obey its label, do the codes match the prior?

* :func:`conditional_accuracy`: ask a model for N digits of each label, let the judge
  (:func:`aelib.classifier.get_judge`) read them, report the fraction read as the requested label (10% = the label
  is ignored, as for a model that draws random digits).
* :func:`mmd2`: the (squared) maximum mean discrepancy between two samples, a distance between distributions that is
  0 when they are equal; here with a Gaussian kernel whose bandwidth is the median pairwise distance.
* :func:`two_sample_accuracy`: how well a k-nearest-neighbour classifier tells the two samples apart on held-out
  points (50% = indistinguishable, 100% = disjoint). Easier to read than an MMD.
* :func:`prior_matching`: both, between the codes of test digits (the aggregate posterior q(z)) and samples of the
  prior p(z) that ``model.sample`` decodes.
* :func:`own_component_fraction`: for a label-guided prior, the fraction of test digits whose code lies nearest to
  their own digit's component.

Every function is deterministic for a given ``seed`` and leaves the global random state untouched.
"""
from __future__ import annotations

import torch

from . import checks
from .checks import N_CLASSES, check_images, check_labels
from .errors import AelibError
from .networks import evaluating
from .priors import make_prior

MAX_POINTS = 2000   # prior matching compares at most this many codes with as many prior samples


# --------------------------------------------------------------------------------------- conditional accuracy
def conditional_accuracy(model, judge, n_per_digit: int = 500, seed: int = 0) -> dict:
    """Generate ``n_per_digit`` images of each digit with ``model.sample(n, y)`` and let ``judge`` read them.

    Returns ``{"overall": float, "per_digit": [10 floats], "confusion": (10, 10) int tensor}``, where
    ``confusion[asked, read]`` counts the images requested as ``asked`` that the judge read as ``read``. Any object
    with ``sample(n, y)`` returning images works, so a stub that ignores ``y`` scores about 10%.
    """
    n_per_digit, seed = checks.positive_int("n_per_digit", n_per_digit), checks.seed("seed", seed)
    confusion = torch.zeros(N_CLASSES, N_CLASSES, dtype=torch.long)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for digit in range(N_CLASSES):
            images = check_images(model.sample(n_per_digit, digit)).detach().cpu().float()
            read = judge.predict(images)
            confusion[digit] += torch.bincount(read, minlength=N_CLASSES)
    per_digit = (confusion.diag().float() / confusion.sum(1).float()).tolist()
    overall = confusion.diag().sum().item() / confusion.sum().item()
    return {"overall": overall, "per_digit": per_digit, "confusion": confusion}


# --------------------------------------------------------------------------------------- two-sample statistics
def _as_points(a) -> torch.Tensor:
    a = torch.as_tensor(a).detach().cpu().double()
    if a.dim() == 1:
        a = a.unsqueeze(1)
    if a.dim() != 2 or len(a) < 2:
        raise AelibError(f"a sample must be a (N, D) tensor with N >= 2 points, got shape {tuple(a.shape)}")
    return a


def median_bandwidth(a: torch.Tensor, b: torch.Tensor, max_points: int = 1000) -> float:
    """The median heuristic: the median Euclidean distance between distinct points of the pooled sample (of at
    most ``max_points`` of its points, evenly spaced, to keep it cheap)."""
    pooled = torch.cat([_as_points(a), _as_points(b)])
    if len(pooled) > max_points:
        pooled = pooled[torch.linspace(0, len(pooled) - 1, max_points).long()]
    d = torch.cdist(pooled, pooled)
    i, j = torch.triu_indices(len(pooled), len(pooled), offset=1)
    median = d[i, j].median().item()
    return median if median > 0 else 1.0


def mmd2(a, b, bandwidth: float | None = None) -> float:
    r"""Unbiased estimate of MMD^2(P, Q) from samples a ~ P (N, D) and b ~ Q (M, D) (Gretton et al., 2012).

    With the Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 bandwidth^2)) (bandwidth: the median heuristic when
    None), MMD^2 = E k(a, a') + E k(b, b') - 2 E k(a, b): about 0 (it can dip slightly below) when P = Q, up to 2
    when the samples are far apart. Pairs of a point with itself are left out, which makes the estimate unbiased.
    """
    a, b = _as_points(a), _as_points(b)
    if a.shape[1] != b.shape[1]:
        raise AelibError(f"the samples have {a.shape[1]} and {b.shape[1]} dimensions; they must match")
    bandwidth = median_bandwidth(a, b) if bandwidth is None else float(bandwidth)
    if not bandwidth > 0:
        raise AelibError(f"bandwidth must be positive, got {bandwidth}")
    gamma = 1.0 / (2 * bandwidth ** 2)
    n, m = len(a), len(b)
    k_aa = torch.exp(-gamma * torch.cdist(a, a).pow(2))
    k_bb = torch.exp(-gamma * torch.cdist(b, b).pow(2))
    k_ab = torch.exp(-gamma * torch.cdist(a, b).pow(2))
    term_aa = (k_aa.sum() - k_aa.diag().sum()) / (n * (n - 1))
    term_bb = (k_bb.sum() - k_bb.diag().sum()) / (m * (m - 1))
    return (term_aa + term_bb - 2 * k_ab.mean()).item()


def two_sample_accuracy(a, b, k: int = 11, seed: int = 0) -> float:
    """Accuracy of a k-nearest-neighbour classifier that tells points of ``a`` from points of ``b``.

    Both samples are cut to the same size and shuffled; each half of the points is classified by its ``k``
    nearest neighbours in the other half (two-fold), so the score is on held-out points. 0.5: the samples are
    indistinguishable to it; 1.0: they do not overlap.
    """
    k, seed = checks.positive_int("k", k), checks.seed("seed", seed)
    a, b = _as_points(a), _as_points(b)
    n = min(len(a), len(b))
    if n < 4:
        raise AelibError(f"two_sample_accuracy needs at least 4 points in each sample, got {len(a)} and {len(b)}")
    generator = torch.Generator().manual_seed(seed)
    a = a[torch.randperm(len(a), generator=generator)[:n]]
    b = b[torch.randperm(len(b), generator=generator)[:n]]
    points = torch.cat([a, b])
    labels = torch.cat([torch.zeros(n), torch.ones(n)])
    order = torch.randperm(2 * n, generator=generator)
    folds = order[: n], order[n:]
    correct = 0
    for test, train in (folds, folds[::-1]):
        kk = min(k, len(train))
        nearest = torch.cdist(points[test], points[train]).topk(kk, largest=False).indices
        votes = labels[train][nearest].mean(1)
        guess = (votes > 0.5).float()
        ties = votes == 0.5           # an even k can tie: break ties at random, fairly
        guess[ties] = torch.randint(0, 2, (int(ties.sum()),), generator=generator).float()
        correct += (guess == labels[test]).sum().item()
    return correct / (2 * n)


# --------------------------------------------------------------------------------------- codes against the prior
def _subsample(x, y, max_points: int, generator):
    x = check_images(x)
    if y is not None:
        y = check_labels(y, len(x))
    if len(x) > max_points:
        index = torch.randperm(len(x), generator=generator)[:max_points]
        x, y = x[index], (y[index] if y is not None else None)
    return x, y


CODE_NOISE_STREAM = 0x5EEDC0DE   # seeds the codes' noise apart from the prior's draws (same seed: paired twins)


def aggregate_codes(model, x, y=None) -> torch.Tensor:
    """Codes of ``x`` as the model's prior sees them: one sample of q(z|x) per image for a VAE/CVAE (so together
    they are samples of the aggregate posterior q(z)), the deterministic code for the AE/AAE/CAAE."""
    x, y = model.check_inputs(x, y)
    with evaluating(model):
        if getattr(model, "variational", False):
            mu, logvar = model.posterior(x, y)
            return (mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)).cpu()
        return model.encode(x, y).cpu()


def prior_matching(model, x, y=None, max_points: int = MAX_POINTS, seed: int = 0) -> dict[str, float]:
    """How well the codes of ``x`` match the prior that ``model.sample`` draws from.

    Returns ``{"mmd2": ..., "two_sample_accuracy": ...}`` (see :func:`mmd2`, :func:`two_sample_accuracy`) between
    the codes of (at most ``max_points``) test digits and as many prior samples. For a label-guided prior the prior
    samples use the same digits as the test images, so the two label mixes agree. For the AE, which has no prior,
    the reference is N(0, I), the distribution its ``sample`` decodes.
    """
    max_points, seed = checks.positive_int("max_points", max_points), checks.seed("seed", seed)
    generator = torch.Generator().manual_seed(seed)
    guided = model.label_guided
    if guided and y is None:
        raise AelibError(f"{model.name!r} has a label-guided prior: pass the test labels y")
    x, y = _subsample(x, y if model.uses_labels else None, max_points, generator)
    with torch.random.fork_rng(devices=[]):   # a stream of its own: the prior's draws must not be the codes' noise
        torch.manual_seed(seed ^ CODE_NOISE_STREAM)
        codes = aggregate_codes(model, x, y if model.conditional else None)
    prior = model.prior_sample(len(codes), y.cpu() if guided else None, generator).cpu()
    return {"mmd2": mmd2(codes, prior), "two_sample_accuracy": two_sample_accuracy(codes, prior, seed=seed)}


def prior_matching_per_digit(model, x, y, seed: int = 0, null_draws: int = 100) -> dict:
    """:func:`prior_matching` for the test digits of each class apart: does q(z|y) match the prior for *every* digit?

    Returns ``{"two_sample_accuracy": [10 floats], "mmd2": [10 floats], "null_95": float}``. With ~100 digits per
    class the two-sample accuracy is noisy even when the distributions are equal; ``null_95`` is the 95th percentile
    of the accuracy between two independent prior samples of that size (``null_draws`` pairs): a digit above it
    is distinguishable from the prior at the 5% level. (For a label-guided prior, compare with its digit's component.)
    """
    x = check_images(x)
    y = check_labels(y, len(x)).cpu()
    seed, null_draws = checks.seed("seed", seed), checks.positive_int("null_draws", null_draws)
    missing = [d for d in range(N_CLASSES) if not (y == d).any()]
    if missing:
        raise AelibError(f"prior_matching_per_digit needs test digits of every class; none of {missing}")
    rows = [prior_matching(model, x[y == d], y[y == d], seed=seed) for d in range(N_CLASSES)]
    counts = torch.bincount(y, minlength=N_CLASSES)
    n = min(int(counts.min()), MAX_POINTS)          # the null for the smallest class: the widest band
    generator = torch.Generator().manual_seed(seed)
    digit = torch.full((n,), int(counts.argmin())) if model.label_guided else None
    null = torch.tensor([two_sample_accuracy(model.prior_sample(n, digit, generator).cpu(),
                                             model.prior_sample(n, digit, generator).cpu(), seed=i)
                         for i in range(null_draws)])
    return {"two_sample_accuracy": [r["two_sample_accuracy"] for r in rows], "mmd2": [r["mmd2"] for r in rows],
            "null_95": null.quantile(0.95).item()}


def mixture_means() -> torch.Tensor:
    """The 10 component means of the ``mixture`` prior, shape (10, 2) (see :meth:`aelib.priors.Mixture.means`)."""
    return make_prior("mixture", 2).means()


def nearest_component(prior, z: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The component (0..9) of ``prior`` nearest to each code, shape (N,): ``prior.nearest_component`` on the CPU."""
    return torch.as_tensor(prior.nearest_component(_as_points(z).float())).long().cpu()


def own_component_fraction(model, x, y, seed: int = 0) -> float:
    """For a label-guided prior: the fraction of digits ``x`` whose code lies nearest to their own digit's component
    (1.0: every digit landed where the prior put its label; 0.1: the labels were ignored)."""
    if not model.label_guided:
        raise AelibError(f"own_component_fraction needs an 'aae' or 'caae' with label_guided=True; {model.name!r} "
                         "has no component per digit")
    x = check_images(x)
    y = check_labels(y, len(x)).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        codes = aggregate_codes(model, x, y if model.conditional else None)
    return (nearest_component(model.prior, codes, seed=seed) == y).float().mean().item()
