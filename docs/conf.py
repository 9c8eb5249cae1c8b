"""Sphinx configuration of numnet's documentation site.

Build it (offline, warnings as errors) from the repository root, in English into site/ and in Simplified
Chinese into site/zh_CN/ (docs/_ext/build.py; the English site alone: python3 -m sphinx -W --keep-going -n
docs site):

    python3 -m pip install -e ".[docs]" && python3 docs/_ext/build.py site

The tutorials' code runs while the site builds (docs/_ext/numnet_docs.py), so every figure on the site is
drawn by the code next to it, from the numnet being documented.
"""

import importlib.util
import pathlib

import numnet

HERE = pathlib.Path(__file__).resolve().parent

project = "numnet"
author = "the numnet developers"
copyright = "the numnet developers"  # noqa: A001 (Sphinx's name for it)
release = numnet.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinxarg.ext",
]

source_suffix = {".md": "markdown"}
exclude_patterns = ["_ext", "_templates", "locale", "README.md"]
templates_path = ["_templates"]
root_doc = "index"

# Markdown pages: ::: fences for directives with Markdown inside, definition lists, and {attribute} lists.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The API reference: numpydoc reads the NumPy-style docstrings; the types are in the docstrings, so the
# signatures show no annotations; members in the order of the source, which is the order of the ideas.
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# A subclass's page shows what the subclass documents itself (the base class documents the contract).
autodoc_inherit_docstrings = False
# numnet's layers are documented on their own pages (numnet.layers, numnet.conv, numnet.embedding,
# numnet.recurrent, numnet.layer_norm, numnet.multi_head_attention, numnet.composite), although numnet
# exports them too.
numnet_modules_with_own_page = ["numnet.layers", "numnet.conv", "numnet.embedding", "numnet.recurrent",
                                "numnet.layer_norm", "numnet.multi_head_attention", "numnet.composite"]
# The top-level page in sections, one per concept (the module that defines each name), in the order of
# the package's layout.
numnet_api_sections = {"numnet": [
    ("numnet.network", "The network"),
    ("numnet.training", "Training"),
    ("numnet.activations", "Activations"),
    ("numnet.losses", "Losses"),
    ("numnet.initializers", "Initialisers"),
    ("numnet.optimizers", "Optimisers"),
    ("numnet.schedules", "Learning-rate schedules"),
    ("numnet.gradcheck", "Numerical gradients and gradient checking"),
    ("numnet.persistence", "Saving and loading"),
    ("numnet.doctor", "The training doctor"),
    ("numnet.lr_finder", "The learning-rate finder"),
    ("numnet.onnx_export", "ONNX export"),
    ("numnet.backend", "Backends"),
    ("numnet.errors", "Errors and warnings"),
]}
# numpydoc loads autosummary; this site does not use it.
autosummary_generate = False

# -n (nitpicky) reports every reference that does not resolve. The build is offline (no intersphinx), so
# references into other projects' documentation cannot resolve and are not checked.
nitpick_ignore_regex = [
    ("py:.*", r"(numpy|np|matplotlib|sklearn|scipy|cupy|dask|dask_ml|mpi4py|array_api_strict|pandas|torch)(\..*)?"),
    ("py:.*", r"(os|io|pathlib|collections|typing|dataclasses|argparse|warnings|contextlib|http|json)\..*"),
]

# Translations (docs/_ext/translation.py; docs/locale/README.md says how to translate a page): a catalogue per
# page, without source locations, so that an English edit changes only the messages it changes.
locale_dirs = ["locale"]
gettext_compact = False
gettext_location = False
# The pages of the Chinese site translated in full: tests/test_docs.py holds every message of their
# catalogues translated. A translator who finishes a page adds it here.
numnet_translated_pages = ["index", "glossary", "getting-started", "backpropagation", "tutorials/index",
                           "how-to/index", "reference/index",
                           *(f"tutorials/{page}" for page in (
                               "e01-noisy-line", "e02-xor", "e03-spiral", "e04-digits",
                               "e05-mnist", "e06-numerical-gradients", "e07-csv", "e08-initial-weights",
                               "e09-optimisers", "e10-batch-norm", "e11-overfitting", "e12-convolution",
                               "e13-language-models", "e14-seq2seq", "e15-attention", "e16-gpt")),
                           *(f"how-to/{page}" for page in (
                               "checkpoints", "convolution", "csv", "doctor", "gpu", "mpi",
                               "onnx", "playground", "saving-loading", "sklearn", "speed"))]
# The pages whose section titles alone are translated: the API reference (docstrings stay English).
numnet_translated_titles = ["reference/*"]

html_theme = "pydata_sphinx_theme"
html_title = f"numnet {release}"
html_static_path = ["_static"]
html_css_files = ["numnet.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "navbar_align": "left",
    # The same page in the other language first (docs/_templates/language-switch.html).
    "navbar_end": ["language-switch", "theme-switcher", "navbar-icon-links"],
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    # The page's own contents only: a page without sections then gives its width to the code.
    "secondary_sidebar_items": ["page-toc"],
}
html_copy_source = False
html_last_updated_fmt = None


def _extension(name):
    """The module docs/_ext/NAME.py."""
    spec = importlib.util.spec_from_file_location(name, HERE / "_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setup(app):
    """Register numnet's own directives (numnet-example, numnet-api, ...; see docs/_ext/numnet_docs.py) and
    the site's languages (docs/_ext/translation.py)."""
    _extension("translation").setup(app)
    return _extension("numnet_docs").setup(app)
