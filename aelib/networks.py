"""The building blocks of every model: one MLP (the label joins every layer when conditional), an Encoder, a
Decoder (pixel logits) and a Discriminator (one logit), and :func:`evaluating` (eval mode, no gradients)."""
from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import IMAGE_SHAPE, N_PIXELS


class MLP(nn.Sequential):
    """Linear -> ReLU (-> Dropout) for each hidden width, then a final Linear to ``out_dim``.

    With ``n_classes`` > 0 the forward pass also takes the digit labels ``y``, and the one-hot label joins the input
    of *every* Linear layer, not only the first: each layer then has its own weights for the label, so the digit can
    steer the network all the way to the pixels (docs/results.md, "Why the models look as they do").
    """

    def __init__(self, in_dim: int, hidden_dims: tuple[int, ...], out_dim: int, dropout: float = 0.0,
                 n_classes: int = 0):
        layers: list[nn.Module] = []
        for width in hidden_dims:
            layers += [nn.Linear(in_dim + n_classes, width), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_dim = width
        layers.append(nn.Linear(in_dim + n_classes, out_dim))
        super().__init__(*layers)
        self.n_classes = n_classes

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if not self.n_classes:
            return super().forward(h)
        label = F.one_hot(y, self.n_classes).to(h.dtype)
        for layer in self:
            h = layer(torch.cat([h, label], dim=1) if isinstance(layer, nn.Linear) else h)
        return h


class Encoder(nn.Module):
    """Image (and, when conditional, the digit) -> ``out_dim`` numbers."""

    def __init__(self, out_dim: int, hidden_dims, n_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        self.net = MLP(N_PIXELS, hidden_dims, out_dim, dropout, n_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1), y)


class Decoder(nn.Module):
    """Code z (and, when conditional, the digit) -> pixel logits of shape (N, 1, 28, 28)."""

    def __init__(self, latent_dim: int, hidden_dims, n_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        self.net = MLP(latent_dim, hidden_dims, N_PIXELS, dropout, n_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z, y).view(-1, *IMAGE_SHAPE)


class Discriminator(nn.Module):
    """Code z (and, for the CAAE or a label-guided prior, the digit) -> one logit: "was z drawn from the prior?"."""

    def __init__(self, latent_dim: int, hidden_dims, n_classes: int = 0):
        super().__init__()
        self.net = MLP(latent_dim, hidden_dims, 1, n_classes=n_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z, y).squeeze(1)


def inference(method):
    """Run ``method`` in eval mode (dropout off) without gradients, then restore the training flag."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with evaluating(self):
            return method(self, *args, **kwargs)

    return wrapper


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Context manager: eval mode and no gradients inside; the previous mode is restored on exit."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)
