"""Sphinx configuration of twisted-pyro's documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (CI does, with
warnings as errors). The API reference is generated from the docstrings (autodoc), so the
package is imported from this checkout; nothing is fetched from the network (no
intersphinx), so the build works offline.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import pyro  # noqa: E402 -- after the path is set

project = "twisted-pyro"
author = "the twisted-pyro authors"
copyright = "the twisted-pyro authors; Apache-2.0"
release = version = pyro.__version__

extensions = ["sphinx.ext.autodoc"]

exclude_patterns = ["_build"]
# ``code`` in reST is a literal, as in the docstrings (which are written for both readers of
# the source and of these pages).
default_role = "literal"
highlight_language = "python3"

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Signatures show the hints; the types stay in the signature instead of being repeated.
autodoc_typehints = "signature"

html_theme = "alabaster"
html_title = "twisted-pyro %s" % release
html_static_path: list[str] = []
