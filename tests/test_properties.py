"""Property tests (issue 8, item 6): invariants a physicist would check, on inputs drawn by hypothesis over the
whole range the package accepts (0 < g <= 4 pi, |Q'| <= 100, any mass >= 0 including the contact limit).

Each property can fail: it compares two independent computations (template path against the direct Q^2 path,
a combined cost against its parts, a scaled model against a rescaled coupling) or checks a bound that a bad
profile would break.  Settings are derandomised for reproducible CI runs and kept small for speed."""

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_costs import ReferencePoisson

from cevnsfit.physics.models import MAX_COUPLING, custom_vector_model, get_model
from cevnsfit.templates import build_templates
from reference_templates import direct_counts

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

log_mass = st.floats(-3.0, 8.0)  # log10(M / MeV)
masses = st.one_of(st.just(0.0), st.just(math.inf), log_mass.map(lambda x: 10.0**x))
couplings = st.floats(-9.0, math.log10(MAX_COUPLING)).map(lambda x: 10.0**x)
charge = st.floats(-100.0, 100.0, allow_nan=False)
# the models the package accepts: some quark charge, or leptophilic with Q'_e + Q'_mu + Q'_tau = 0 (a finite loop)
with_quarks = st.tuples(charge, charge, charge, charge, charge).filter(lambda q: q[0] != 0 or q[1] != 0)
leptophilic = (st.tuples(charge, charge).filter(lambda t: any(t) and abs(t[0] + t[1]) <= 100)
               .map(lambda t: (0.0, 0.0, t[0], t[1], -(t[0] + t[1]))))
charges = st.one_of(with_quarks, leptophilic)
experiments = st.sampled_from(["csi", "lar"])


def vector(qs):
    return custom_vector_model("prop", *qs)


@SETTINGS
@given(name=experiments, mass=masses, g=couplings, qs=charges)
def test_counts_finite_and_non_negative_everywhere_allowed(csi, lar, name, mass, g, qs):
    exp = {"csi": csi, "lar": lar}[name]
    for model in (vector(qs), get_model("scalar")):
        n = direct_counts(exp, model, mass, g)
        assert np.all(np.isfinite(n)) and np.all(n >= 0), (model.name, mass, g)
        chi = exp.cost()(n)
        assert np.isfinite(chi), (model.name, mass, g)  # a legal input never gives a non-finite chi^2


@SETTINGS
@given(name=experiments, mass=masses, g=couplings, qs=charges)
def test_templates_are_exact_quadratics_in_g2(csi, lar, name, mass, g, qs):
    """N0 + g^2 N1(M) + g^4 N2(M) from the template engine equals the direct Q^2 computation at any (M, g)."""
    exp = {"csi": csi, "lar": lar}[name]
    for model in (vector(qs), get_model("scalar")):
        tpl = build_templates(exp, model, [mass])
        direct = direct_counts(exp, model, mass, g)
        scale = max(float(np.abs(direct).max()), 1e-300)
        np.testing.assert_allclose(tpl.counts(g, 0), direct, rtol=1e-8, atol=1e-10 * scale)


@SETTINGS
@given(name=experiments, mass=masses, g=st.floats(-6.0, -1.0).map(lambda x: 10.0**x),
       qs_lam=charges.flatmap(lambda qs: st.tuples(st.just(qs), st.floats(1e-2, min(1e2, 100 / max(map(abs, qs)))))))
def test_scaling_all_charges_equals_rescaling_g(csi, lar, name, mass, g, qs_lam):
    """A model with every charge times lambda at g equals the original at lambda g: each vertex carries g Q' (the
    neutrino's at tree level, the nucleus's at tree level or through the loop mixing, linear in the lepton
    charges), so the amplitude is g^2 times a bilinear form in the charges.  (Not g sqrt(lambda): that would hold
    for an amplitude linear in the charges, which no vertex structure here gives.)"""
    qs, lam = qs_lam
    exp = {"csi": csi, "lar": lar}[name]
    scaled = direct_counts(exp, vector(tuple(lam * q for q in qs)), mass, g)
    rescaled = direct_counts(exp, vector(qs), mass, g * lam)
    np.testing.assert_allclose(scaled, rescaled, rtol=1e-9, atol=1e-12 * float(np.abs(rescaled).max()))


@SETTINGS
@given(s_csi=st.floats(0.0, 5.0), s_lar=st.floats(0.0, 5.0))
def test_chi2_of_a_sum_of_costs_is_the_sum(csi, lar, s_csi, s_lar):
    """The two experiments have independent nuisances: the combined profiled chi^2 is the sum of the parts."""
    sig = {"csi": s_csi * csi.kernel.sm_counts(), "lar": s_lar * lar.signal(lar.kernel.sm_counts())}
    both = (csi.cost() + lar.cost())(sig)
    parts = csi.cost()(sig["csi"]) + lar.cost()(sig["lar"])
    assert both == np.float64(parts) or math.isclose(both, parts, rel_tol=1e-12)


@SETTINGS
@given(s=st.floats(0.0, 5.0), eta=st.lists(st.floats(-0.5, 0.5), min_size=4, max_size=4))
def test_profiled_chi2_is_the_minimum_over_the_nuisances(csi, s, eta):
    """Delta chi^2 >= 0 against the profiled minimum: no nuisance values give a lower chi^2 than the profile (the
    chi^2 at given values from the reference's explicit formula); and a cost with every parameter fixed there
    (``fix``) gives that chi^2."""
    cost = csi.cost()
    signal = s * csi.kernel.sm_counts()
    fit = cost.fit(signal)
    ref = ReferencePoisson.of(cost)
    for trial in (np.zeros(4), np.array(eta), np.array([fit.nuisances[p] for p in cost.parameters])):
        chi = ref.chi2_at(signal, trial)[0]
        assert chi >= fit.chi2 - 1e-9 * max(1.0, abs(fit.chi2)), (trial, chi, fit.chi2)
        assert math.isclose(cost.fix(dict(zip(cost.parameters, trial)))(signal), chi, rel_tol=1e-12, abs_tol=1e-9)


@SETTINGS
@given(name=experiments, mass=masses, qs=charges)
def test_vanishing_coupling_gives_the_standard_model(csi, lar, name, mass, qs):
    exp = {"csi": csi, "lar": lar}[name]
    sm = exp.signal(exp.kernel.sm_counts())
    # g = 1e-15: at 1e-12 the contact limit (g/M in MeV^-1) with charges ~50 still moves CsI by 1.02e-9 relative, a
    # physical shift above the tolerance (qs = (0, 26, 0, 58, 0), found by hypothesis; the same before and after the
    # shift-basis refactor)
    np.testing.assert_allclose(direct_counts(exp, vector(qs), mass, 1e-15), sm, rtol=1e-9)
