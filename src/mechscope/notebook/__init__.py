"""Notebook views: the engine's results as self-contained HTML for Jupyter (``_repr_html_``), with
no server. Each view takes a result object (or, for attention, plain tokens and a tensor) and
returns one HTML string; the engine's result types call them from ``_repr_html_``.

Only types are imported from the engine (under ``TYPE_CHECKING``): the engine's results import
these views lazily, so a runtime import the other way would be a cycle.
"""

from mechscope.notebook.attention import attention_html
from mechscope.notebook.attribution import attribution_html
from mechscope.notebook.lens import lens_html
from mechscope.notebook.patching import patching_html

__all__ = ["attention_html", "attribution_html", "lens_html", "patching_html"]
