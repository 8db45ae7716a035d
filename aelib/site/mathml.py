"""TeX becomes MathML when the site is built (``latex2mathml``, pure Python): browsers render MathML natively, so a
page needs no maths script and no web font. Three TeX spellings it gets wrong are rewritten first and three details
of its MathML mended after; a formula it cannot convert stops the build with its TeX."""
from __future__ import annotations

import re

from latex2mathml.converter import convert
from nbconvert.filters.markdown_mistune import IPythonRenderer

from ..errors import AelibError

TEX_FIXES = [   # (pattern, replacement): spellings latex2mathml would get wrong, rewritten to ones it gets right
    (re.compile(r"\\(begin|end)\{aligned\}"), r"\\\1{align*}"),       # it knows align*, not aligned
    (re.compile(r"\\\\\[[^\]]*\]"), r"\\\\"),                          # \\[4pt]: row spacing it would print
    (re.compile(r"\\(mathbb|mathcal|mathbf|mathfrak|mathsf)\s*([A-Za-z0-9])"), r"\\\1{\2}"),  # \mathbb E: else a
]                                                                      # mathvariant, which MathML Core ignores
MATHML_FIXES = [   # (pattern, replacement) on its MathML
    # \log p: TeX's thin space after a function name before an ordinary atom (not inside a sub/superscript,
    # fraction or root, whose children are counted)
    (re.compile(r"(?<!<msub>)(?<!<msup>)(?<!<msubsup>)(?<!<munder>)(?<!<mover>)(?<!<munderover>)(?<!<mfrac>)"
                r"(?<!<mroot>)(<mi>(?:log|exp|min|max|det|arg|sin|cos|tan|lim|inf|sup)</mi>)(?=<m(?!o|space))"),
     r'\1<mspace width="0.1667em"/>'),
    (re.compile(r"<mi>&#x0007E;</mi>"), "<mo>&#x0223C;</mo>"),   # \sim: a relation, not the letter "~"
    (re.compile(r"<mi>(;|&#x027F9;)</mi>"), r"<mo>\1</mo>"),       # I(x; z), \Longrightarrow: spaced as operators
]
UNCONVERTED = re.compile(r">[^<]*(\\[A-Za-z]+|&(?![#\w]+;))[^<]*<")     # a \command or bare & left in a token


def tex_to_mathml(tex: str, display: str = "inline") -> str:
    """One TeX formula as a ``<math>`` element (``display``: "inline" or "block"); AelibError if it cannot."""
    fixed = tex
    for pattern, replacement in TEX_FIXES:
        fixed = pattern.sub(replacement, fixed)
    try:
        mathml = convert(fixed.strip(), display=display)
    except Exception as err:   # latex2mathml raises its own exception types, and sometimes plain ones
        raise AelibError(f"latex2mathml cannot convert {tex!r}: {err}") from err
    mathml = mathml.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "", 1)   # implied in HTML
    for pattern, replacement in MATHML_FIXES:
        mathml = pattern.sub(replacement, mathml)
    left = UNCONVERTED.search(mathml)
    if left:
        raise AelibError(f"latex2mathml left {left.group(1)!r} unconverted in {tex!r}")
    return mathml


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer, with MathML where it leaves TeX for MathJax."""

    def block_math(self, body: str) -> str:
        return tex_to_mathml(body, "block")

    def inline_math(self, body: str) -> str:
        return tex_to_mathml(body, "inline")

    def latex_environment(self, name: str, body: str) -> str:
        return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")
