"""Property tests that break the symmetries every registered model has.

Every registered U(1)' model has Q'_u = Q'_d (baryon number, or no quark charge at all), and the registered lepton
charges repeat across flavours; a formula that swapped the up- and down-quark content of the proton and neutron, or
gave nu_mu-bar the electron's charge, would pass every test written for those models.  Here the charges are random,
with Q'_u != Q'_d and Q'_e, Q'_mu, Q'_tau all different, the nuclei have N != Z (and natural argon and germanium mix
isotopes of different N/Z), and every quantity is compared with an independent per-quark computation written in
this file:

* a Z' with charges (Q'_u, Q'_d, Q'_e, Q'_mu, Q'_tau) couples to the proton (uud) with 2Q'_u + Q'_d and to the neutron
  (udd) with Q'_u + 2Q'_d; to a neutrino or antineutrino of flavour l with its charged lepton's charge Q'_l.  Its
  tree-level weak-charge shift is (AC22, JHEP 05 (2022) 109, eq. for the vector mediators; physics.md §10.2)

      Q_l -> Q_l,SM + g^2 Q'_l [(2Q'_u + Q'_d) Z F_Z + (Q'_u + 2Q'_d) N F_N] / (sqrt2 G_F (|q|^2 + M^2));

* vector NSI eps^{qV}_ab shift the couplings the same way: g_V^p += 2 eps^u + eps^d, g_V^n += eps^u + 2 eps^d (§10.1).

The charges reach the package the way a user gives them: through ``--charges``' parser (``resolve_model``), as
fraction strings.  Deterministic: hypothesis with ``derandomize=True``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cevnsfit.analysis import resolve_model
from cevnsfit.errors import InputError
from cevnsfit.experiments import load_experiment
from cevnsfit.mediators import nsi_counts
from cevnsfit.physics.models import nsi_weak_charge_squared, vector_shift, vector_shift_numerator
from cevnsfit.templates import TemplateBasis

G_F = 1.1663787e-11  # MeV^-2, CODATA 2018 (tests/test_published_inputs.py pins the package's value to it)
LEPTON_OF = {"nue": "e", "nuebar": "e", "numu": "mu", "numubar": "mu", "nutau": "tau", "nutaubar": "tau"}
# Z, N of the target nuclei, written here (not read from the package)
ZN = {"Cs133": (55, 78), "I127": (53, 74), "Ar36": (18, 18), "Ar38": (18, 20), "Ar40": (18, 22),
      "Ge70": (32, 38), "Ge72": (32, 40), "Ge73": (32, 41), "Ge74": (32, 42), "Ge76": (32, 44)}
# radiatively corrected SM couplings per charged lepton (as pinned in tests/test_published_inputs.py)
GVP = {"e": 0.0401, "mu": 0.0318, "tau": 0.0275}
GVN = -0.5094

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

fractions = st.builds(Fraction, st.integers(-9, 9), st.integers(1, 4))


@st.composite
def asymmetric_charges(draw):
    """(Q'_u, Q'_d, Q'_e, Q'_mu, Q'_tau) as Fractions: Q'_u != Q'_d, the three lepton charges all different."""
    qu, qd = draw(fractions), draw(fractions)
    assume(abs(qu - qd) >= Fraction(1, 4))
    leptons = [draw(fractions) for _ in range(3)]
    assume(len(set(leptons)) == 3 and all(leptons))
    return (qu, qd, *leptons)


def model_from(charges, name="asym"):
    """The model as the command line builds it from ``--charges 'Qu,Qd,Qe,Qmu,Qtau'``."""
    return resolve_model(name, ",".join(str(c) for c in charges))


def reference_numerator(charges, flavour, z, n, fz, fn):
    """C_l = Q'_l [(2Q'_u + Q'_d) Z F_Z + (Q'_u + 2Q'_d) N F_N] / (sqrt2 G_F), written quark by quark."""
    qu, qd, qe, qmu, qtau = (float(c) for c in charges)
    lepton_charge = {"e": qe, "mu": qmu, "tau": qtau}[LEPTON_OF[flavour]]
    proton = 2 * qu + qd  # u, u, d
    neutron = qu + 2 * qd  # u, d, d
    return lepton_charge * (proton * z * np.asarray(fz) + neutron * n * np.asarray(fn)) / (math.sqrt(2) * G_F)


# ---------------------------------------------------------------------------------------------------------------
# The coupling function itself (every flavour, antineutrinos included)
# ---------------------------------------------------------------------------------------------------------------
Q = np.linspace(0.0, 150.0, 16)


@SETTINGS
@given(charges=asymmetric_charges(), z=st.integers(1, 100), extra=st.integers(1, 60),
       flavour=st.sampled_from(sorted(LEPTON_OF)), r_p=st.floats(2.0, 6.0), r_n=st.floats(2.0, 6.5))
def test_shift_numerator_is_the_per_quark_formula(charges, z, extra, flavour, r_p, r_n):
    n = z + extra  # N != Z
    fz, fn = np.exp(-(Q * r_p / 197.327) ** 2 / 6), np.exp(-(Q * r_n / 197.327) ** 2 / 6)  # distinct form factors
    want = reference_numerator(charges, flavour, z, n, fz, fn)
    got = vector_shift_numerator(model_from(charges), flavour, Q, z, n, fz, fn)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)))
    # with a mass and a coupling: g^2 C / (|q|^2 + M^2)
    g, mass = 3e-4, 17.0
    np.testing.assert_allclose(vector_shift(model_from(charges), flavour, Q, mass, g, z, n, fz, fn),
                               g * g * want / (Q**2 + mass**2), rtol=1e-12, atol=1e-12 * g * g * np.max(np.abs(want)))


