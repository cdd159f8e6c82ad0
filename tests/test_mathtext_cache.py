"""The process-wide math-text cache (plotting.mathtext_cache): shared across renderers, same results as matplotlib."""

import numpy as np
from matplotlib.font_manager import FontProperties
from matplotlib.mathtext import MathTextParser, RasterParse, VectorParse

import cevnsfit.plotting.style  # noqa: F401 - installs the cache, as every figure of the package does
from cevnsfit.plotting import mathtext_cache


def test_installed_with_this_matplotlib():
    assert mathtext_cache.share_mathtext_parses()  # idempotent, and True: the private method has the known form
    assert mathtext_cache.shared_cache_info() is not None


def test_a_second_parser_reuses_the_first_ones_parse():
    s, prop = r"$\mathdefault{10^{-7}}\ \tilde g_\phi$", FontProperties(size=9.5)
    first = MathTextParser("agg").parse(s, 150, prop)
    hits = mathtext_cache.shared_cache_info().hits
    second = MathTextParser("agg").parse(s, 150, prop)  # another renderer's parser
    assert second is first
    assert mathtext_cache.shared_cache_info().hits == hits + 1


def test_shared_results_equal_matplotlibs_own():
    s, prop = r"$(g-2)_\mu\ \Delta a_\mu = (2.5 \pm 0.6)\times 10^{-9}$", FontProperties(size=7)
    for output, kind in (("agg", RasterParse), ("path", VectorParse)):
        parser = MathTextParser(output)
        shared = parser.parse(s, 72, prop)
        assert isinstance(shared, kind)  # raster and vector parses are never mixed up
        own = mathtext_cache._original(parser, s, 72, prop.copy(), True, _flags(parser))
        assert (own.width, own.height, own.depth) == (shared.width, shared.height, shared.depth)
        if kind is RasterParse:
            np.testing.assert_array_equal(np.asarray(own.image), np.asarray(shared.image))
        else:
            assert own.glyphs == shared.glyphs and own.rects == shared.rects


def _flags(parser):
    from matplotlib.backends import backend_agg
    from matplotlib.ft2font import LoadFlags

    return LoadFlags.NO_HINTING if parser._output_type == "vector" else backend_agg.get_hinting_flag()
