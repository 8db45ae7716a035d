r"""Priors p(z) for the adversarial autoencoders.

A VAE needs a prior whose KL to q(z|x) has a closed form, in practice N(0, I). An adversarial autoencoder only
needs *samples* of p(z): a discriminator learns to tell them from encoded digits, and the encoder learns to fool it.
So any distribution we can sample from will do. Three are here, all on a 2-D code:

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
MIXTURE_RADIAL_STD = 0.5   # each component is an ellipse, long along the circle...
MIXTURE_TANGENT_STD = 0.1  # ...and thin across it, as in Makhzani et al., figure 4
SWISS_ROLL_TURNS = 1.5     # turns of the spiral
SWISS_ROLL_NOISE = 0.08    # thickness of the ribbon

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

    def __repr__(self):
        return f"{type(self).__name__}(latent_dim={self.latent_dim}, label_guided={self.label_guided})"


class Gaussian(Prior):
    name = "gaussian"

    def sample(self, n, y=None, generator=None):
        return torch.randn(n, self.latent_dim, generator=generator)


class Mixture(Prior):
    """Ten elongated Gaussians with their means on a circle of radius MIXTURE_RADIUS."""

    name = "mixture"

    def sample(self, n, y=None, generator=None):
        k = self._components(n, y, generator)
        angle = 2 * math.pi * k.float() / N_COMPONENTS
        radial = MIXTURE_RADIUS + MIXTURE_RADIAL_STD * torch.randn(n, generator=generator)
        tangent = MIXTURE_TANGENT_STD * MIXTURE_RADIUS * torch.randn(n, generator=generator)
        x = radial * torch.cos(angle) - tangent * torch.sin(angle)
        y_ = radial * torch.sin(angle) + tangent * torch.cos(angle)
        return torch.stack([x, y_], dim=1)


class SwissRoll(Prior):
    """A 2-D spiral: position t in [0, 1) along it, radius growing with t; stretch k covers t in [k/10, (k+1)/10)."""

    name = "swiss_roll"

    def sample(self, n, y=None, generator=None):
        k = self._components(n, y, generator)
        t = (k.float() + torch.rand(n, generator=generator)) / N_COMPONENTS
        angle = 2 * math.pi * SWISS_ROLL_TURNS * t + math.pi / 2
        radius = 1.0 + 3.0 * t
        point = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
        return point + SWISS_ROLL_NOISE * torch.randn(n, 2, generator=generator)


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
