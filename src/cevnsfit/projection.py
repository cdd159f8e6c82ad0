"""Expected sensitivity of a planned detector: Asimov data, median expected limits and their bands.

The detector's observed counts are the Asimov data set (SM CEvNS + nominal backgrounds,
:func:`cevnsfit.experiments.projected.load_projection`), and its cost is the same :class:`PoissonChi2` the CsI
analysis uses, with Gaussian pulls on the signal and background normalisations.  The SM has chi^2 = 0 there, so

* the **median expected limit** on g at a mass M is where Delta chi^2_A(g) reaches the threshold of the convention
  (``2dof``: 6.18, ``1dof``: 4; :mod:`cevnsfit.stats.intervals`), measured from the SM;
* the **+-1 sigma / +-2 sigma bands** use the Asimov (Wald) approximation of Cowan, Cranmer, Gross, Vitells,
  EPJC 71 (2011) 1554, arXiv:1007.1727, eq. (89): with Delta chi^2 ~ (x - x_hat)^2 / sigma^2 in the parameter x
  that the counts are linear in (x = g^2 at small g), x_hat ~ N(0, sigma^2) and the limit x_hat + k sigma
  (k = sqrt(threshold)), the N-sigma quantile of the limit solves Delta chi^2_A = (k + N)^2 -- 0 where k + N <= 0.
  No toys; the physical boundary g^2 >= 0 is ignored, as in eq. (89) (docs/projections.md);
* the **expected 1 sigma / 2 sigma interval** of a registered parameter (``--param``) is the interval of the Asimov
  Delta chi^2 (1, 4), computed by :class:`cevnsfit.poifit.PoiFit` on the detector.

Units: masses in MeV, g dimensionless, g/M in MeV^-1 in the contact limit (the JSON also gives GeV^-1, as
``cevnsfit limits`` does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .io.jsonio import nulls_for_nonfinite
from .mediators import HIGH_MASS_G_OVER_M_MEV, LOW_MASS_G, MEV_PER_GEV, default_couplings, log_grid
from .physics.models import get_model
from .stats.intervals import allowed_intervals, threshold
from .templates import build_templates, coupling_unit

__all__ = ["Projection", "ExpectedLimit", "check_parameter", "RASTER_MASSES_MEV", "BAND_SIGMAS"]

BAND_SIGMAS = (-2, -1, 0, 1, 2)
"""The Asimov bands drawn around the median expected limit, in standard deviations."""
BANDS_METHOD = ("Asimov (Wald) approximation, Cowan et al. EPJC 71 (2011) 1554 eq. (89): band N at "
                "Delta chi^2_A = (sqrt(threshold) + N)^2, 0 where negative; no toys")
RASTER_MASSES_MEV = (1e-2, 1e4, 61)
"""The projections' mass raster: (lowest [MeV], highest [MeV], number of log-spaced masses)."""


def band_levels(delta_chi2: float) -> dict[int, float]:
    """Delta chi^2_A level of each band edge N (0 = median): (sqrt(threshold) + N)^2, or 0 where k + N <= 0."""
    k = math.sqrt(delta_chi2)
    return {n: (k + n) ** 2 if k + n > 0 else 0.0 for n in BAND_SIGMAS}


@dataclass
class ExpectedLimit:
    """Median expected limit and band edges (keys -2, -1, 0, +1, +2) at one mass; unit "1" (g) or "MeV^-1" (g/M)."""

    mass_mev: float
    unit: str
    edges: dict

    @classmethod
    def at(cls, templates, mass_index: int, edges: dict) -> "ExpectedLimit":
        """The limit with ``edges`` at mass index ``mass_index`` of ``templates`` (its unit from the mass)."""
        mass = float(templates.masses_mev[mass_index])
        return cls(mass, coupling_unit(mass), edges)

    @property
    def median(self) -> float:
        return self.edges[0]

    def document(self, scale: float = 1.0) -> dict:
        return {"median": self.median * scale, "band_1sigma": [self.edges[-1] * scale, self.edges[1] * scale],
                "band_2sigma": [self.edges[-2] * scale, self.edges[2] * scale]}


