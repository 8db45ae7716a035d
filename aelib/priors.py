r"""Priors p(z) for the adversarial autoencoders.

A VAE needs the prior's density log p(z) (aelib's VAE uses N(0, I), whose KL to q(z|x) has a closed form; other
priors need a Monte Carlo KL). An adversarial autoencoder only needs *samples* of p(z): a discriminator learns to
tell them from encoded digits, and the encoder learns to fool it. So any distribution we can sample from will do.
Three are here, all on a 2-D code:

* ``gaussian``: N(0, I), the VAE's prior, for comparison (any latent_dim);
* ``mixture``: 10 Gaussians with their means on a circle, one per digit;
* ``swiss_roll``: a spiral ribbon cut into 10 stretches, one per digit.

With ``label_guided=True`` (Makhzani et al., 2016, section 5) the digit picks the component: the discriminator sees
the label next to the code, so each digit must land on its own component.
"""
from __future__ import annotations

import math

import torch

from .errors import AelibError

N_COMPONENTS = 10          # one mixture component / swiss-roll stretch per digit
MIXTURE_RADIUS = 4.0       # the component means lie on a circle of this radius
MIXTURE_RADIAL_STD = 0.5   # each component is an ellipse: std 0.5 along the radius...
MIXTURE_TANGENT_STD = 0.1  # ...and 0.1 x radius (here 0.4) along the circle
SWISS_ROLL_TURNS = 1.5     # turns of the spiral
SWISS_ROLL_NOISE = 0.08    # thickness of the ribbon
SWISS_ROLL_GRID = 1000     # points on the spiral's centre line used to find the nearest stretch

PRIORS = ("gaussian", "mixture", "swiss_roll")


class Prior:
    """A distribution over codes we can sample from: ``sample(n, y=None)`` returns an (n, latent_dim) tensor."""

    name = "prior"

    def __init__(self, latent_dim: int, label_guided: bool = False):
        self.latent_dim = latent_dim
        self.label_guided = label_guided

    def _components(self, n: int, y, generator) -> torch.Tensor:
        """The component (0..9) of each sample: the digit when label-guided, else uniform at random."""
        if y is None:
            if self.label_guided:
                raise AelibError(f"the label-guided {self.name} prior needs labels y to pick each sample's component")
            return torch.randint(N_COMPONENTS, (n,), generator=generator)
        y = torch.as_tensor(y).long().cpu()
        if y.shape != (n,):
            raise AelibError(f"prior labels must have shape ({n},), got {tuple(y.shape)}")
        return y

    def sample(self, n: int, y=None, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def nearest_component(self, z, per_component: int = 500) -> torch.Tensor:
        """The component (0..9) nearest each code z of shape (N, latent_dim), as an int64 tensor of shape (N,).

        For a label-guided prior, ``(prior.nearest_component(codes) == labels).float().mean()`` is the fraction of
        digits encoded onto their own component. This general version works for any prior that samples by
        component: it draws ``per_component`` samples of each (with a fixed seed) and returns the component of the
        sample nearest each code. Priors with a simple shape override it with an exact rule.
        """
        z = _codes(z, self.latent_dim)
        labels = torch.arange(N_COMPONENTS).repeat_interleave(per_component)
        reference = self.sample(len(labels), labels, torch.Generator().manual_seed(0)).float()
        return labels[torch.cdist(z, reference).argmin(dim=1)]

    def __repr__(self):
        return f"{type(self).__name__}(latent_dim={self.latent_dim}, label_guided={self.label_guided})"


class Gaussian(Prior):
    name = "gaussian"

    def sample(self, n, y=None, generator=None):
        return torch.randn(n, self.latent_dim, generator=generator)

    def nearest_component(self, z, per_component: int = 500):
        raise AelibError("the gaussian prior has no components: nearest_component applies to 'mixture' and "
                         "'swiss_roll'")


class Mixture(Prior):
    """Ten elongated Gaussians with their means on a circle of radius MIXTURE_RADIUS."""

    name = "mixture"

    def means(self) -> torch.Tensor:
        """The component means, shape (10, 2): component k sits at angle 2 pi k / 10 on the circle."""
        angle = 2 * math.pi * torch.arange(N_COMPONENTS) / N_COMPONENTS
        return MIXTURE_RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)

    def sample(self, n, y=None, generator=None):
        k = self._components(n, y, generator)
        angle = 2 * math.pi * k.float() / N_COMPONENTS
        radial = MIXTURE_RADIUS + MIXTURE_RADIAL_STD * torch.randn(n, generator=generator)
        tangent = MIXTURE_TANGENT_STD * MIXTURE_RADIUS * torch.randn(n, generator=generator)
        x = radial * torch.cos(angle) - tangent * torch.sin(angle)
        y_ = radial * torch.sin(angle) + tangent * torch.cos(angle)
        return torch.stack([x, y_], dim=1)

    def nearest_component(self, z, per_component: int = 500) -> torch.Tensor:
        """The component whose mean is nearest each code (equivalently: the nearest angle), shape (N,)."""
        return torch.cdist(_codes(z, self.latent_dim), self.means()).argmin(dim=1)


class SwissRoll(Prior):
    """A 2-D spiral: position t in [0, 1) along it, radius growing with t; stretch k covers t in [k/10, (k+1)/10)."""

    name = "swiss_roll"

    @staticmethod
    def centre_line(t: torch.Tensor) -> torch.Tensor:
        """The points of the spiral (without the noise) at positions t in [0, 1), shape (len(t), 2)."""
        angle = 2 * math.pi * SWISS_ROLL_TURNS * t + math.pi / 2
        radius = 1.0 + 3.0 * t
        return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)

    def sample(self, n, y=None, generator=None):
        k = self._components(n, y, generator)
        t = (k.float() + torch.rand(n, generator=generator)) / N_COMPONENTS
        return self.centre_line(t) + SWISS_ROLL_NOISE * torch.randn(n, 2, generator=generator)

    def nearest_component(self, z, per_component: int = 500) -> torch.Tensor:
        """The stretch holding the point of the spiral nearest each code, shape (N,)."""
        t = (torch.arange(SWISS_ROLL_GRID) + 0.5) / SWISS_ROLL_GRID
        nearest = torch.cdist(_codes(z, self.latent_dim), self.centre_line(t)).argmin(dim=1)
        return nearest * N_COMPONENTS // SWISS_ROLL_GRID


def _codes(z, latent_dim: int) -> torch.Tensor:
    z = torch.as_tensor(z).detach().float().cpu()
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise AelibError(f"codes must have shape (N, {latent_dim}), got {tuple(z.shape)}")
    return z


def make_prior(name: str, latent_dim: int, label_guided: bool = False) -> Prior:
    """The prior called ``name`` (one of PRIORS) over ``latent_dim`` dimensions."""
    classes = {cls.name: cls for cls in (Gaussian, Mixture, SwissRoll)}
    if name not in classes:
        raise AelibError(f"unknown prior {name!r}: choose one of {', '.join(PRIORS)}")
    if name != "gaussian" and latent_dim != 2:
        raise AelibError(f"the {name} prior is 2-D: use latent_dim=2 (got {latent_dim}), or prior='gaussian'")
    if name == "gaussian" and label_guided:
        raise AelibError("a label-guided prior needs one component per digit: use prior='mixture' or 'swiss_roll'")
    return classes[name](latent_dim, label_guided)
