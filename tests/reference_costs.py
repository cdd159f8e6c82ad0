"""Independent reference implementations of the profiled costs (the former numpy profiles of cevnsfit.stats, kept in
tests as the references the compiled kernels are compared with): :func:`reference` gives the one of a cost."""

from __future__ import annotations

from reference_gaussian import ReferenceGaussian
from reference_morph import ReferenceMorphed
from reference_poisson import ReferencePoisson
from reference_toys import GOLDEN_STEPS, ReferenceLine

from cevnsfit.stats.chi2 import GaussianChi2, PoissonChi2
from cevnsfit.stats.morphing import MorphedPoissonChi2

__all__ = ["GOLDEN_STEPS", "ReferenceGaussian", "ReferenceLine", "ReferenceMorphed", "ReferencePoisson", "reference"]


def reference(cost, **options):
    """The reference profile of ``cost`` (built from its public attributes; priors centred at 0)."""
    for kind, ref in ((PoissonChi2, ReferencePoisson), (GaussianChi2, ReferenceGaussian),
                      (MorphedPoissonChi2, ReferenceMorphed)):
        if isinstance(cost, kind):
            return ref.of(cost, **options)
    raise TypeError(f"no reference profile for {type(cost).__name__}")
