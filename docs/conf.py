"""Sphinx configuration of the scwlm documentation.

Build (what ``.ci/docs.sh`` runs)::

    pip install -e ".[doc]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

The tutorials (``tutorials/*.ipynb``, reached through the ``docs/tutorials`` link) are stored with
the outputs of a full-size run (``python -m benchmarks.tutorials``), and myst-nb renders those
outputs without executing anything: the published pages show models trained with the settings
each notebook states, never the seconds-long quick runs. The quick runs are the test suite's smoke
test (``tests/test_tutorials.py``).
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if not (ROOT / "src" / "scwlm").is_dir():  # pragma: no cover - the layout this file expects
    raise RuntimeError(f"expected the scwlm sources in {ROOT / 'src' / 'scwlm'}")
try:
    import scwlm
except ImportError:  # documentation built without installing the package
    sys.path.insert(0, str(ROOT / "src"))
    import scwlm

# -- project -----------------------------------------------------------------------------------------
project = "scwlm"
author = "scwlm developers"
copyright = f"{date.today().year}, {author}"
release = scwlm.__version__
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------------------------------
extensions = [
    "myst_nb",  # Markdown pages and executed notebooks (includes myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "tutorials/README.md",  # the folder's own README; docs/tutorials.md is the index page
]
templates_path: list[str] = []
pygments_style = "default"

# -- MyST / myst-nb ----------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

nb_execution_mode = "off"  # render the outputs stored with the notebooks (full-size runs)
nb_merge_streams = True

# -- autodoc / autosummary / numpydoc ----------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autoclass_content = "class"
numpydoc_show_class_members = False  # members are documented by autodoc (``members`` above)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- HTML --------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = f"scwlm {release}"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "navigation_with_keys": False,
}
html_static_path: list[str] = []
