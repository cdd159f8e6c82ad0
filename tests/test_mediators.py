"""Light mediators: template engine vs direct path, asymptotic regimes, NSI equivalence, limits and islands."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from cevnsfit.mediators import DATASETS, MediatorAnalysis, dataset_members
from cevnsfit.parameters import DEFAULT
from cevnsfit.physics.models import get_model, model_names, nsi_weak_charge_squared
from cevnsfit.physics.cross_section import sm_couplings
from cevnsfit.templates import build_templates
from reference_templates import direct_counts
from cevnsfit.errors import InputError


@pytest.fixture(scope="module")
def analysis(csi, lar):
    an = MediatorAnalysis()
    an._experiments = {"csi": csi, "lar": lar}  # reuse the session's experiments (kernels already built)
    return an


def test_templates_equal_direct_path(csi, lar):
    rng = np.random.default_rng(2022)
    names = model_names()
    for exp in (csi, lar):
        for _ in range(12):
            model = get_model(names[rng.integers(len(names))])
            mass = float(10 ** rng.uniform(-2, 4))
            g = float(10 ** rng.uniform(-5.5, -2.5))
            tpl = build_templates(exp, model, [mass])
            fast = tpl.counts(g, 0)
            direct = direct_counts(exp, model, mass, g)
            np.testing.assert_allclose(fast, direct, rtol=1e-6, atol=1e-9 * direct.max())


# models whose shift numerator mixes several bases: proton and neutron terms of opposite signs (they cancel in
# part) with unequal lepton charges and an uncharged nu_e; a loop model with both the e and the mu loop and a tau
# charge; a model charging the u quark only (proton 2, neutron 1)
MIXED_MODELS = (("p-n", 1, -1, 0, 2, -1), ("e-mu-tau loop", 0, 0, 1, -3, 2), ("u only", 1, 0, 2, 1, 0))


@pytest.mark.parametrize("experiment", ["csi", "lar"])
def test_template_basis_equals_direct_path_for_every_regime(experiment, request):
    """The shared-basis templates (C = sum_b w_b B_b folded term by term) equal the direct path -- Q^2 built on the
    recoil grid at one (M, g) and folded -- at couplings where g^2 N1 and g^4 N2 both move the counts by O(10 %),
    for every registered model, models with mixed charges, and M = 0, finite and the contact limit."""
    from cevnsfit.physics.models import custom_vector_model

    exp = request.getfixturevalue(experiment)
    masses = [0.0, 0.7, 40.0, 1e3, np.inf]
    models = [get_model(n) for n in model_names()] + [custom_vector_model(*m) for m in MIXED_MODELS]
    for model in models:
        tpl = build_templates(exp, model, masses)
        for i, mass in enumerate(masses):
            n0 = np.abs(tpl.n0).sum()
            # |g^2 N1| ~ 0.1 N0 (vector), g^4 N2 ~ 0.1 N0 (scalar)
            g = (0.1 * n0 / np.abs(tpl.n1[i]).sum()) ** 0.5 if np.any(tpl.n1[i]) else (0.1 * n0 / tpl.n2[i].sum()) ** 0.25
            direct = direct_counts(exp, model, mass, g)
            assert np.abs(direct - tpl.n0).sum() > 0.01 * n0  # the test has teeth: the mediator moves the counts
            np.testing.assert_allclose(tpl.counts(g, i), direct, rtol=1e-11, atol=1e-13 * direct.max(),
                                       err_msg=f"{model.name} at M = {mass}")


def test_template_basis_is_shared_across_models_and_mass_sets(lar, monkeypatch):
    """MediatorAnalysis.templates folds each term once per mass set and reuses it: its templates equal a fresh
    build_templates to the last bit, whatever models and mass sets came before (and after a mass set was evicted);
    a rebuilt kernel is not served from the old folds."""
    from dataclasses import replace

    from cevnsfit.templates import KEPT_MASS_SETS

    an = MediatorAnalysis()
    an._experiments = {"lar": lar}
    sets = [np.geomspace(1e-2, 1e4, 9), [0.0], [np.inf]] + [[float(m)] for m in range(1, KEPT_MASS_SETS + 1)]
    order = [("B-L", 0), ("L_mu-L_tau", 0), ("scalar", 0), ("universal", 1), ("L_e-L_tau", 2)]
    order += [("B-L", j) for j in range(3, len(sets))] + [("L_e-L_mu", 0), ("B-3L_mu", 0), ("scalar", 1)]
    for name, j in order:
        shared = an.templates(name, sets[j], "lar")
        fresh = build_templates(lar, get_model(name), sets[j])
        for a in ("n0", "n1", "n2"):
            np.testing.assert_array_equal(getattr(shared, a), getattr(fresh, a), err_msg=f"{name} {a} on set {j}")
    basis = an._template_bases["lar"]
    assert len(basis._folded) == KEPT_MASS_SETS
    # another kernel (twice the vector response): the basis starts again instead of serving the old folds
    before = an.templates("B-L", sets[0], "lar")
    k = lar.kernel
    monkeypatch.setattr(lar, "_kernel", replace(k, vector={key: 2.0 * v for key, v in k.vector.items()},
                                                sm_charge={key: 0.5 * v for key, v in k.sm_charge.items()}))
    after, fresh = an.templates("B-L", sets[0], "lar"), build_templates(lar, get_model("B-L"), sets[0])
    for a in ("n0", "n1", "n2"):
        np.testing.assert_array_equal(getattr(after, a), getattr(fresh, a))
    assert not np.allclose(after.n2, before.n2, rtol=0.1)


def test_zero_coupling_is_the_standard_model(csi, lar):
    for exp in (csi, lar):
        for name in ("B-L", "L_mu-L_tau", "scalar"):
            tpl = build_templates(exp, get_model(name), [0.0, 5.0, np.inf])
            for i in range(3):
                np.testing.assert_array_equal(tpl.counts(0.0, i), exp.signal(exp.kernel.sm_counts()))
            assert exp.cost()(tpl.counts(0.0, 1)) == pytest.approx(exp.cost()(exp.signal(exp.kernel.sm_counts())), abs=1e-12)


def test_scalar_does_not_depend_on_sign(csi):
    tpl = build_templates(csi, get_model("scalar"), [10.0])
    np.testing.assert_array_equal(tpl.counts(3e-5, 0), tpl.counts(-3e-5, 0))
    assert np.all(tpl.n1 == 0)  # no interference with the vector SM amplitude
    assert np.all(tpl.counts(3e-5, 0) >= tpl.n0)


def test_heavy_zprime_is_vector_nsi(csi):
    """Contact Z' == NSI with eps_f = g^2 Q'_nu Q'_f / (sqrt2 G_F M^2) (same recoil grids, same kernel)."""
    k = csi.kernel
    g_over_m = 2e-6  # MeV^-1
    for name in ("B-L", "B-3L_mu", "universal"):
        model = get_model(name)
        tpl = build_templates(csi, model, [np.inf])
        charge_sq = {}
        for x, tg in k.detector.targets.items():
            q, fz, fn = k.form_factors[x]
            for f in k.flavours:
                ql = model.lepton_charge(f)
                eps = {key: g_over_m**2 * ql * qf / (math.sqrt(2) * DEFAULT["constants.G_F"])
                       for key, qf in (("uV_ee" if f == "nue" else "uV_mumu", model.q_u), ("dV_ee" if f == "nue" else "dV_mumu", model.q_d))}
                gvp, gvn = sm_couplings()[f]
                charge_sq[(f, x)] = nsi_weak_charge_squared(f, eps, gvp, gvn, tg.nucleus.Z, tg.nucleus.N, fz, fn)
        np.testing.assert_allclose(tpl.counts(g_over_m, 0), k.counts(charge_sq), rtol=1e-10)


