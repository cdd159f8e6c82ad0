"""Named parameters of the costs (``parameters``, ``priors``, ``fix``), of their sums (prefixed names, routing), and
shared normalisation factors (:class:`SharedFactor`) against an independent brute-force minimisation over theta.

Shared factors: the sum minimises over theta per row to ~1e-16 in chi^2 (stats/sum.py); the brute force here
takes the best of a grid of 2001 thetas across [-0.6, 0.6], then of 2001 thetas across the two grid steps around
it (spacing 6e-7: its own error < c (3e-7)^2 ~ 1e-10 for curvatures c ~ 1e3 of these chi^2), and the members'
profiles carry their Newton tolerance (1e-9 each): stated 1e-7."""

import numpy as np
import pytest

from cevnsfit.errors import InputError
from cevnsfit.stats.chi2 import PoissonChi2, SharedFactor, SumCost

TOL = 1e-7


def test_parameters_and_priors_of_the_experiments(csi, lar, xenonnt_cache, monkeypatch):
    assert csi.cost().parameters == ("norm_cevns", "norm_brn", "norm_nin", "norm_ss")
    assert csi.cost().priors == {"norm_cevns": (0.0, 0.12), "norm_brn": (0.0, 0.25), "norm_nin": (0.0, 0.35),
                                 "norm_ss": (0.0, 0.021)}
    assert csi.cost(free_signal=True).priors["norm_cevns"] == (0.0, None)
    cost = lar.cost()
    assert cost.parameters == ("norm_cevns", "norm_ss", "norm_pbrn", "norm_dbrn", "shape_cevns_f90",
                               "shape_cevns_timing_mean", "shape_pbrn_energy", "shape_pbrn_timing_mean",
                               "shape_pbrn_timing_width")
    assert all(cost.priors[f"shape_{s}"] == (0.0, 1.0) for s in cost.systematics)
    fit = cost.fit(lar.kernel.sm_counts())
    assert tuple(fit.nuisances) == cost.parameters
    monkeypatch.setenv("CEVNSFIT_CACHE", str(xenonnt_cache))
    from cevnsfit.experiments import load_experiment

    from cevnsfit.experiments.xenonnt import best_fit

    xe = load_experiment("xenonnt")
    assert xe.cost().parameters == ("norm_cevns", "norm_ac_sr0", "norm_ac_sr1", "norm_ac_sr2", "norm_er", "norm_rg",
                                    "tly", "tqy")
    assert xe.cost().priors["tly"] == (0.0, 1.0) and xe.cost(fixed_signal=True).fixed == {"norm_cevns": 0.0}
    assert tuple(best_fit(xe).nuisances) == xe.cost().parameters


def test_sum_names_prefixed_and_fix_routed(csi, lar):
    total = csi.cost() + lar.cost()
    assert total.parameters[:4] == ("csi.norm_cevns", "csi.norm_brn", "csi.norm_nin", "csi.norm_ss")
    assert "lar.shape_cevns_f90" in total.parameters and len(total.parameters) == 13
    assert total.priors["lar.norm_cevns"] == (0.0, 0.13)
    signals = {"csi": csi.kernel.sm_counts(), "lar": lar.kernel.sm_counts()}
    fixed = total.fix({"csi.norm_brn": 0.1, "lar.shape_cevns_f90": -0.5})
    assert isinstance(fixed, SumCost) and fixed.fixed == {"csi.norm_brn": 0.1, "lar.shape_cevns_f90": -0.5}
    want = csi.cost().fix({"norm_brn": 0.1})(signals["csi"]) + lar.cost().fix({"shape_cevns_f90": -0.5})(signals["lar"])
    assert fixed(signals) == pytest.approx(want, rel=1e-14)
    assert total(signals) == csi.cost()(signals["csi"]) + lar.cost()(signals["lar"])  # no shared factor: the sum
    with pytest.raises(InputError, match=r"unknown parameter\(s\) norm_brn; the parameters are csi.norm_cevns, "):
        total.fix({"norm_brn": 0.1})


def _brute_force(members, sigma, lo=-0.6, hi=0.6):
    """min over a fine theta grid, then a finer one around its best point, of sum_e chi^2_e(theta) + (theta/sigma)^2;
    ``members``: functions theta (m,) -> chi^2 (m,) of each cost with its component scaled by 1 + theta."""
    f = lambda t: sum(m(t) for m in members) + (t / sigma) ** 2  # noqa: E731
    t = np.linspace(lo, hi, 2001)
    k = int(np.argmin(f(t)))
    fine = np.linspace(t[max(k - 1, 0)], t[min(k + 1, t.size - 1)], 2001)
    v = f(fine)
    return float(v.min()), float(fine[np.argmin(v)])