class Projection:
    """Expected sensitivity of one projected experiment (:func:`~cevnsfit.experiments.projected.load_projection`) (Asimov data, the experiment's cost)."""

    def __init__(self, experiment, cl: str = "2dof"):
        self.experiment = experiment
        self.cl = cl
        self.threshold = threshold(cl)
        self.cost = experiment.cost()
        # 0 up to rounding (the Asimov data are the SM prediction): Delta chi^2 is measured from it
        self.chi2_sm = float(self.cost(experiment.kernel.sm_counts()))

    def delta_chi2(self, templates, mass_index: int, couplings) -> np.ndarray | float:
        """Delta chi^2_A of couplings ``g`` (scalar or array) at mass index ``mass_index`` of ``templates``."""
        return self.cost(templates.counts(couplings, mass_index)) - self.chi2_sm

    def _limit(self, templates, mass_index: int, couplings: np.ndarray, refine: bool) -> ExpectedLimit:
        g = np.concatenate([[0.0], couplings[couplings > 0]])
        delta = self.delta_chi2(templates, mass_index, g)
        f = (lambda x: float(self.delta_chi2(templates, mass_index, x))) if refine else None
        edges = {n: (0.0 if level <= 0 else allowed_intervals(g, delta, level, refine=f).limit)
                 for n, level in band_levels(self.threshold).items()}
        return ExpectedLimit.at(templates, mass_index, edges)

    def toy_limit(self, templates, mass_index: int, couplings, n_toys: int = 500, seed: int = 0) -> ExpectedLimit:
        """Band edges from replicated experiments instead of the Asimov approximation: ``n_toys`` replicas thrown
        at the SM (g = 0) by :class:`cevnsfit.stats.toys.Line` (Poisson counts, pull centres randomised), each
        with its limit = the upper edge of the interval containing g = 0 where chi^2(g) - min_{g' >= 0} chi^2(g')
        stays below the threshold (0 if g = 0 is excluded); the edges
        are the quantiles Phi(N) of those limits (N = -2..2), with ``seed`` fixed (reproducible)."""
        from scipy.stats import norm

        from .stats.toys import Line, LineMember, block_rng

        grid = np.concatenate([[0.0], np.asarray(couplings, float)])
        line = Line([LineMember.linear(self.cost, templates.coefficients, templates.basis(mass_index))], grid)
        rng = block_rng(seed, ("projection", self.experiment.name, mass_index))
        t = line.t_grid(line.throw(0.0, rng, n_toys))
        # the tabulated limit of `cevnsfit limits`: upper edge of the allowed interval containing g = 0 (an island
        # beyond it does not count); 0 when the toy excludes g = 0 itself
        limits = np.array([allowed_intervals(grid, t[k], self.threshold).limit for k in range(n_toys)])
        limits = np.nan_to_num(limits, nan=0.0, posinf=np.inf)
        edges = {n: float(np.quantile(limits, norm.cdf(n))) for n in BAND_SIGMAS}
        return ExpectedLimit.at(templates, mass_index, edges)

    def mediator(self, model, masses_mev=None, toys: int = 0, seed: int = 0) -> dict:
        """Median expected limits with bands: light (M = 0, on g), contact (M = inf, on g/M) and a mass raster.
        ``toys`` > 0 adds toy bands (:meth:`toy_limit`, fixed ``seed``) on the two asymptotic lines."""
        model = get_model(model)
        masses = np.geomspace(*RASTER_MASSES_MEV) if masses_mev is None else np.asarray(masses_mev, float)
        exp = self.experiment
        out = {"model": model.name}
        for key, mass, span in (("low_mass", 0.0, LOW_MASS_G), ("high_mass", np.inf, HIGH_MASS_G_OVER_M_MEV)):
            tpl = build_templates(exp, model, [mass])
            out[key] = self._limit(tpl, 0, log_grid(*span), refine=True)
            if toys:
                # a grid about the Asimov median: the toy limits fall within its +-2 sigma band, well inside
                median = out[key].median
                out[f"{key}_toys"] = self.toy_limit(tpl, 0, np.geomspace(median / 20, median * 5, 160), toys, seed)
        tpl = build_templates(exp, model, masses)
        grid = default_couplings()
        out["raster"] = [self._limit(tpl, i, grid, refine=False) for i in range(masses.size)]
        return out

    def mediator_document(self, result: dict) -> dict:
        """JSON document of :meth:`mediator` (g/M in GeV^-1 as in ``cevnsfit limits``; null = no limit)."""
        raster = result["raster"]
        return nulls_for_nonfinite({
            "model": result["model"], "cl": self.cl, "delta_chi2": self.threshold, "bands": BANDS_METHOD,
            "units": {"mass": "MeV", "g": "1", "g_over_M": "GeV^-1"},
            "g_low_mass": result["low_mass"].document(),
            "g_over_M_high_mass": result["high_mass"].document(MEV_PER_GEV),
            **({"toys": {"method": "quantiles of the limits of replicas thrown at the SM (stats/toys.py Line, profile "
                                   "construction), fixed seed",
                         "g_low_mass": result["low_mass_toys"].document(),
                         "g_over_M_high_mass": result["high_mass_toys"].document(MEV_PER_GEV)}}
               if "low_mass_toys" in result else {}),
            "raster": {"mass_mev": [r.mass_mev for r in raster],
                       **{f"g_{_band_key(n)}": [r.edges[n] for r in raster] for n in BAND_SIGMAS}},
        })

    def parameter(self, name: str, points: int | None = None) -> dict:
        """Expected intervals (1 sigma, 90 %, 2 sigma) of a registered parameter from the Asimov Delta chi^2."""
        from .poifit import PoiFit

        exp = self.experiment
        check_parameter(exp, name)
        fitter = PoiFit([name], dataset=exp.name, params=exp.params, experiments={exp.name: exp})
        doc = fitter.run(points).document()
        return {"param": name, "unit": doc["units"][name], "sm": doc["sm"][name], "asimov_best_fit": doc["best_fit"][name],
                "expected_intervals": doc["intervals"][name],
                "method": "Asimov data set: intervals where Delta chi^2_A < 1 (1 sigma), 2.71 (90 %), 4 (2 sigma)"}


def check_parameter(experiment, name: str) -> None:
    """InputError unless ``name`` is a registered parameter that acts on the detector (:func:`cevnsfit.poi.check_applies`:
    a neutron radius needs its nucleus among the targets, a flavour its source); cheap: no kernel is built."""
    from .poi import check_applies, get_poi

    check_applies(get_poi(name, experiment.params), {experiment.name: experiment}, experiment.name)


def _band_key(n: int) -> str:
    return "median" if n == 0 else f"{'minus' if n < 0 else 'plus'}{abs(n)}sigma"