@pytest.mark.parametrize("name", ["B-L", "L_mu-L_tau"])
def test_asymptotic_regimes_join_the_finite_mass_scan(analysis, name):
    """g/M limit constant for M >> |q| (~30-105 MeV), g limit constant for M << |q|."""
    light = analysis.fixed_mass_limit(name, "csi", 0.0)
    very_light = analysis.fixed_mass_limit(name, "csi", 0.01)
    assert very_light.value == pytest.approx(light.value, rel=2e-3, abs=0)
    contact = analysis.fixed_mass_limit(name, "csi", np.inf)
    heavy = analysis.fixed_mass_limit(name, "csi", 2e4)
    heavier = analysis.fixed_mass_limit(name, "csi", 5e4)
    assert heavy.value / 2e4 == pytest.approx(contact.value, rel=1e-2, abs=0)
    assert heavier.value / 5e4 == pytest.approx(contact.value, rel=2e-3, abs=0)
    # in between, the bound on g grows with M (the propagator suppresses the signal)
    mid = analysis.fixed_mass_limit(name, "csi", 100.0)
    assert light.value < mid.value < heavy.value


def test_row_reports_the_contact_islands_in_gev(analysis):
    """The limits row gives g/M and its sign-flip islands in GeV^-1: the limit's own values (MeV^-1) times 1000, both
    ends of every island (mutant: one end divided).  L_mu-L_tau on CsI has an island at M -> inf."""
    res = analysis.analyse("L_mu-L_tau", masses_mev=np.array([1.0, 1e4]), experiments=("csi",))
    row, lim = res.row("csi", "2dof"), res.limit("csi", "high_mass", "2dof")
    assert lim.allowed.islands and row["high_mass_islands"] == [[a * 1e3, b * 1e3] for a, b in lim.allowed.islands]
    assert row["g_over_M_high_mass"] == pytest.approx(lim.value * 1e3, rel=1e-12)


