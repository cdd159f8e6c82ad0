"""The documentation site (mkdocs.yml): ``mkdocs build --strict`` passes with every tutorial executed, each
tutorial's page shows its figures and no error, the API reference renders every name of the public ``__all__``s,
the docstring check (tools/docs_check.py, run by the build's hook) fails the build on a public name without a
docstring or a public module without a reference page, and the site's configuration fails it on a broken link and
on a tutorial that raises.

The full build executes the six tutorials (~1.5-2 min on 2 cores): it carries the markers ``site`` (select it alone
with ``-m site``) and ``slow`` (the fast lane leaves it out); the full suite, as CI runs it, includes it."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.py"))
PNG = re.compile(r'<img\b[^>]*\bsrc="data:image/png;base64,([A-Za-z0-9+/=\s]+)"')

sys.path.insert(0, str(TOOLS))
import docs_check  # noqa: E402

sys.path.remove(str(TOOLS))


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails on anything that is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built from this tree, strictly, into a temporary folder (tutorials executed)."""
    out = tmp_path_factory.mktemp("site")
    # the tutorials' kernels and mkdocstrings must see this tree's package, whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
           "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
    return out


@pytest.mark.site
@pytest.mark.slow
def test_every_tutorial_runs_and_shows_its_figures(site):
    assert len(TUTORIALS) == 6
    timings = json.loads((site / "tutorial-timings.json").read_text())
    for script in TUTORIALS:
        page = (site / "tutorials" / script.stem / "index.html").read_text(encoding="utf-8")
        figures = [base64.b64decode(b) for b in PNG.findall(page)]
        assert figures, f"{script.name}: no figure on its page"
        for png in figures:
            width, height = png_size(png)
            assert width >= 300 and height >= 200, f"{script.name}: a {width}x{height} figure"
        # an error or a warning printed by a cell is rendered as a stderr output; a traceback as an error output
        # (the page's style sheet names that type too: look for an output element carrying it)
        assert not re.search(r'<div[^>]*data-mime-type="application/vnd\.jupyter\.stderr"', page), \
            f"{script.name}: a cell wrote to stderr"
        assert "Traceback (most recent call last)" not in html.unescape(page), f"{script.name}: a traceback"
        assert timings[f"tutorials/{script.name}"] > 0
        # the source is offered for download beside the page
        assert (site / "tutorials" / script.stem / script.name).is_file()


@pytest.mark.site
@pytest.mark.slow
def test_the_api_reference_renders_every_public_name(site):
    pages = "".join(p.read_text(encoding="utf-8") for p in (site / "reference").rglob("index.html"))
    anchors = set(re.findall(r'\bid="(cevnsfit\.[\w.]+)"', pages))
    modules = docs_check.public_modules()
    assert len(modules) >= 5
    missing = [f"{module}.{name}" for module, names in modules.items() for name in names
               if f"{module}.{name}" not in anchors]
    assert not missing, f"public names without an entry in the API reference: {missing}"
    # the docstrings' Sphinx roles are shown as code, not as ":class:" text (the hook)
    raw = re.findall(r":(?:mod|func|class|meth|attr|data|obj|exc|const):<code>[^<]*", pages)
    assert not raw, raw[:5]


