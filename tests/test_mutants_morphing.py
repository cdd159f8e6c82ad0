"""Tests written for surviving mutants of stats/morphing.py (tools/mutation.py; docs/validation.md, "Mutation
testing"): the fit's reported components and nuisances must reproduce the chi^2 of the module docstring, and the
pull priors must be the documented ones."""

import numpy as np
import pytest

from cevnsfit.errors import InputError
from cevnsfit.stats.morphing import MorphedPoissonChi2

GRID = (np.array([-1.5, -0.5, 0.5, 1.5]), np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))  # >= 4 nodes per axis
BASE = np.array([5.0, 3.0, 2.0])
# signal on the 4 x 5 grid (index i * n_y + j), linear in both shape nuisances
SIGNAL = np.array([BASE * (1.0 + 0.1 * x + 0.05 * y) for x in GRID[0] for y in GRID[1]])
OBS = np.array([9.0, 5.0, 2.0])
BKG = {"bkg": np.array([2.0, 1.0, 1.0])}


def test_fit_components_and_nuisances_reproduce_the_chi2():
    """chi^2 = 2 sum[mu - D + D ln(D/mu)] + ((a_bkg - 1)/0.2)^2 + x^2 + y^2 with mu the sum of the fitted
    components (module docstring); the signal component is a_cevns times the morphed template (mutants of fit(),
    which the fast selection never called)."""
    cost = MorphedPoissonChi2("toy", OBS, BKG, {"cevns": None, "bkg": 0.2}, GRID, shape_names=("sx", "sy"))
    fit = cost.fit(SIGNAL)
    nu = fit.nuisances
    assert set(nu) == {"eta_cevns", "eta_bkg", "sx", "sy"} and 0 < abs(nu["sx"]) < 1 and 0 < abs(nu["sy"]) < 1
    morphed = BASE * (1.0 + 0.1 * nu["sx"] + 0.05 * nu["sy"])  # the cubic cardinal splines are exact on linear data
    assert np.allclose(fit.fitted["cevns"], (1.0 + nu["eta_cevns"]) * morphed, rtol=1e-12, atol=0)
    assert np.allclose(fit.fitted["bkg"], (1.0 + nu["eta_bkg"]) * BKG["bkg"], rtol=1e-14, atol=0)
    mu = fit.fitted["cevns"] + fit.fitted["bkg"]
    direct = (2.0 * np.sum(mu - OBS + OBS * np.log(OBS / mu)) + (nu["eta_bkg"] / 0.2) ** 2 + nu["sx"] ** 2
              + nu["sy"] ** 2)
    assert fit.chi2 == pytest.approx(direct, rel=1e-10, abs=0)
    assert fit.chi2 == pytest.approx(cost(SIGNAL), rel=1e-12, abs=0)


def test_pull_priors_and_missing_width():
    """sigma = 1 is a unit-width pull (not "fixed", which is 0), the shape nuisances have unit Gaussian priors, and a
    component without a width is an InputError naming it (mutants: `(None, 0)` -> `(None, 1)`, the shape prior
    2.0, `missing = None`)."""
    cost = MorphedPoissonChi2("toy", OBS, BKG, {"cevns": 1.0, "bkg": 0}, GRID)
    assert cost.inv_var.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert cost.free.tolist() == [True, False, True, True]
    with pytest.raises(InputError, match=r"^toy: no pull width for bkg$"):
        MorphedPoissonChi2("toy", OBS, BKG, {"cevns": None}, GRID)
