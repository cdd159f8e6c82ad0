"""One cache of parsed math text for all the renderers of the process.

matplotlib caches a parsed math string (log-axis tick labels such as ``$10^{-3}$``, titles, legend entries) per
``MathTextParser`` instance, and every renderer has its own parser: the canvas, each PNG and each PDF save parse
the same strings again.  ``cevnsfit reproduce`` parsed ~1 350 times about 120 distinct strings (each parse runs
pyparsing over the expression: ~15 % of its drawing time).  A parse depends only on the parser's output type
("raster" or "vector") and on the arguments of the cached call, so a result shared between the parsers of one
output type is exactly what each would have computed.

This relies on a private matplotlib method (``MathTextParser._parse_cached``, matplotlib >= 3.7); where it is
missing or has another signature nothing is changed and matplotlib parses as before.
"""

from __future__ import annotations

import functools
import inspect

from matplotlib.mathtext import MathTextParser

__all__ = ["share_mathtext_parses", "shared_cache_info"]

# distinct (string, size, dpi, output) parses kept; reproduce needs ~120, a figure a few dozen
CACHE_SIZE = 1024
_EXPECTED = ["self", "s", "dpi", "prop", "antialiased", "load_glyph_flags"]
_shared = None  # the process-wide cache, once installed
_original = None  # matplotlib's own (uncached) parse, kept for the tests


def share_mathtext_parses() -> bool:
    """Install the shared cache (idempotent); False when this matplotlib has no compatible private method."""
    global _shared, _original
    if _shared is not None:
        return True
    cached = getattr(MathTextParser, "_parse_cached", None)
    parse = getattr(cached, "__wrapped__", None)
    if parse is None or list(inspect.signature(parse).parameters) != _EXPECTED:
        return False
    parsers: dict = {}  # output type -> the parser that computes (parsing reads only class state and the type)

    @functools.lru_cache(CACHE_SIZE)
    def shared(output_type, s, dpi, prop, antialiased, load_glyph_flags):
        return parse(parsers[output_type], s, dpi, prop, antialiased, load_glyph_flags)

    def _parse_cached(self, s, dpi, prop, antialiased, load_glyph_flags):
        parsers.setdefault(self._output_type, self)
        return shared(self._output_type, s, dpi, prop, antialiased, load_glyph_flags)

    MathTextParser._parse_cached = _parse_cached
    _shared, _original = shared, parse
    return True


def shared_cache_info():
    """``functools`` cache statistics of the shared cache (None when it is not installed)."""
    return None if _shared is None else _shared.cache_info()
