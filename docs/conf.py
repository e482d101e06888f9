"""Sphinx configuration of the scwlm documentation.

Build (what ``.ci/docs.sh`` runs)::

    pip install -e ".[doc]"
    SCWLM_TUTORIAL_QUICK=1 sphinx-build -W --keep-going -b html docs docs/_build/html

The tutorials (``tutorials/*.ipynb``, reached through the ``docs/tutorials`` link) are stored
without outputs. They are executed by myst-nb only when ``SCWLM_TUTORIAL_QUICK`` is set, and then
at the reduced "quick" size; otherwise they are rendered as code without outputs. Notebooks whose
real data cannot be found locally (``$SCWLM_DATA_DIR`` or the user cache; nothing is downloaded)
are rendered without executing them.
"""

from __future__ import annotations

import os
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

QUICK = bool(os.environ.get("SCWLM_TUTORIAL_QUICK"))
nb_execution_mode = "force" if QUICK else "off"
nb_execution_timeout = 900  # seconds per cell
nb_execution_raise_on_error = True
nb_execution_in_temp = True  # files the notebooks write (GIFs) go to a temporary folder
nb_merge_streams = True
nb_execution_show_tb = True

#: real data each tutorial needs (any one of the files); see datasets/README.md
_TUTORIAL_DATA = {
    "tutorials/ocean_vortex_interpolation.ipynb": ("oceans_small_vortex.npz",),
    "tutorials/eb_leave_one_out.ipynb": ("eb_velocity_v5.npz", "eb_velocity_v5_subset2750.npz"),
    "tutorials/dentate_gyrus_scvelo.ipynb": ("dentategyrus_cellrank_200obs.h5ad",),
}


def _data_available(names: tuple[str, ...]) -> bool:
    from scwlm.datasets import data_path

    for name in names:
        try:
            data_path(name, download=False)
            return True
        except (FileNotFoundError, ValueError):
            continue
    return False


nb_execution_excludepatterns: list[str] = []
if QUICK:
    for _nb, _files in _TUTORIAL_DATA.items():
        if not _data_available(_files):
            nb_execution_excludepatterns.append(_nb)
            print(f"[scwlm docs] {_nb}: none of {list(_files)} found (set SCWLM_DATA_DIR); rendered without executing")

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
