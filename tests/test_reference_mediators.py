"""Light mediators against the independent quadrature reference of ``tests/reference_rates.py``.

The reference writes each mediator from the specification (physics.md 10.2-10.4) by its own route: the tree-level
Z' as flavour-diagonal vector NSI, AC22's L_alpha - L_beta loop formula with the vacuum-polarisation integral by
quad, the scalar cross section M^2 T/(4 pi E^2) ... added to the vector one; then the same nested quad as for the
SM (no recoil grid, no spectral moments, no templates).  The package's template engine (N0 + g^2 N1 + g^4 N2) and
its direct path are compared with it per reconstructed-energy bin, summed over arrival times (time fractions from
the reference as well), at points that cover each path: M = 0, finite M and the contact limit, constructive and
destructive interference (down to a rate of 20 % of the SM, and past the sign flip), loop mixing for both
interference signs, and a scalar from a 2.5 % to a 27-fold rate.

Two comparisons per point:

* counts per bin.  Achieved: CsI <= 1.4e-5 relative in bins 1-8, 2.3e-4 in the [0, 8) PE bin (the same as at the
  SM: the package interpolates the PE efficiency on 0.1-PE nodes); LAr <= 6e-7.
* the ratio to the SM per bin (package ratio / reference ratio - 1), where the common response discretisation
  cancels and only the mediator physics is left.  Achieved: CsI <= 4.5e-6, LAr <= 5.2e-7.

The scalar comparison found a defect, now fixed: the recoil grid had no node at the end point of the prompt nu_mu
line, where the scalar integrand (T'/E^2, no kinematic zero) jumps, which put the nu_mu scalar counts up to
1.5e-3 high per CsI bin (8e-5 of the total scalar rate).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_rates as ref  # noqa: E402

from cevnsfit.physics.models import get_model  # noqa: E402
from cevnsfit.templates import build_templates  # noqa: E402
from reference_templates import direct_counts  # noqa: E402

# tolerances: 3-10x the agreement achieved (module docstring)
RTOL_CSI = 1e-4  # achieved 1.4e-5 (bins 1-8)
RTOL_CSI_BIN0 = 1e-3  # achieved 2.3e-4 (SM and every mediator alike)
RTOL_LAR = 3e-6  # achieved 6e-7
RATIO_TOL = {"csi": 2e-5, "lar": 3e-6}  # achieved 4.5e-6, 5.2e-7
SMALL = 1e-6  # bins holding less than 1e-6 of the largest one (LAr above 70 keVee) are compared absolutely

INF = math.inf
# (model, M [MeV], g; for M = inf the coupling is g/M in MeV^-1)
POINTS = [
    ("B-L", 0.0, 5e-5),  # tree level, constructive, light limit
    ("B-L", 10.0, 5e-5),
    ("B-L", INF, 1e-6),  # contact limit (g/M = 1e-3 GeV^-1)
    ("universal", 100.0, 1e-4),  # tree level, destructive: rate 26 % (CsI) / 20 % (LAr) of the SM
    ("universal", 100.0, 2e-4),  # past the sign flip: CsI back to the SM rate
    ("L_mu-L_tau", 0.0, 1.2e-3),  # loop mixing, destructive
    ("L_mu-L_tau", 10.0, 2e-3),
    ("L_mu-L_tau", INF, 6e-5),  # inside the high-mass sign-flip island
    ("L_e-L_mu", 1.0, 1e-3),  # loop mixing: nu_e destructive, nu_mu constructive
    ("scalar", 0.0, 1e-5),
    ("scalar", 10.0, 3e-5),
    ("scalar", 1000.0, 1e-3),
    ("scalar", INF, 1e-6),
]
# one point of each path in the fast lane, all of them with --runslow (pytest -m slow)
FAST = {("B-L", 10.0, 5e-5), ("L_mu-L_tau", INF, 6e-5), ("scalar", 10.0, 3e-5), ("universal", 100.0, 1e-4)}


def _bsm(model, mass, g):
    return ("scalar", mass, g) if model.kind == "scalar" else ("vector", *model.charges, mass, g)


def _reference(name: str, bsm) -> np.ndarray:
    """Reference counts per energy bin, all flavours, weighted by the reference time fractions in the window."""
    edges = ref.CSI_PE_EDGES if name == "csi" else ref.LAR_E_EDGES
    counts = ref.csi_counts if name == "csi" else ref.lar_counts
    times = ref.csi_time_fractions if name == "csi" else ref.lar_time_fractions
    return np.array([sum(counts(edges[i], edges[i + 1], f, bsm) * times(f).sum() for f in ref.FLAVOURS)
                     for i in range(len(edges) - 1)])


def _params():
    out = []
    for p in POINTS:
        marks = () if p in FAST else (pytest.mark.slow,)
        for name in ("csi", "lar"):
            out.append(pytest.param(name, *p, marks=marks, id=f"{name}-{p[0]}-M{p[1]:g}-g{p[2]:g}"))
    return out


@pytest.mark.parametrize("name, model_name, mass, g", _params())
def test_mediator_counts_per_bin(csi, lar, name, model_name, mass, g):
    exp = {"csi": csi, "lar": lar}[name]
    model = get_model(model_name)
    want = _reference(name, _bsm(model, mass, g))
    want_sm = _reference(name, None)
    assert abs(want.sum() / want_sm.sum() - 1) > 0.02  # the point really moves the rate
    fast = build_templates(exp, model, [mass]).counts(g, 0).sum(axis=1)
    direct = direct_counts(exp, model, mass, g).sum(axis=1)
    sm = exp.kernel.sm_counts().sum(axis=1)
    big = want > SMALL * want.max()
    rtol = np.full(want.size, RTOL_CSI if name == "csi" else RTOL_LAR)
    if name == "csi":
        rtol[0] = RTOL_CSI_BIN0
    for got in (fast, direct):
        np.testing.assert_array_less(np.abs(got[big] / want[big] - 1), rtol[big])
        np.testing.assert_allclose(got[~big], want[~big], rtol=0, atol=SMALL * want.max())
        ratio = (got[big] / sm[big]) / (want[big] / want_sm[big]) - 1
        np.testing.assert_array_less(np.abs(ratio), RATIO_TOL[name])


def test_loop_integral_reference_values():
    # physics.md 10.3 quotes eps_tau,mu and eps_mu,e at |q| = 0, 10, 50, 100 MeV (4 digits)
    for q, tm, me in ((0.0, 0.9408, 1.7772), (10.0, 0.9405, 1.0614), (50.0, 0.9335, 0.5344), (100.0, 0.9136, 0.3234)):
        assert ref.loop_eps("tau", "mu", q) == pytest.approx(tm, abs=6e-5)
        assert ref.loop_eps("mu", "e", q) == pytest.approx(me, abs=6e-5)
    assert ref.loop_eps("tau", "mu", 0.0) == pytest.approx(math.log(ref.LEPTON_MASS["tau"] / ref.LEPTON_MASS["mu"]) / 3,
                                                           rel=1e-10, abs=0)


# ---- the cross-section functions themselves, point by point (no detector, milliseconds) ------------------------
# Same formulas written twice: agreement to rounding (achieved <= 8e-12 relative, at points where the shift nearly
# cancels Q_SM; the loop integral's 1e-14 absolute accuracy included); allowed 5e-11.
POINT_RTOL = 5e-11


def _recoils(nuc_ref, e_nu):
    return [f * nuc_ref.t_max(e_nu) for f in (1e-4, 0.02, 0.3, 0.9)]


@pytest.mark.parametrize("nucleus", ["Cs133", "I127", "Ar40"])
def test_cross_section_functions_equal_reference(nucleus):
    from cevnsfit.physics import cross_section as xs
    from cevnsfit.physics.models import vector_shift
    from cevnsfit.physics.nuclei import get_nucleus

    nuc, nref = get_nucleus(nucleus), ref.Nucleus(nucleus)
    for e_nu in (12.0, ref.E_PI, 50.0):
        for t in _recoils(nref, e_nu):
            for f in ref.FLAVOURS:
                assert xs.differential_cross_section(e_nu, t, nuc, f) == pytest.approx(
                    ref.dsigma_dt(e_nu, t, nref, f), rel=POINT_RTOL, abs=0)
                q, fz, fn = xs.nuclear_form_factors(nuc, t)
                q_sm = xs.sm_weak_charge(nuc, f, t)
                assert q_sm == pytest.approx(ref.weak_charge(t, nref, f), rel=POINT_RTOL, abs=0)
                for name in ("B-L", "universal", "B-3L_mu", "L_mu-L_tau", "L_e-L_mu", "L_e-L_tau"):
                    model = get_model(name)
                    for mass, g in ((0.0, 1e-4), (30.0, 3e-4), (1e3, 3e-3)):
                        got = q_sm + vector_shift(model, f, q, mass, g, nuc.Z, nuc.N, fz, fn)
                        want = ref.weak_charge(t, nref, f, _bsm(model, mass, g))
                        assert got == pytest.approx(want, rel=POINT_RTOL, abs=1e-12), (name, f, mass)
            for mass, g in ((0.0, 1e-5), (30.0, 3e-5), (1e3, 1e-3)):
                got = (xs.scalar_prefactor_cm2_per_mev(nuc.mass_mev) * t / e_nu**2 * g**4
                       * xs.scalar_charge_squared(nuc, t, mass))
                assert got == pytest.approx(ref.scalar_dsigma_dt(e_nu, t, nref, mass, g), rel=POINT_RTOL, abs=0)


@pytest.mark.parametrize("model_name, mass, g", sorted(FAST, key=str))
def test_template_batch_equals_reference(csi, model_name, mass, g):
    """The batched coupling path of the templates (what the scans evaluate, one row of couplings per mass) against
    the reference, and g = 0 against the SM exactly."""
    model = get_model(model_name)
    batch = build_templates(csi, model, [mass]).counts(np.array([0.0, g, g]), 0)
    np.testing.assert_array_equal(batch[0], csi.kernel.sm_counts())
    np.testing.assert_array_equal(batch[1], batch[2])
    want = _reference("csi", _bsm(model, mass, g))
    got = batch[1].sum(axis=1)
    np.testing.assert_array_less(np.abs(got[1:] / want[1:] - 1), RTOL_CSI)


# ---- fast twin of the slow scalar points (M = 0, 1 GeV and the contact limit), with the published normalisation ----
# The reference above reads (sigma_piN/m_ud) from the package's parameters, as the package does: a wrong value in
# parameters.yaml would pass it.  Here AC22's 17.3 (tests/test_published_inputs.py pins the stored value to it), the
# Cs133 nuclear mass from AME2020, Z and N, and (hbar c)^2 are written in the test.
SIGMA_PIN_OVER_MUD = 17.3
HBARC2_CM2 = (197.3269804593e-13) ** 2  # MeV^2 cm^2, exact
M_CS133 = 132.905451958 * 931.49410242 - 55 * 0.51099895  # MeV; stored rounded to 0.1 MeV (4e-7 relative)


def test_scalar_cross_section_with_the_published_normalisation():
    """dsigma_phi/dT = M^2 T/(4 pi E^2) g^4 (17.3)^2 [Z F_Z + N F_N]^2 / (|q|^2 + m_phi^2)^2 (AC22; physics.md §10.4)
    on Cs133 at m_phi = 0, 1 GeV: the form factors are the package's, the normalisation is the test's.  Allowed
    2e-6: the stored mass's rounding enters squared (and |q| through 2 M T)."""
    from cevnsfit.physics import cross_section as xs
    from cevnsfit.physics.nuclei import get_nucleus

    nuc = get_nucleus("Cs133")
    for e_nu, t in ((30.0, 5e-3), (45.0, 1e-2)):
        q, fz, fn = xs.nuclear_form_factors(nuc, t)
        q2 = 2 * M_CS133 * t + t * t
        for mass, g in ((0.0, 1e-5), (1e3, 1e-3)):
            got = xs.scalar_prefactor_cm2_per_mev(nuc.mass_mev) * t / e_nu**2 * g**4 * xs.scalar_charge_squared(nuc, t, mass)
            want = (M_CS133**2 * t / (4 * math.pi * e_nu**2) * g**4 * (SIGMA_PIN_OVER_MUD * (55 * fz + 78 * fn)) ** 2
                    / (q2 + mass**2) ** 2 * HBARC2_CM2)
            assert got == pytest.approx(want, rel=2e-6, abs=0), (mass, e_nu)