def test_destructive_model_has_sign_flip_island(analysis):
    res = analysis.analyse("L_mu-L_tau", masses_mev=np.geomspace(1, 1e4, 9), experiments=("csi",))
    high = res.limit("csi", "high_mass", "2dof")
    assert high.allowed.islands, "L_mu-L_tau (nu_mu destructive) must show the sign-flip band at high mass"
    lo, hi = high.allowed.islands[0]
    assert high.value < lo < hi
    # at the island the weak charge of nu_mu flips sign: the rate returns close to the SM rate
    tpl = build_templates(analysis.experiment("csi"), get_model("L_mu-L_tau"), [np.inf])
    mid = math.sqrt(lo * hi)
    assert abs(tpl.counts(mid, 0).sum() / tpl.n0.sum() - 1) < 0.1
    # B-L interferes constructively: no island
    bl = analysis.analyse("B-L", masses_mev=np.geomspace(1, 1e4, 9), experiments=("csi",))
    assert not bl.limit("csi", "high_mass", "2dof").allowed.islands


REFERENCE = {  # AC22 2 sigma table rows (g, g/M in GeV^-1)
    ("B-L", "lar"): (5.35e-5, 1.67e-3), ("B-L", "csi"): (5.27e-5, 1.00e-3), ("B-L", "csi+lar"): (4.42e-5, 0.99e-3),
    ("L_mu-L_tau", "lar"): (234e-5, 80.9e-3), ("L_mu-L_tau", "csi"): (116e-5, 26.6e-3),
    ("L_mu-L_tau", "csi+lar"): (103e-5, 24.2e-3),
}
# Entries we do not reproduce within 10 % (documented in docs/validation/mediators.md); strict xfail flags a change.
NOT_REPRODUCED = {("L_mu-L_tau", "lar", "g_over_M"), ("L_mu-L_tau", "csi", "g")}


# AC22's published limits (REFERENCE) are pinned in the default lane: the three models' default-grid analyses take
# 2-6 s (the module-scoped fixture below), the rows and the Delta chi^2 checks at them milliseconds each
@pytest.fixture(scope="module")
def analyses(analysis):
    """Default-grid analyses (the ones `cevnsfit limits` runs) of a tree-level, a loop and the scalar model."""
    return {name: analysis.analyse(name, experiments=dataset_members("csi+lar")) for name in ("B-L", "L_mu-L_tau", "scalar")}


