"""The public Python API as the documentation site sees it (read with griffe, no import): the public modules are
those that declare ``__all__``; every name they export must have a docstring, and every public module must have a
page of the API reference (a ``::: module`` line under docs/reference/).  Used by the site's build hook
(tools/mkdocs_hooks.py, so that ``mkdocs build --strict`` fails) and by tests/test_site.py."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
PACKAGE = "cevnsfit"


def _load(package: str = PACKAGE, src: Path = ROOT / "src"):
    import griffe

    return griffe.load(package, search_paths=[str(src)], allow_inspection=False)


def _modules(module):
    yield module
    for sub in module.modules.values():
        if not sub.is_alias:  # `from .stats import compiled` is a name of mediators, not a submodule
            yield from _modules(sub)


def public_modules(package=None) -> dict[str, list[str]]:
    """{module path: its ``__all__``} for every module of the package that declares one (no private module)."""
    package = _load() if package is None else package
    out = {}
    for module in _modules(package):
        if module.exports is None or any(part.startswith("_") for part in module.path.split(".")):
            continue
        out[module.path] = [e if isinstance(e, str) else e.name for e in module.exports]
    return out


def documented_modules(reference: Path = REFERENCE) -> set[str]:
    """The modules that the reference pages under ``reference`` render (``::: cevnsfit.x`` lines)."""
    found = set()
    for page in reference.glob("*.md"):
        found.update(re.findall(r"^::: *([\w.]+)\s*$", page.read_text(encoding="utf-8"), flags=re.M))
    return found


def problems(package: str = PACKAGE, src: Path = ROOT / "src", reference: Path = REFERENCE) -> list[str]:
    """Every public name without a docstring and every public module without a reference page (the package
    ``package`` under the folder ``src``, its pages under ``reference``; the defaults are this repository's)."""
    root = _load(package, Path(src))
    modules = public_modules(root)
    out = []
    for path, names in modules.items():
        module = root[path[len(package) + 1:]] if path != package else root
        for name in names:
            try:
                obj = module[name]
                if obj.is_alias:
                    obj = obj.final_target
            except Exception as exc:  # noqa: BLE001 - griffe's alias errors vary; any is a problem here
                out.append(f"{path}.{name}: cannot be resolved ({type(exc).__name__})")
                continue
            if obj.docstring is None or not obj.docstring.value.strip():
                out.append(f"{path}.{name}: no docstring ({obj.kind.value})")
    missing = sorted(set(modules) - documented_modules(Path(reference)))
    out += [f"{m}: public module (it has __all__) without a page under docs/reference/" for m in missing]
    return out


if __name__ == "__main__":
    found = problems()
    print("\n".join(found) or "every public name has a docstring and every public module a reference page")
    raise SystemExit(1 if found else 0)
