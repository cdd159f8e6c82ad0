"""Time responses: the fraction of each flavour's neutrinos in each analysis time bin.

* ``source_timing``: the source's arrival-time model (a pulsed source: :mod:`cevnsfit.sources.timing`) over the
  bins ``edges_us`` (us on the analysis axis), weighted by an optional time efficiency;
* ``integrated``: one bin holding every neutrino of the exposure (a steady source, or a detector without timing).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import register_response
from .energy import check_edges


@register_response("time", "source_timing", units={"edges_us": "us"})
class SourceTiming:
    """Fractions from the source's arrival times in bins ``edges_us``, weighted by ``efficiency`` (None: 1)."""

    def __init__(self, edges_us, efficiency=None):
        self.edges_us = check_edges(edges_us, "time bin edges (us)")
        self.efficiency = efficiency

    def fractions(self, flavour: str, source) -> np.ndarray:
        if source.timing is None:
            raise InputError(f"source {source.name} has no arrival times: use the 'integrated' time response")
        return source.timing.bin_fractions(flavour, self.edges_us, self.efficiency)


@register_response("time", "integrated", units={})
class IntegratedTime:
    """One time bin holding every neutrino."""

    edges_us = None

    def fractions(self, flavour: str, source) -> np.ndarray:
        return np.ones(1)
