"""The results page of an experiment: one self-contained HTML file (`results/<slug>.html`) with inline SVG
plots, CSS and a few lines of JavaScript, drawn from the bucket exports Experimenter reads. It opens
offline, from a laptop folder and from a GCS bucket alike. Pure: no Dagster, no network.

`gather.page_data` reads the exports; `render.render_page` turns them into HTML."""

from jetstream_assets.results_page.gather import page_data, results_object
from jetstream_assets.results_page.model import Alert, PageData
from jetstream_assets.results_page.render import render_page

__all__ = ["Alert", "PageData", "page_data", "render_page", "results_object"]