@pytest.fixture(scope="module")
def reference_rows(analyses):
    rows = {}
    for name in ("B-L", "L_mu-L_tau"):
        for d in ("lar", "csi", "csi+lar"):
            rows[(name, d)] = analyses[name].row(d, "2dof")
    return rows


@pytest.mark.parametrize("key", sorted(REFERENCE))
@pytest.mark.parametrize("quantity", ["g", "g_over_M"])
def test_reference_rows(reference_rows, key, quantity, request):
    if (*key, quantity) in NOT_REPRODUCED:
        request.applymarker(pytest.mark.xfail(strict=True, reason="AC22 value not reproduced within 10 %, see docs/validation/mediators.md"))
    row = reference_rows[key]
    got = row["g_low_mass"] if quantity == "g" else row["g_over_M_high_mass"]
    want = REFERENCE[key][0 if quantity == "g" else 1]
    assert got == pytest.approx(want, rel=0.10, abs=0)


def _direct_chi2(analysis, model, dataset, regime, coupling):
    """chi^2 of ``dataset`` at M = 0 (coupling g) or M = inf (coupling g/M in MeV^-1) by the direct path (Q^2 built
    on the recoil grid for this one point, no templates), profiled by each experiment's cost."""
    mass = 0.0 if regime == "low_mass" else math.inf
    return sum(analysis.cost(n)(direct_counts(analysis.experiment(n), get_model(model), mass, coupling))
               for n in dataset_members(dataset))


# Delta chi^2 at a reported limit equals the threshold: achieved <= 3.6e-8 (Brent's tolerance 1e-10 in g times
# the slope); allowed 1e-6.  Before the global minimum included the refined line minima, the LAr B-L and L_mu-L_tau
# g/M limits sat at Delta chi^2 = 6.18 - 1.9e-4 and - 2.7e-4 from the reported chi2_min.
LIMIT_TOL = 1e-6


def _line_minimum(analysis, model, dataset, regime, row, n=81):
    """Minimum of the direct-path chi^2 along an asymptotic line, by its own search: a linear grid from 0 to twice
    the largest reported edge (limit or island) and Brent's method around the best node."""
    from scipy.optimize import minimize_scalar

    scale = 1.0 if regime == "low_mass" else 1e-3  # table g/M in GeV^-1 -> MeV^-1
    key = "low_mass" if regime == "low_mass" else "high_mass"
    edges = [row["g_low_mass" if regime == "low_mass" else "g_over_M_high_mass"]]
    edges += [x for iv in row[f"{key}_islands"] for x in iv if np.isfinite(x)]
    f = lambda g: _direct_chi2(analysis, model, dataset, regime, g)  # noqa: E731
    grid = np.linspace(0.0, 2.0 * max(edges) * scale, n)
    chi = np.array([f(g) for g in grid])
    k = int(np.argmin(chi))
    best = float(chi[k])
    if 0 < k < grid.size - 1:
        best = min(best, minimize_scalar(f, bounds=(grid[k - 1], grid[k + 1]), method="bounded",
                                         options={"xatol": 1e-14}).fun)
    return best


