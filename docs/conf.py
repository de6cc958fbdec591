"""Sphinx configuration of the course site (`make html`; docs/build.py prepares the sources).

Sphinx with MyST-NB: the notebooks are rendered as they were executed by docs/build.py (quick or
full mode), never re-executed here, so the site shows exactly the run that was measured.
"""

project = "cnn-course"
author = "the cnn-course authors"
copyright = "the cnn-course authors"  # noqa: A001 (Sphinx's name)

extensions = ["myst_nb"]
html_theme = "sphinx_book_theme"
html_title = "Convolutional networks: the course"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# docs/build.py executed every notebook already (and timed it): render the stored outputs.
nb_execution_mode = "off"
# Widgets need a live kernel: on a static page show the static figure each explorer carries
# beside its widget view (cnnlib.widgets), not an empty widget.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
# `hide-input` cells (long self-checks) show collapsed, as in JupyterLab.
nb_render_markdown_format = "myst"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]