def test_shared_signal_factor_against_brute_force(csi, lar):
    c_csi, c_lar = csi.cost(), lar.cost()
    s_csi, s_lar = csi.kernel.sm_counts() * 1.2, lar.kernel.sm_counts() * 0.8
    flux = SharedFactor("sns_flux", 0.10, {"csi": "cevns", "lar": "cevns"})
    total = SumCost([c_csi, c_lar], shared=[flux])
    assert total.parameters[-1] == "sns_flux" and total.priors["sns_flux"] == (0.0, 0.1)
    want, theta = _brute_force([lambda t: c_csi((1.0 + t)[:, None, None] * s_csi),
                                lambda t: c_lar((1.0 + t)[:, None, None] * s_lar)], 0.10)
    got = total({"csi": s_csi, "lar": s_lar})
    assert got <= want + TOL and got == pytest.approx(want, abs=TOL)
    # a common factor lowers the chi^2 below the independent sum only by what its prior allows
    assert got <= c_csi(s_csi) + c_lar(s_lar) + 1e-9
    fits = total.fit({"csi": s_csi, "lar": s_lar})
    assert fits["csi"].nuisances["sns_flux"] == fits["lar"].nuisances["sns_flux"] == pytest.approx(theta, abs=1e-4)
    hat = fits["csi"].nuisances["sns_flux"]
    assert fits["csi"].chi2 + fits["lar"].chi2 + (hat / 0.1) ** 2 == pytest.approx(got, abs=1e-9)
    # batches: each row its own theta
    batch = total({"csi": np.stack([s_csi, s_csi / 1.2]), "lar": np.stack([s_lar, s_lar / 0.8])})
    assert batch[0] == pytest.approx(got, abs=1e-9)
    assert batch[1] == pytest.approx(total({"csi": s_csi / 1.2, "lar": s_lar / 0.8}), abs=1e-9)
    # fixed: the members at that theta plus its prior term
    at = total.fix({"sns_flux": 0.03})({"csi": s_csi, "lar": s_lar})
    assert at == pytest.approx(c_csi(1.03 * s_csi) + c_lar(1.03 * s_lar) + 0.3**2, rel=1e-13)


def test_shared_background_factor_against_brute_force():
    """A factor on a background of one cost and on the signal of another: the background's template is scaled (a
    scaled cost per theta), the signal itself is scaled."""
    obs = np.array([[82.0, 75.0, 60.0], [70.0, 55.0, 58.0]])
    s = np.array([[30.0, 20.0, 10.0], [15.0, 8.0, 4.0]])
    b = np.array([[50.0, 52.0, 49.0], [51.0, 48.0, 50.0]])
    one = PoissonChi2("one", obs, {"b": b}, {"cevns": 0.1, "b": 0.05})
    two = PoissonChi2("two", obs * 0.9, {"b": b * 1.1}, {"cevns": None, "b": 0.2})
    total = SumCost([one, two], shared=[SharedFactor("beam", 0.07, {"one": "b", "two": "cevns"})])
    want, _ = _brute_force([lambda t: np.array([one.scaled("b", 1.0 + x)(s) for x in t]),
                            lambda t: two((1.0 + t)[:, None, None] * s)], 0.07, lo=-0.3, hi=0.3)
    got = total({"one": s, "two": s})
    assert got <= want + TOL and got == pytest.approx(want, abs=TOL)
    assert one.scaled("b", 1.0)(s) == one(s)


def test_shared_factors_are_checked(csi, lar):
    costs = [csi.cost(), lar.cost()]
    with pytest.raises(InputError, match="no cost named xe"):
        SumCost(costs, shared=[SharedFactor("f", 0.1, {"xe": "cevns"})])
    with pytest.raises(InputError, match="cost lar has no component brn"):
        SumCost(costs, shared=[SharedFactor("f", 0.1, {"lar": "brn"})])
    with pytest.raises(InputError, match="cost csi is in two shared factors"):
        SumCost(costs, shared=[SharedFactor("f", 0.1, {"csi": "cevns"}), SharedFactor("g", 0.1, {"csi": "brn"})])
    with pytest.raises(InputError, match="sigma must be finite and > 0"):
        SharedFactor("f", 0.0, {"csi": "cevns"})
    with pytest.raises(InputError, match="theta must be >= -1"):
        SumCost(costs, shared=[SharedFactor("f", 0.1, {"csi": "cevns"})]).fix({"f": -2.0})