@pytest.mark.slow
@pytest.mark.parametrize("model", ["B-L", "L_mu-L_tau", "scalar"])
@pytest.mark.parametrize("dataset", ["csi", "lar", "csi+lar"])
def test_delta_chi2_at_every_reported_limit_is_the_threshold(analysis, analyses, model, dataset):
    res = analyses[model]
    row = res.row(dataset, "2dof")
    ref = row["chi2_min"]
    assert ref <= row["chi2_sm"]
    edges = [("low_mass", row["g_low_mass"])] + [("low_mass", x) for iv in row["low_mass_islands"] for x in iv]
    edges += [("high_mass", row["g_over_M_high_mass"] / 1e3)]  # GeV^-1 -> MeV^-1
    edges += [("high_mass", x / 1e3) for iv in row["high_mass_islands"] for x in iv]
    for regime, coupling in edges:
        delta = _direct_chi2(analysis, model, dataset, regime, coupling) - ref
        assert delta == pytest.approx(6.18, abs=LIMIT_TOL), (regime, coupling)
    # nothing on the exact lines lies below the reported minimum (it is the global one)
    for regime in ("low_mass", "high_mass"):
        assert _line_minimum(analysis, model, dataset, regime, row) >= ref - LIMIT_TOL


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["csi", "lar"])
def test_one_dof_limits_are_four_above_the_line_minimum(analysis, analyses, dataset):
    """--cl 1dof: Delta chi^2 = 4 from the minimum along the line (g = 0 and any sign-flip island included)."""
    for model in ("B-L", "L_mu-L_tau"):
        row = analyses[model].row(dataset, "1dof")
        for regime, limit in (("low_mass", row["g_low_mass"]), ("high_mass", row["g_over_M_high_mass"] / 1e3)):
            line_min = _line_minimum(analysis, model, dataset, regime, row)
            delta = _direct_chi2(analysis, model, dataset, regime, limit) - line_min
            assert delta == pytest.approx(4.0, abs=LIMIT_TOL), (model, regime)


@pytest.mark.parametrize("model, mass", [("B-L", 0.0), ("L_mu-L_tau", math.inf)])
def test_delta_chi2_at_a_single_line_limit(analysis, model, mass):
    """Fast lane: one line (M = 0 or the contact limit) on CsI, 1 dof; Delta chi^2 at the limit and at any island
    edge is 4 above the line minimum, by the direct path (the slow tests above do every data set and row)."""
    lim = analysis.fixed_mass_limit(model, "csi", mass)
    regime = "low_mass" if mass == 0 else "high_mass"
    row = {"g_low_mass" if mass == 0 else "g_over_M_high_mass": lim.value * (1 if mass == 0 else 1e3),
           f"{regime}_islands": [[a * (1 if mass == 0 else 1e3), b * (1 if mass == 0 else 1e3)]
                                 for a, b in lim.allowed.islands]}
    line_min = _line_minimum(analysis, model, "csi", regime, row, n=21)
    assert lim.chi2_min == pytest.approx(line_min, abs=LIMIT_TOL)
    for edge in [lim.value] + [x for iv in lim.allowed.islands for x in iv]:
        assert _direct_chi2(analysis, model, "csi", regime, edge) - line_min == pytest.approx(4.0, abs=LIMIT_TOL)


# AC22's (g-2)_mu conclusions for CsI+LAr with the 2021 band (Delta a_mu = 251 +- 59 e-11): the slow lane's
# test_reproduce.py::test_gm2_verdicts checks them on the full (M, g) plane; written here again, not imported
GM2_VERDICTS_2021 = {"universal": "excluded", "B-L": "excluded", "B_y+L_mu+L_tau": "excluded", "B-3L_e": "no band",
                     "B-3L_mu": "excluded", "B-2L_e-L_mu": "excluded", "B-L_e-2L_mu": "excluded",
                     "L_e-L_mu": "allowed", "L_e-L_tau": "no band", "L_mu-L_tau": "allowed", "scalar": "excluded"}


