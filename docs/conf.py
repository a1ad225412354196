"""Sphinx configuration for sockshock's documentation.

Build (warnings are errors, no network):

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

from sockshock import __version__  # noqa: E402 (after the path is set)

project = "sockshock"
author = "The sockshock developers"
copyright = "the sockshock developers"
release = __version__
version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
    "sockshock_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

# MyST: headings get anchors for [text](page.md#anchor) links, which are checked.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# autodoc + napoleon (Google-style docstrings: Args, Returns, Raises, Example).
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Smart quotes, but no dashes: "--" stays "--", so an option name in prose, a help
# text or a docstring (--sockshock-seed, --api) reads as typed, never as "–api". The
# extension's page check warns about any that still shows a dash.
smartquotes_action = "qe"

html_theme = "furo"
html_title = f"sockshock {release}"
html_static_path: list[str] = []
pygments_style = "friendly"


def _cpython_docstrings_verbatim(app, what, name, obj, options, lines):  # type: ignore[no-untyped-def]
    """``sockshock.socketserver`` keeps CPython's docstrings, which are plain text,
    not reStructuredText: show them as written."""
    if name.startswith("sockshock.socketserver.") and lines:
        lines[:] = ["::", "", *("    " + line for line in lines), ""]


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-process-docstring", _cpython_docstrings_verbatim)
