"""Hooks of the documentation site (mkdocs.yml ``hooks:``).

* Before the build: every public name of the package has a docstring and every public module a page of the API
  reference (:mod:`docs_check`); each problem is a warning, so ``mkdocs build --strict`` fails.
* Each tutorial (``docs/tutorials/*.py``, executed by mkdocs-jupyter) is timed; the times are written to
  ``<site>/tutorial-timings.json`` and a tutorial slower than ``$CEVNSFIT_TUTORIAL_LIMIT_S`` (default 120 s: twice
  the 1-minute target, for a machine shared with other work) is a warning.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("mkdocs.plugins.cevnsfit")
HERE = Path(__file__).resolve().parent
_started: dict[str, float] = {}
_timings: dict[str, float] = {}


def _limit_s() -> float:
    return float(os.environ.get("CEVNSFIT_TUTORIAL_LIMIT_S", "120"))


def on_pre_build(config, **kwargs) -> None:
    sys.path.insert(0, str(HERE))
    try:
        import docs_check
    finally:
        sys.path.remove(str(HERE))
    for problem in docs_check.problems():
        log.warning("API reference: %s", problem)
    _timings.clear()


def _is_tutorial(page) -> bool:
    return page.file.src_uri.startswith("tutorials/") and page.file.src_uri.endswith(".py")


def on_page_markdown(markdown, page, config, files, **kwargs):
    if _is_tutorial(page):
        _started[page.file.src_uri] = time.perf_counter()
    return markdown


def on_page_content(html, page, config, files, **kwargs):
    if _is_tutorial(page) and page.file.src_uri in _started:
        took = time.perf_counter() - _started.pop(page.file.src_uri)
        _timings[page.file.src_uri] = round(took, 1)
        log.info("tutorial %s ran in %.1f s", page.file.src_uri, took)
        if took > _limit_s():
            log.warning("tutorial %s took %.0f s, more than %.0f s", page.file.src_uri, took, _limit_s())
    return html


def on_post_build(config, **kwargs) -> None:
    if _timings:
        Path(config["site_dir"], "tutorial-timings.json").write_text(json.dumps(_timings, indent=1) + "\n")