@pytest.mark.parametrize("model", sorted(GM2_VERDICTS_2021))
def test_gm2_verdicts_at_four_masses(analysis, model):
    """Fast twin of the slow verdicts (which depend on every model's normalisation, the scalar's included): the
    verdict code itself (gm2_verdict, the plane's 2-dof convention) on a plane of four masses -- the two ends of the
    scanned range (0.01 MeV, 10 GeV) and two inner points -- instead of 121.  An "excluded" model keeps no part of the
    favoured band at any of them, an "allowed" one keeps it at all four (as on the full plane), a model without a
    muon charge has no band; and, independently of gm2_verdict's own comparison, the line at each mass with its own
    minimum (weaker, so conservative for "excluded") misses or reaches the band written by favoured_band."""
    from cevnsfit.mediators import gm2_kind_and_charge, gm2_verdict
    from cevnsfit.physics.gm2 import favoured_band

    masses = np.array([1e-2, 1.0, 100.0, 1e4])
    want = GM2_VERDICTS_2021[model]
    res = analysis.analyse(model, masses_mev=masses, experiments=dataset_members("csi+lar"))
    verdict = gm2_verdict(res, "csi+lar", "2021")
    assert verdict["verdict"] == want and verdict["model"] == model and verdict["epoch"] == "2021"
    assert verdict["dataset"] == "csi+lar" and verdict["cl"] == "2dof"
    if want == "allowed":
        assert verdict["allowed_mass_ranges_mev"] == [[1e-2, 1e4]]
    kind, charge = gm2_kind_and_charge(get_model(model))
    assert (charge == 0) == (want == "no band")
    if charge == 0:
        return
    for mass in masses:
        lim = analysis.fixed_mass_limit(model, "csi+lar", mass, cl="2dof")
        lo, hi = (float(np.ravel(v)[0]) for v in favoured_band(np.array([mass]), "2021", kind, charge))
        assert lim.allowed.intervals and 0.0 < lo < hi
        reaches = any(a <= hi and lo <= b for a, b in lim.allowed.intervals)
        assert reaches == (want == "allowed"), (model, mass, lim.allowed.intervals, lo, hi)


# docs/validation/mediators.md, "Light mediators: AC22 reference rows": our values as printed there (3 significant digits)
DOCUMENTED = {
    ("B-L", "lar"): (5.44e-5, 1.73e-3), ("B-L", "csi"): (5.05e-5, 0.997e-3), ("B-L", "csi+lar"): (4.50e-5, 1.03e-3),
    ("L_mu-L_tau", "lar"): (2.23e-3, 3.96e-2), ("L_mu-L_tau", "csi"): (1.28e-3, 2.68e-2),
    ("L_mu-L_tau", "csi+lar"): (1.13e-3, 2.43e-2),
}


@pytest.mark.parametrize("key", sorted(DOCUMENTED))
def test_documented_rows(reference_rows, key):
    row = reference_rows[key]
    for got, printed in zip((row["g_low_mass"], row["g_over_M_high_mass"]), DOCUMENTED[key]):
        assert f"{got:.2e}" == f"{printed:.2e}"


@pytest.mark.parametrize("key", sorted(REFERENCE))
@pytest.mark.parametrize("quantity", ["g", "g_over_M"])
def test_delta_chi2_at_the_reference_limit(analysis, reference_rows, key, quantity):
    """The check beside test_reference_rows, on the chi^2 itself: at AC22's 2 sigma value our Delta chi^2 must lie
    between our 1 sigma and 3 sigma (2 dof) thresholds, 2.30 and 11.83.  Achieved (docs/validation/mediators.md): 3.97 to
    9.32 -- near a limit Delta chi^2 grows like a high power of g, so the limit test's 10 % allows about this much."""
    model, dataset = key
    regime = "low_mass" if quantity == "g" else "high_mass"
    coupling = REFERENCE[key][0] if quantity == "g" else REFERENCE[key][1] / 1e3
    delta = _direct_chi2(analysis, model, dataset, regime, coupling) - reference_rows[key]["chi2_min"]
    assert 2.30 < delta < 11.83


def test_bad_inputs(analysis):
    with pytest.raises(InputError):
        dataset_members("xenon")
    with pytest.raises(InputError):
        analysis.analyse("B-L", masses_mev=[-1.0, 2.0])
    with pytest.raises(InputError):
        analysis.grid("B-L", [1.0], [float("nan")], ("csi",))