@SETTINGS
@given(charges=asymmetric_charges(), z=st.integers(1, 100), extra=st.integers(1, 60))
def test_antineutrinos_take_their_leptons_charge_and_flavours_differ(charges, z, extra):
    n = z + extra
    m = model_from(charges)
    fz, fn = np.full(Q.shape, 0.9), np.full(Q.shape, 0.8)
    by = {f: vector_shift_numerator(m, f, Q, z, n, fz, fn) for f in LEPTON_OF}
    for nu in ("nue", "numu", "nutau"):
        np.testing.assert_array_equal(by[nu + "bar"], by[nu])
    # distinct lepton charges give distinct shifts (unless the nucleus is blind to this Z': both terms cancel)
    if np.any(by["nue"] != 0):
        assert not np.allclose(by["nue"], by["numu"]) and not np.allclose(by["numu"], by["nutau"])


@SETTINGS
@given(charges=asymmetric_charges(), z=st.integers(1, 100), extra=st.integers(1, 60),
       flavour=st.sampled_from(sorted(LEPTON_OF)))
def test_interference_sign_of_the_per_quark_coupling(charges, z, extra, flavour):
    """Q_SM < 0 (neutron dominated): a positive shift is destructive.  With F_Z = F_N = 1 the sign is that of
    Q'_l [(2Q'_u + Q'_d) Z + (Q'_u + 2Q'_d) N]."""
    n = z + extra
    m = model_from(charges)
    c = float(reference_numerator(charges, flavour, z, n, 1.0, 1.0))
    want = "none" if c == 0 else ("destructive" if c > 0 else "constructive")
    assert m.interference(flavour, z, n) == want
    qu, qd = charges[:2]
    if (2 * qu + qd) * (qu + 2 * qd) < 0 and c != 0:  # proton and neutron terms of opposite sign: needs the nucleus
        with pytest.raises(InputError, match="pass Z and N"):
            m.interference(flavour)
    assert not m.is_anomaly_free  # Q'_u != Q'_d is not of AC22's baryon-number form


@SETTINGS
@given(eu=st.floats(-1, 1), ed=st.floats(-1, 1), eu_off=st.floats(-1, 1), ed_off=st.floats(-1, 1),
       z=st.integers(1, 100), extra=st.integers(1, 60), flavour=st.sampled_from(sorted(LEPTON_OF)),
       other=st.sampled_from(["e", "mu", "tau"]))
def test_nsi_weak_charge_per_quark(eu, ed, eu_off, ed_off, z, extra, flavour, other):
    n = z + extra
    a = LEPTON_OF[flavour]
    assume(other != a)
    fz, fn = np.full(3, 0.95), np.full(3, 0.85)
    pair = "".join(sorted((a, other), key=["e", "mu", "tau"].index))
    eps = {f"uV_{a}{a}": eu, f"dV_{a}{a}": ed, f"uV_{pair}": eu_off, f"dV_{pair}": ed_off}
    gvp, gvn = 0.03, -0.51
    diag = (gvp + 2 * eu + ed) * z * fz + (gvn + eu + 2 * ed) * n * fn
    off = (2 * eu_off + ed_off) * z * fz + (eu_off + 2 * ed_off) * n * fn
    np.testing.assert_allclose(nsi_weak_charge_squared(flavour, eps, gvp, gvn, z, n, fz, fn), diag**2 + off**2,
                               rtol=1e-12, atol=1e-12 * (np.max(diag**2 + off**2) + 1.0))


# ---------------------------------------------------------------------------------------------------------------
# Through an experiment: templates (what every limit and scan uses) and NSI counts against the kernel fed with Q^2
# built here.  CsI (Cs, I: N/Z 1.42, 1.40; nu_e, nu_mu, nu_mu-bar), natural argon (36Ar has N = Z), Dresden-II
# (natural germanium, nu_e-bar only).
# ---------------------------------------------------------------------------------------------------------------
MASSES = np.array([0.0, 20.0, math.inf])


