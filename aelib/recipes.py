"""How each model is built and trained by default: one table, :data:`RECIPES`, that ``build``, ``fit``, the CLI
(``python -m aelib train``), ``figures``, the notebooks and the benchmarks all read. An argument you pass wins.

    aelib.recipes.recipe("cvae")          # Recipe(hidden_dims=(512, 256), ..., epochs=60, batch_size=64, ..., shift=1)
    model = aelib.build("cvae", seed=0)                      # build() takes the recipe's architecture
    history = aelib.fit(model, data, seed=0)                 # fit() with the recipe's epochs, batch size, lr, ...
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import AelibError


@dataclass(frozen=True)
class Recipe:
    """A model's defaults: its architecture (read by ``build``) and its training (read by ``fit``)."""

    hidden_dims: tuple[int, ...] = (512, 256)       # encoder widths; the decoder mirrors them
    wide_above: int | None = None                   # codes of more latent dims than this get wide_hidden_dims
    wide_hidden_dims: tuple[int, ...] = (1024,)     # one wide layer: learns a many-dimensional code faster
    disc_hidden_dims: tuple[int, ...] = (256, 256)  # the AAE/CAAE discriminator's widths
    dropout: float = 0.0                            # after each hidden layer, during training only
    epochs: int = 20                                # passes over the 4,000 offline training digits
    batch_size: int = 64      # small enough for many updates on the 4,000 offline digits, big enough to be fast
    lr: float = 1e-3          # Adam's usual rate; the AAE's discriminator takes a share of it (models.AAE)
    binarize: bool = False    # redraw pixels as 0/1 each time an image is served (data.Batches)
    shift: int = 0            # move each image by up to this many pixels each time it is served

    def widths(self, latent_dim: int) -> tuple[int, ...]:
        """The encoder's hidden widths for a code of ``latent_dim`` dimensions."""
        wide = self.wide_above is not None and latent_dim > self.wide_above
        return self.wide_hidden_dims if wide else self.hidden_dims


_DEFAULT = Recipe()
RECIPES = {   # each change from _DEFAULT was chosen without the test digits: docs/results.md, "Why the models look as they do"
    "ae": _DEFAULT,
    "vae": replace(_DEFAULT, batch_size=32, wide_above=8),   # the best validation -ELBO at every code size tried
    "cvae": replace(_DEFAULT, epochs=60, shift=1),           # every digit read as asked for, the 1s too
    "aae": _DEFAULT,
    "caae": replace(_DEFAULT, epochs=40, dropout=0.1),       # every digit read as asked for, on 5 seeds of 5
}
ARCHITECTURE = ("hidden_dims", "disc_hidden_dims", "dropout")        # what build() takes from a recipe
TRAINING = ("epochs", "batch_size", "lr", "binarize", "shift")       # what fit() takes from a recipe


def recipe(model_name: str) -> Recipe:
    """The recipe of ``model_name`` ('ae', 'vae', 'cvae', 'aae' or 'caae')."""
    if model_name not in RECIPES:
        raise AelibError(f"no recipe for {model_name!r}: the models are {', '.join(RECIPES)}")
    return RECIPES[model_name]


def default_epochs(model_name: str) -> int:
    """The epochs `python -m aelib train MODEL` (and ``figures``, ``fit``, the benchmarks) train for by default."""
    return recipe(model_name).epochs
