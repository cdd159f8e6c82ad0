"""The profiled chi^2 against a brute-force iminuit minimisation of the full, unprofiled chi^2 (AC22, physics.md
8.7, 9.6, 12.1), written here from the specification and the experiments' inputs only (observed counts,
background templates, pull widths, LAr per-bin sigma and shape deltas); no code of ``cevnsfit.stats``.

CsI: 4 normalisation pulls; LAr: 4 pulls and 5 shape nuisances, of which the three two-sided ones make the chi^2
piecewise quadratic -- MIGRAD is run once per sign orthant of those (each a smooth problem, bounds at 0) and the
best orthant kept; CsI+LAr: all 13 nuisances at once.  Points: the SM, a strongly excluded B-L point, the
L_mu-L_tau sign-flip island and a scalar near its limit.

Achieved: |chi^2_profiled - chi^2_MIGRAD| <= 2e-8 (and the profiled value is never above MIGRAD's by more than
that); allowed 1e-6.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from iminuit import Minuit

from cevnsfit.physics.models import get_model
from cevnsfit.templates import build_templates

TOL = 1e-6  # achieved <= 2e-8 (module docstring)

POINTS = {
    "sm": None,
    "B-L excluded": ("B-L", 10.0, 8e-5),
    "L_mu-L_tau island": ("L_mu-L_tau", math.inf, 6.5e-5),
    "scalar": ("scalar", 10.0, 1.5e-5),
}


def _signal(exp, point):
    if point is None:
        return exp.signal(exp.kernel.sm_counts())
    name, mass, g = point
    return build_templates(exp, get_model(name), [mass]).counts(g, 0)


def test_pull_widths_are_the_specification(csi, lar):
    # physics.md 8.7 and 9.6: the chi^2 below reads them from the experiments
    assert csi.sigmas == {"cevns": 0.12, "brn": 0.25, "nin": 0.35, "ss": 0.021}
    assert lar.sigmas == {"cevns": 0.13, "ss": 0.0079, "pbrn": 0.32, "dbrn": 1.0}
    np.testing.assert_allclose(lar.likelihood.stat_sigma(lar), np.sqrt(lar.observed + lar.backgrounds["ss"] / 5))


class CsIChi2:
    """2 sum [N - D + D ln(D/N)] + sum_z (eta_z/sigma_z)^2, N = sum_z (1 + eta_z) N_z (D = 0 bins: 2N)."""

    def __init__(self, exp, signal):
        self.d = exp.observed.ravel()
        self.tpl = [signal.ravel()] + [exp.backgrounds[z].ravel() for z in ("brn", "nin", "ss")]
        self.sig = [exp.sigmas[z] for z in ("cevns", "brn", "nin", "ss")]
        self.n = 4

    def __call__(self, eta):
        n = sum((1.0 + e) * t for e, t in zip(eta, self.tpl))
        if np.any(n <= 0):
            return 1e30
        d = self.d
        dev = 2.0 * np.sum(n - d + np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0) / n), 0.0))
        return dev + sum((e / s) ** 2 for e, s in zip(eta, self.sig))


class LArChi2:
    """sum [(D - sum_z (1 + eta_z + sum_l eta^sys_zl) N_z) / sigma]^2 + sum (eta_z/sigma_z)^2 + sum eps_l^2."""

    def __init__(self, exp, signal):
        comps = ("cevns", "ss", "pbrn", "dbrn")
        self.d = exp.observed.ravel()
        self.tpl = dict(zip(comps, [signal.ravel()] + [exp.backgrounds[z].ravel() for z in comps[1:]]))
        self.sig = [exp.sigmas[z] for z in comps]
        self.w = 1.0 / exp.likelihood.stat_sigma(exp).ravel() ** 2
        self.shapes = [(c, p.ravel(), None if m is None else m.ravel()) for c, p, m in exp.shape_deltas.values()]
        self.two_sided = [i for i, s in enumerate(self.shapes) if s[2] is not None]
        self.n = 4 + len(self.shapes)

    def __call__(self, theta):
        eta, eps = theta[:4], theta[4:]
        factor = {z: np.full(self.d.size, 1.0 + e) for z, e in zip(self.tpl, eta)}
        for (comp, plus, minus), e in zip(self.shapes, eps):
            factor[comp] = factor[comp] + (e * plus if minus is None or e >= 0 else -e * minus)
        pred = sum(factor[z] * self.tpl[z] for z in self.tpl)
        return float(np.sum((self.d - pred) ** 2 * self.w) + sum((e / s) ** 2 for e, s in zip(eta, self.sig))
                     + sum(e * e for e in eps))


def _migrad(fcn, n, limits):
    m = Minuit(lambda *p: fcn(np.array(p)), *np.zeros(n), name=[f"p{i}" for i in range(n)])
    m.errordef = 1.0
    m.strategy = 2
    m.tol = 1e-6
    m.limits = limits
    m.migrad(ncall=100_000)
    m.migrad(ncall=100_000)
    return m.fval


def _brute_force(parts):
    """Joint minimum of the sum of ``parts`` over every sign orthant of the two-sided LAr systematics."""
    offsets = np.cumsum([0] + [p.n for p in parts])
    two_sided = [offsets[k] + 4 + i for k, p in enumerate(parts) if isinstance(p, LArChi2) for i in p.two_sided]
    n = offsets[-1]

    def fcn(theta):
        return sum(p(theta[offsets[k]:offsets[k + 1]]) for k, p in enumerate(parts))

    best = np.inf
    for signs in itertools.product((1, -1), repeat=len(two_sided)):
        limits = [(None, None)] * n
        for j, s in zip(two_sided, signs):
            limits[j] = (0.0, None) if s > 0 else (None, 0.0)
        best = min(best, _migrad(fcn, n, limits))
    return best


@pytest.mark.parametrize("point", list(POINTS), ids=list(POINTS))
@pytest.mark.parametrize("dataset", ["csi", "lar", pytest.param("csi+lar", marks=pytest.mark.slow)])
def test_profiled_chi2_equals_brute_force(csi, lar, dataset, point):
    exps = {"csi": csi, "lar": lar}
    names = dataset.split("+")
    signals = {n: _signal(exps[n], POINTS[point]) for n in names}
    parts = [(CsIChi2 if n == "csi" else LArChi2)(exps[n], signals[n]) for n in names]
    brute = _brute_force(parts)
    cost = sum((exps[n].cost() for n in names[1:]), exps[names[0]].cost())
    profiled = cost(signals) if len(names) > 1 else cost(signals[names[0]])
    assert profiled == pytest.approx(brute, abs=TOL)


def test_signal_shape_and_cost_names_are_checked(csi):
    """A batch of templates of the wrong bin shape is refused, not broadcast (a mutant accepting any 3-d array
    survived the selection), and a data set cannot be added to itself."""
    from cevnsfit.errors import InputError

    cost = csi.cost()
    with pytest.raises(InputError, match=r"signal template has shape \(2, 3, 3\), expected \(9, 11\)"):
        cost(np.ones((2, 3, 3)))
    with pytest.raises(InputError, match="cannot add costs with the same name twice"):
        cost + csi.cost()
