"""Sphinx configuration of the boml documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors in CI).
Nothing here needs the network or a binary tool: the pipeline figure is a hand-written
SVG, the combinations table and the API reference are generated from the code.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))
sys.path.insert(0, os.path.join(HERE, "_ext"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import boml  # noqa: E402

project = "boml"
author = "boml developers"
copyright = "2026, boml developers; BOML by Yaohua Liu and Risheng Liu"  # noqa: A001
version = release = boml.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "bomldocs",
]

master_doc = root_doc = "index"
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "README.md", "_ext"]
templates_path = []
html_static_path = ["_static"]
html_theme = "alabaster"
html_theme_options = {"description": "Bilevel optimization for meta-learning on TensorFlow's graph mode"}

# Google-style docstrings (the package also has a few ``:param:`` ones, which Sphinx reads natively).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # namedtuple fields are documented by autodoc already

autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_inherit_docstrings = False  # TensorFlow's docstrings are not reStructuredText
autodoc_default_options = {"show-inheritance": True}
# mathjax is loaded from a CDN by the browser only; the build itself never touches the network.
