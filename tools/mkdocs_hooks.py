"""Hooks of the documentation site (mkdocs.yml ``hooks:``).

* Before the build: every public name of the package has a docstring and every public module a page of the API
  reference (:mod:`docs_check`); each problem is a warning, so ``mkdocs build --strict`` fails.
* Each tutorial (``docs/tutorials/*.py``, executed by mkdocs-jupyter) is timed; the times are written to
  ``<site>/tutorial-timings.json`` and a tutorial slower than ``$CEVNSFIT_TUTORIAL_LIMIT_S`` (default 120 s: twice
  the 1-minute target, for a machine shared with other work) is a warning.
* On the API reference pages, Sphinx roles left in docstrings (``:class:`x```) are shown as the code alone; in
  code on every page, a table's escaped pipe ``\\|`` is shown as ``|``.
"""

from __future__ import annotations

import json
import logging
import os
import re
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


# a Sphinx cross-reference role left in a docstring (``:class:`~a.b.C```), as mkdocstrings renders it:
# ``:class:<code>~a.b.C</code>``; shown as the code alone, ``~`` keeping the last name only (Sphinx's meaning)
_ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|obj|exc|const):<code>(~?)([^<]*)</code>")


def _drop_roles(html: str) -> str:
    return _ROLE.sub(lambda m: f"<code>{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}</code>", html)


# a pipe inside code in a Markdown table is written ``\|`` (GitHub's tables need it); Python-Markdown keeps the
# backslash inside code spans
_CODE = re.compile(r"<code>[^<]*\\\|[^<]*</code>")


def on_page_content(html, page, config, files, **kwargs):
    if page.file.src_uri.startswith("reference/"):
        html = _drop_roles(html)
    html = _CODE.sub(lambda m: m[0].replace("\\|", "|"), html)
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