@pytest.fixture(scope="module")
def bases():
    experiments = {"csi": load_experiment("csi"), "lar-natural": load_experiment("lar", argon_isotopes="natural"),
                   "dresden2": load_experiment("dresden2")}
    return {name: TemplateBasis(exp) for name, exp in experiments.items()}


def reference_counts(exp, charges, mass, g):
    """The experiment's counts at (M, g) from the kernel fed with (Q_SM + g^2 C_ref(|q|)/(|q|^2 + M^2))^2."""
    k = exp.kernel
    charge_sq = {}
    for x in k.nuclei:
        q, fz, fn = k.form_factors[x]
        z, n = ZN[x]
        if math.isinf(mass):
            prop = np.ones_like(q)
        else:
            denom = q * q + mass * mass
            prop = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
        for f in k.flavours:
            charge_sq[(f, x)] = (k.sm_charge[(f, x)] + g * g * reference_numerator(charges, f, z, n, fz, fn) * prop) ** 2
    return exp.signal(k.counts(charge_sq))


def coupling_scale(exp, charges, mass):
    """A coupling whose shift is ~30 % of |Q_SM| where the response is (the test is then sensitive, not trivial)."""
    k = exp.kernel
    x = k.nuclei[0]
    q, fz, fn = k.form_factors[x]
    z, n = ZN[x]
    f = k.flavours[0]
    c = np.abs(reference_numerator(charges, f, z, n, fz, fn))
    qsm = np.abs(k.sm_charge[(f, x)])
    typical = np.argmax(k.vector[(f, x)].sum(axis=0))  # the recoil node that contributes most
    prop = 1.0 if math.isinf(mass) else 1.0 / (q[typical] ** 2 + mass**2)
    return math.sqrt(0.3 * qsm[typical] / max(c[typical] * prop, 1e-300))


@FEWER
@given(charges=asymmetric_charges(), which=st.sampled_from(["csi", "lar-natural", "dresden2"]),
       mass_index=st.integers(0, len(MASSES) - 1))
def test_templates_of_asymmetric_charges_equal_the_per_quark_rate(bases, charges, which, mass_index):
    basis = bases[which]
    exp = basis.experiment
    lepton_charges = {LEPTON_OF[f] for f in exp.kernel.flavours}
    qu, qd, qe, qmu, qtau = (float(c) for c in charges)
    assume(any({"e": qe, "mu": qmu, "tau": qtau}[lep] for lep in lepton_charges))
    model = model_from(charges)
    mass = MASSES[mass_index]
    g = coupling_scale(exp, charges, mass)
    tpl = basis.templates(model, MASSES)
    want = reference_counts(exp, charges, mass, g)
    got = tpl.counts(g, mass_index)
    assert np.max(np.abs(want - tpl.n0)) > 1e-3 * np.max(tpl.n0)  # the point moves the rate
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.max(want))
    # and the coefficient form: N0 + g^2 N1 + g^4 N2 at a second coupling
    np.testing.assert_allclose(tpl.counts(0.5 * g, mass_index), reference_counts(exp, charges, mass, 0.5 * g),
                               rtol=1e-9, atol=1e-9 * np.max(want))


@FEWER
@given(eps=st.tuples(*[st.floats(-0.5, 0.5)] * 4), which=st.sampled_from(["csi", "lar-natural"]))
def test_nsi_counts_and_poi_per_quark(bases, eps, which):
    """Diagonal vector NSI, u and d separately, for nu_e and nu_mu (and nu_mu-bar, which takes nu_mu's): the NSI
    template and the named-parameter predictor (eps.u.ee, eps.d.ee, eps.u.mumu, eps.d.mumu) against Q^2 built here."""
    from cevnsfit.poi import PoiPredictor

    exp = bases[which].experiment
    k = exp.kernel
    eu_e, ed_e, eu_mu, ed_mu = eps
    per_lepton = {"e": (eu_e, ed_e), "mu": (eu_mu, ed_mu), "tau": (0.0, 0.0)}
    charge_sq = {}
    for x in k.nuclei:
        _, fz, fn = k.form_factors[x]
        z, n = ZN[x]
        for f in k.flavours:
            lep = LEPTON_OF[f]
            eu, ed = per_lepton[lep]
            charge_sq[(f, x)] = ((GVP[lep] + 2 * eu + ed) * z * fz + (GVN + eu + 2 * ed) * n * fn) ** 2
    want = exp.signal(k.counts(charge_sq))
    got = nsi_counts(exp, {"uV_ee": eu_e, "dV_ee": ed_e, "uV_mumu": eu_mu, "dV_mumu": ed_mu})
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.max(want))
    pred = PoiPredictor(exp, ("eps.u.ee", "eps.d.ee", "eps.u.mumu", "eps.d.mumu"))
    np.testing.assert_allclose(pred.counts(np.array(eps)), want, rtol=1e-10, atol=1e-10 * np.max(want))