@pytest.mark.site
@pytest.mark.slow
def test_the_site_links_its_sections(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    for section in ("getting-started/", "guides/", "tutorials/", "validation/", "reference/"):
        assert f'href="{section}' in home or f'href="./{section}' in home, section
    for topic in ("sm", "mediators", "fc", "parameters", "xenonnt", "reactor", "speed"):
        assert (site / "validation" / topic / "index.html").is_file(), topic
    # a table's escaped pipe inside code is shown as a pipe (the hook)
    limits = (site / "guides" / "limits" / "index.html").read_text(encoding="utf-8")
    assert "--model NAME|all" in limits and "NAME\\|all" not in limits


# ---- the docstring check: it fails the build ----------------------------------------------------------------------
def synthetic_package(root: Path, docstring: bool = True, page: bool = True) -> tuple[Path, Path]:
    """A package ``toypkg`` with one public module (``__all__ = ["area"]``), with or without the function's docstring,
    and a reference folder with or without its page."""
    src, reference = root / "src", root / "reference"
    (src / "toypkg").mkdir(parents=True)
    reference.mkdir()
    (src / "toypkg" / "__init__.py").write_text('"""A toy package."""\n')
    body = '    """Area of a square [m^2] of side ``side`` [m]."""\n' if docstring else ""
    (src / "toypkg" / "geometry.py").write_text(textwrap.dedent('''\
        """Geometry."""

        __all__ = ["area"]


        def area(side: float) -> float:
        ''') + body + "    return side * side\n")
    if page:
        (reference / "geometry.md").write_text("# Geometry\n\n::: toypkg.geometry\n")
    return src, reference


@pytest.mark.parametrize("docstring, page, expected", [
    (True, True, []),
    (False, True, ["toypkg.geometry.area: no docstring (function)"]),
    (True, False, ["toypkg.geometry: public module (it has __all__) without a page under docs/reference/"]),
])
def test_docs_check_finds_a_missing_docstring_and_a_missing_page(tmp_path, docstring, page, expected):
    src, reference = synthetic_package(tmp_path, docstring, page)
    assert docs_check.problems("toypkg", src, reference) == expected


def test_this_package_passes_the_docs_check():
    assert docs_check.problems() == []


@pytest.mark.parametrize("docstring", [True, False])
def test_a_missing_docstring_fails_a_strict_build(tmp_path, monkeypatch, docstring):
    """The site's hook turns each problem of the check into a warning, and ``--strict`` turns a warning into a
    failed build: a minimal site with the real hook, checking the synthetic package instead of cevnsfit."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    src, reference = synthetic_package(tmp_path / "pkg", docstring=docstring)
    check = type(sys)("docs_check")
    check.problems = lambda: docs_check.problems("toypkg", src, reference)
    monkeypatch.setitem(sys.modules, "docs_check", check)  # the hook imports docs_check by name
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# A site\n")
    (tmp_path / "mkdocs.yml").write_text(f"site_name: t\ndocs_dir: docs\nhooks:\n  - {TOOLS / 'mkdocs_hooks.py'}\n")
    config = load_config(str(tmp_path / "mkdocs.yml"), strict=True, site_dir=str(tmp_path / "site"))
    if docstring:
        build(config)
        assert (tmp_path / "site" / "index.html").is_file()
    else:
        with pytest.raises(Abort, match="warnings in strict mode"):
            build(config)


# ---- the site's own configuration fails on a broken link and on a tutorial that raises ---------------------------
GOOD_TUTORIAL = '# %% [markdown]\n# # A tutorial\n\n# %%\nprint(6 * 7)\n'
PAGES = {
    "ok": {"index.md": "# Home\n\n[the tutorial](tutorials/t.py)\n", "tutorials/t.py": GOOD_TUTORIAL},
    "broken link": {"index.md": "# Home\n\n[nowhere](missing.md)\n", "tutorials/t.py": GOOD_TUTORIAL},
    "tutorial raises": {"index.md": "# Home\n", "tutorials/t.py": GOOD_TUTORIAL + '\n# %%\nraise ValueError("boom")\n'},
}


@pytest.mark.site
@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(PAGES))
def test_the_site_configuration_fails_on_a_broken_link_or_a_failing_tutorial(tmp_path, case):
    """mkdocs.yml itself (plugins, hooks, strictness, link validation) on a two-page site: the build passes, or fails
    with the broken link or the tutorial's exception."""
    docs = tmp_path / "docs"
    for name, text in PAGES[case].items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
           "NO_MKDOCS_2_WARNING": "1"}
    # the repository's configuration with this docs folder and nav (the hook's docstring check still runs)
    script = textwrap.dedent(f"""
        import logging
        from mkdocs.commands.build import build
        from mkdocs.config import load_config
        logging.basicConfig(level=logging.WARNING)  # mkdocs' warnings on stderr, as its command line prints them
        config = load_config({str(ROOT / 'mkdocs.yml')!r}, docs_dir={str(docs)!r}, site_dir={str(tmp_path / 'site')!r},
                             nav=[{{"Home": "index.md"}}, {{"Tutorial": "tutorials/t.py"}}], strict=True)
        build(config)
        """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if case == "ok":
        assert run.returncode == 0, run.stderr[-3000:]
        page = (tmp_path / "site" / "tutorials" / "t" / "index.html").read_text(encoding="utf-8")
        assert "42" in page
    elif case == "broken link":
        assert run.returncode != 0
        assert "contains a link 'missing.md', but the target is not found" in run.stderr
    else:
        assert run.returncode != 0
        assert "ValueError" in run.stderr and "boom" in run.stderr
