"""Explorers that decode in the browser: Python prepares (weights packed once, the latent map drawn once), the
browser decodes on every move, with or without a kernel.

    from aelib import explorers
    explorers.latent_explorer(model, data)          # z1, z2 sliders and a map (+ a digit picker for CVAE/CAAE)
    explorers.interpolation_explorer(model, data)   # the straight path between two test digits' codes
    explorers.style_explorer(model, data)           # CVAE/CAAE: keep the style, switch the digit
    explorers.posterior_explorer(model, data)       # 2-D VAE: p(z|x) on a grid beside q(z|x)
    explorer.save_html("explorer.html")             # one self-contained page

Modules: ``latent`` and ``posterior`` (one per widget, with its .js and .css beside it), ``packing`` (the decoder
as bytes), ``raster`` (the pictures Python draws), ``page`` (booting outside Jupyter), ``stored`` (the state a
notebook keeps), ``kinds`` (which widget runs which module). ``aelib.widgets`` is this package's former name.
"""
from .latent import Explorer, interpolation_explorer, latent_explorer, style_explorer
from .posterior import PosteriorExplorer, posterior_explorer

__all__ = ["Explorer", "PosteriorExplorer", "interpolation_explorer", "latent_explorer", "posterior_explorer",
           "style_explorer"]