@pytest.mark.slow
def test_limits_json_all_models():
    res = subprocess.run([sys.executable, "-m", "cevnsfit.cli", "limits", "--json"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["units"] == {"mass": "MeV", "g_over_M": "GeV^-1", "g": "1"}
    assert doc["convention"]["cl"] == "2dof" and doc["convention"]["delta_chi2"] == 6.18
    rows = doc["limits"]
    assert len(rows) == len(model_names()) * len(DATASETS)
    # a reactor sees only nuebar: a model without an electron-flavour charge has no effect there (Dresden-II, no
    # finite limit: null); every other limit is finite
    blind = {(m, "dresden2") for m in model_names() if get_model(m).kind == "vector" and get_model(m).charges[2] == 0}  # Q'_e
    assert {(r["model"], r["dataset"]) for r in rows if r["g_low_mass"] is None} == blind
    values = [r[k] for r in rows for k in ("g_low_mass", "g_over_M_high_mass") if (r["model"], r["dataset"]) not in blind]
    assert len(values) == 2 * (len(rows) - len(blind)) and all(isinstance(v, float) and 0 < v < 1 for v in values)
    # the combination is at least as strong as the weaker single data set
    by = {(r["model"], r["dataset"]): r for r in rows}
    for m in model_names():
        assert by[(m, "csi+lar")]["g_low_mass"] <= max(by[(m, "csi")]["g_low_mass"], by[(m, "lar")]["g_low_mass"])


def test_nsi_api(analysis, csi):
    from cevnsfit.mediators import nsi_chi2, nsi_counts

    zero = nsi_counts(csi, {})
    np.testing.assert_allclose(zero, csi.kernel.sm_counts(), rtol=1e-12)
    # eps^uV_ee = -(gVp Z + gVn N)/(2Z + N)... any large shift worsens the fit; off-diagonal adds incoherently
    assert nsi_chi2(analysis, {"uV_ee": 0.3}, "csi") > nsi_chi2(analysis, {}, "csi") + 4
    more = nsi_counts(csi, {"uV_emu": 0.05}).sum()
    assert more > zero.sum()
    with pytest.raises(InputError):
        nsi_counts(csi, {"xV_ee": 0.1})


@pytest.mark.slow
def test_custom_charges_cli_matches_registry():
    res = subprocess.run([sys.executable, "-m", "cevnsfit.cli", "limits", "--charges", "1/3,1/3,-1,-1,-1", "-d", "csi", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    custom = json.loads(res.stdout)["limits"][0]
    ref = json.loads(subprocess.run([sys.executable, "-m", "cevnsfit.cli", "limits", "-m", "B-L", "-d", "csi", "--json"],
                                    capture_output=True, text=True, timeout=300).stdout)["limits"][0]
    assert custom["g_low_mass"] == pytest.approx(ref["g_low_mass"], rel=1e-9, abs=0)
    assert custom["g_over_M_high_mass"] == pytest.approx(ref["g_over_M_high_mass"], rel=1e-9, abs=0)


def test_coupling_unit_of_every_regime():
    """One rule for the unit of the coupling variable (limits, projections, the mediator POI): g/M in MeV^-1 in the
    contact limit only."""
    from cevnsfit.poi import mediator_poi
    from cevnsfit.projection import ExpectedLimit
    from cevnsfit.templates import Templates, coupling_unit

    assert coupling_unit(np.inf) == "MeV^-1" and coupling_unit(0.0) == coupling_unit(5.0) == "1"
    tpl = Templates("x", None, np.array([0.0, 3.0, np.inf]), np.zeros((1, 1)), np.zeros((3, 1, 1)), np.zeros((3, 1, 1)))
    assert [ExpectedLimit.at(tpl, i, {}).unit for i in range(3)] == ["1", "1", "MeV^-1"]
    assert mediator_poi("B-L", np.inf).unit == "MeV^-1" and mediator_poi("B-L", 0.0).unit == "1"


def test_threaded_grids_equal_serial():
    """The experiments' grids profiled in threads (compiled kernels release the GIL) give the serial numbers: each
    grid is computed the same way whatever the thread count (bit for bit here; stated to 1e-13, since a vectorised
    sum may round differently with the memory alignment of its arrays)."""
    from cevnsfit.mediators import MASS_CHUNK

    # two blocks of mass rows (a block starts cold), three experiments
    masses, g = np.geomspace(1e-2, 1e4, MASS_CHUNK + 5), np.concatenate([[0.0], np.geomspace(1e-6, 1.0, 20)])
    one = MediatorAnalysis(threads=1).grid("L_mu-L_tau", masses, g, ("csi", "lar", "xenonnt"))
    two = MediatorAnalysis(threads=2).grid("L_mu-L_tau", masses, g, ("csi", "lar", "xenonnt"))
    for name in ("csi", "lar", "xenonnt"):
        np.testing.assert_allclose(two.chi2[name], one.chi2[name], rtol=1e-13, atol=0)
        assert two.chi2_sm[name] == pytest.approx(one.chi2_sm[name], rel=1e-13, abs=0)
    # several grids in one pool (a model's plane and its lines) are each the grid computed alone
    together = MediatorAnalysis(threads=2).grids("L_mu-L_tau", [(masses, g), ([np.inf], g[:7])], ("lar", "xenonnt"))
    line = MediatorAnalysis(threads=1).grid("L_mu-L_tau", [np.inf], g[:7], ("lar", "xenonnt"))
    for name in ("lar", "xenonnt"):
        np.testing.assert_allclose(together[0].chi2[name], one.chi2[name], rtol=1e-13, atol=0)
        np.testing.assert_allclose(together[1].chi2[name], line.chi2[name], rtol=1e-13, atol=0)


def test_a_failing_grid_stops_the_other_threads(monkeypatch):
    """An error in one block of mass rows stops the others (the queued ones never start) and is raised: here CsI's
    first block fails, and of LAr's 7 blocks, interleaved with CsI's, only one (the other thread's first) can have
    begun."""
    from cevnsfit.errors import InputError

    an = MediatorAnalysis(threads=2)

    def broken(*args, **kwargs):
        raise InputError("broken CsI row")

    lar_rows = []
    real = an.cost("lar").profile_lines
    monkeypatch.setattr(an.cost("csi"), "profile_lines", broken)
    monkeypatch.setattr(an.cost("lar"), "profile_lines", lambda *a, **k: lar_rows.append(1) or real(*a, **k))
    masses = np.geomspace(1e-2, 1e4, 200)
    with pytest.raises(InputError, match="broken CsI row"):
        an.grid("B-L", masses, np.geomspace(1e-6, 1.0, 10), ("csi", "lar"))
    assert len(lar_rows) <= 1  # the failing block stopped the run: no LAr block queued behind it began


def test_an_experiments_templates_are_never_built_by_two_threads_at_once(monkeypatch):
    """Several grids in one pool (a model's plane and its lines): the blocks of one experiment's grids may run side by
    side, but its templates (one TemplateBasis with its caches) are built by one thread at a time; other experiments'
    meanwhile.  Each build here is slowed down so that, without that rule, the threads would overlap."""
    import threading
    import time

    an = MediatorAnalysis(threads=2)
    real = an.templates
    active, worst, lock = {}, {}, threading.Lock()

    def slow(model, masses, name):
        with lock:
            active[name] = active.get(name, 0) + 1
            worst[name] = max(worst.get(name, 0), active[name])
            worst["all"] = max(worst.get("all", 0), sum(active.values()))
        time.sleep(0.05)
        try:
            return real(model, masses, name)
        finally:
            with lock:
                active[name] -= 1

    monkeypatch.setattr(an, "templates", slow)
    g = np.geomspace(1e-5, 1e-2, 5)
    an.grids("B-L", [([1.0, 10.0], g), ([0.0], g), ([np.inf], g), ([3.0], g)], ("csi", "lar"))
    assert worst["csi"] == worst["lar"] == 1
    assert worst["all"] == 2  # the two experiments' builds did overlap: the threads were there to collide
