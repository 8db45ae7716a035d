"""The course website: ``python -m aelib site`` (:func:`build`) writes every notebook as a static page, its
explorers alive, its maths as MathML, nothing fetched from another host. ``build`` lives in :mod:`.builder`,
the TeX-to-MathML step in :mod:`.mathml`, the page template in ``templates/``."""
from .builder import Site, build, notebooks, serve, title

__all__ = ["Site", "build", "notebooks", "serve", "title"]