@pytest.mark.parametrize("mass", [0.0, INF])
def test_scalar_templates_with_the_published_normalisation(csi, mass):
    """The scalar templates (what every scalar limit uses) at M = 0 and in the contact limit against the CsI kernel
    fed with the scalar strength S = g^4 (17.3 [Z F_Z + N F_N])^2 / (|q|^2 + M^2)^2 built here (Z, N written here).
    A scalar rate of ~30 % of the SM; allowed 1e-10 relative (the same kernel: rounding only)."""
    k = csi.kernel
    zn = {"Cs133": (55, 78), "I127": (53, 74)}
    unit = {}
    for x in k.nuclei:
        q, fz, fn = k.form_factors[x]
        z, n = zn[x]
        prop = np.ones_like(q) if math.isinf(mass) else np.divide(1.0, q * q, out=np.zeros_like(q), where=q > 0)
        for f in k.flavours:
            unit[(f, x)] = (SIGMA_PIN_OVER_MUD * (z * fz + n * fn)) ** 2 * prop**2
    sm = k.sm_counts()
    per_g4 = csi.signal(k.counts({key: 0.0 * v for key, v in k.sm_charge_sq().items()}, unit))
    g = (0.3 * sm.sum() / per_g4.sum()) ** 0.25
    want = csi.signal(k.counts(k.sm_charge_sq(), {key: g**4 * v for key, v in unit.items()}))
    got = build_templates(csi, get_model("scalar"), [mass]).counts(g, 0)
    assert want.sum() == pytest.approx(1.3 * sm.sum(), rel=1e-9)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * want.max())
