"""Tests written for surviving mutants of stats/chi2.py (tools/mutation.py; docs/validation/tests.md, "Mutation
testing"): the fitted components returned by ``fit`` (reported by ``cevnsfit fit``) must reproduce the profiled
chi^2 they come from, and the pull widths must be the input ones."""

import warnings

import numpy as np
import pytest

from cevnsfit.stats.chi2 import GaussianChi2, PoissonChi2

OBS = np.array([[4.0, 3.0], [5.0, 1.0]])
BKG = {"bkg": np.array([[1.0, 0.5], [2.0, 0.2]])}
SIGNAL = np.array([[2.0, 1.0], [2.5, 0.3]])


def test_poisson_fitted_components_reproduce_the_chi2():
    """chi^2 = 2 sum(mu - D + D ln(D/mu)) + sum (eta/sigma)^2 with mu the sum of the fitted components
    (mutant: fitted = (1 + eta) / template)."""
    cost = PoissonChi2("toy", OBS, BKG, {"cevns": 0.1, "bkg": 0.3})
    fit = cost.fit(SIGNAL)
    eta = np.array([fit.nuisances["norm_cevns"], fit.nuisances["norm_bkg"]])
    assert np.allclose(fit.fitted["cevns"], (1 + eta[0]) * SIGNAL, rtol=1e-14, atol=0)
    mu = fit.fitted["cevns"] + fit.fitted["bkg"]
    direct = 2 * np.sum(mu - OBS + OBS * np.log(OBS / mu)) + np.sum((eta / [0.1, 0.3]) ** 2)
    assert fit.chi2 == pytest.approx(direct, rel=1e-10, abs=0)


def test_gaussian_fitted_components_reproduce_the_chi2(lar):
    """LAr's Gaussian chi^2 with its shape systematics: sum w (D - sum fitted)^2 + sum prior * (eta, eps)^2
    equals the profiled chi^2, so the per-component fitted counts carry the shape shifts of the chosen branch
    (mutants of GaussianChi2.fit, which the fast selection never called)."""
    cost = lar.cost()
    signal = lar.kernel.sm_counts() * 1.2
    fit = cost.fit(signal)
    theta = np.array([fit.nuisances[f"norm_{z}"] for z in cost.components]
                     + [fit.nuisances[f"shape_{s}"] for s in cost.systematics])
    assert np.any(theta[len(cost.components):] != 0)  # a shape systematic is pulled: its shift is in `fitted`
    mu = sum(fit.fitted[z] for z in cost.components).ravel()
    direct = np.sum(cost.w * (cost.observed.ravel() - mu) ** 2) + np.sum(cost.prior * theta**2)
    assert fit.chi2 == pytest.approx(direct, rel=1e-9, abs=0)
    assert fit.chi2 == pytest.approx(float(cost(signal)), rel=1e-12, abs=0)


def test_gaussian_pull_widths_and_no_warning_for_a_free_component():
    """pull_sigmas are the input widths (also above 100 %), inf for a free normalisation, 1 for a shape
    systematic, without a divide-by-zero warning (mutants: `prior > 1`, `prior >= 0` in the guard)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost = GaussianChi2("toy", OBS, BKG, {"cevns": None, "bkg": 2.0}, np.ones(4),
                            {"shape": ("bkg", np.full(4, 0.1), None)})
    assert cost.pull_sigmas.tolist() == [np.inf, 2.0, 1.0]
