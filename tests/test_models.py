"""Tests of cevnsfit.physics.models: AC22's U(1)' charge table, interference signs, the one-loop gamma-Z' mixing,
the tree/loop weak-charge shifts, vector NSI and the model registry.

Reference numbers: docs/physics.md §10.1-10.3 (charge table, loop values, worked signs) and §2 (constants).
"""

import math
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from cevnsfit.errors import InputError
from cevnsfit.parameters import DEFAULT
from cevnsfit.physics import models
from cevnsfit.physics.models import (
    MODELS,
    ScalarModel,
    VectorModel,
    custom_vector_model,
    get_model,
    loop_mixing,
    model_names,
    nsi_weak_charge_squared,
    parse_charges,
    vector_shift,
    vector_shift_numerator,
)

G_F = DEFAULT["constants.G_F"]
ALPHA = DEFAULT["constants.alpha"]
M_E, M_MU, M_TAU = (DEFAULT[f"constants.m_{f}"] for f in ("e", "mu", "tau"))
MASS = {"e": M_E, "mu": M_MU, "tau": M_TAU}

# physics.md §10.2: (Q'_u, Q'_d, Q'_e, Q'_mu, Q'_tau) and the interference of nu_e, nu_mu ("none" = no coupling).
TABLE = {
    "universal": ((1, 1, 1, 1, 1), "destructive", "destructive"),
    "B-L": ((F(1, 3), F(1, 3), -1, -1, -1), "constructive", "constructive"),
    "B_y+L_mu+L_tau": ((F(1, 3), F(1, 3), 0, 1, 1), "none", "destructive"),
    "B-3L_e": ((F(1, 3), F(1, 3), -3, 0, 0), "constructive", "none"),
    "B-3L_mu": ((F(1, 3), F(1, 3), 0, -3, 0), "none", "constructive"),
    "B-2L_e-L_mu": ((F(1, 3), F(1, 3), -2, -1, 0), "constructive", "constructive"),
    "B-L_e-2L_mu": ((F(1, 3), F(1, 3), -1, -2, 0), "constructive", "constructive"),
    # §10.3 worked signs
    "L_e-L_mu": ((0, 0, 1, -1, 0), "destructive", "constructive"),
    "L_e-L_tau": ((0, 0, 1, 0, -1), "destructive", "none"),
    "L_mu-L_tau": ((0, 0, 0, 1, -1), "none", "destructive"),
}
LOOP_PAIRS = {"L_e-L_mu": ("e", "mu"), "L_e-L_tau": ("e", "tau"), "L_mu-L_tau": ("mu", "tau")}

Q_GRID = np.array([0.0, 10.0, 50.0, 100.0])
# physics.md §10.3 [derived], at |q| = 0, 10, 50, 100 MeV
LOOP_REFERENCE = {
    ("tau", "mu"): [0.9408, 0.9405, 0.9335, 0.9136],
    ("mu", "e"): [1.7772, 1.0614, 0.5344, 0.3234],
    ("tau", "e"): [2.7180, 2.0019, 1.4679, 1.2370],
}

# Cs-133 and a smooth stand-in form factor (only needs to be a positive array of q's shape here)
Z_CS, N_CS = 55, 78
Q = np.linspace(0.0, 120.0, 25)
FZ = np.exp(-((Q / 200.0) ** 2))
FN = np.exp(-((Q / 190.0) ** 2))


def reference_loop(m_beta, m_alpha, q):
    """Independent eps_ba(|q|): adaptive quad of the defining integral, split at x = 1/2 and at the scale of the
    light-lepton feature (x ~ m^2/q^2) so that quad sees it."""

    def f(x):
        y = x * (1.0 - x)
        return y * math.log((m_beta**2 + y * q * q) / (m_alpha**2 + y * q * q))

    scale = min(m_alpha, m_beta) ** 2 / max(q * q, 1e-300)
    points = [p for p in (scale, 10 * scale, 100 * scale) if p < 0.5]
    return 2.0 * quad(f, 0.0, 0.5, points=points or None, epsabs=1e-14, epsrel=1e-13, limit=200)[0]


# ---------------------------------------------------------------------------------------------------------------
# Registry and charge table
# ---------------------------------------------------------------------------------------------------------------


def test_registry_holds_exactly_the_ac22_models():
    assert model_names("vector") == list(TABLE)
    assert model_names() == list(TABLE) + ["scalar"]
    assert model_names("scalar") == ["scalar"]
    assert isinstance(get_model("scalar"), ScalarModel)
    assert get_model("scalar").interference("nue") == "none"


@pytest.mark.parametrize("name", list(TABLE))
def test_charges_match_physics_md_table(name):
    model = get_model(name)
    assert isinstance(model, VectorModel)
    assert model.charges == tuple(float(c) for c in TABLE[name][0])
    assert model.lepton_charge("nue") == model.q_e
    assert model.lepton_charge("numu") == model.lepton_charge("numubar") == model.q_mu
    assert model.is_leptophilic == (name in LOOP_PAIRS)
    assert "AC22" in model.source


@pytest.mark.parametrize("name", list(TABLE))
def test_interference_matches_table(name):
    _, nue, numu = TABLE[name]
    model = get_model(name)
    assert model.interference("nue") == nue
    assert model.interference("numu") == numu
    assert model.interference("numubar") == numu
    # with a real nucleus as well
    assert model.interference("nue", Z=Z_CS, N=N_CS) == nue


@pytest.mark.parametrize("name", list(TABLE))
def test_interference_agrees_with_sign_of_computed_shift(name):
    """Positive shift relative to the negative Q_SM <=> destructive (physics.md §1, §10.2)."""
    for flavour, expected in zip(("nue", "numu"), TABLE[name][1:]):
        c = vector_shift_numerator(name, flavour, Q, Z_CS, N_CS, FZ, FN)
        sign = {"destructive": 1.0, "constructive": -1.0, "none": 0.0}[expected]
        assert np.all(np.sign(c) == sign)


def test_anomaly_freedom():
    assert not get_model("universal").is_anomaly_free
    for name in TABLE:
        if name != "universal":
            assert get_model(name).is_anomaly_free, name
    # generation-universal baryon charges by default: B + L_mu + L_tau is not anomaly free
    assert not custom_vector_model("B+L_mu+L_tau", "1/3", "1/3", 0, 1, 1).is_anomaly_free
    assert custom_vector_model("B-L copy", *parse_charges("1/3,1/3,-1,-1,-1")).is_anomaly_free
    # Q'_u != Q'_d is not a combination of baryon and lepton numbers
    assert not custom_vector_model("u only", 1, 0, 0, 0, 0).is_anomaly_free


def test_unknown_model_lists_valid_names():
    with pytest.raises(InputError, match="B-L") as info:
        get_model("B-L_e")
    assert "\n" not in str(info.value)
    with pytest.raises(InputError):
        get_model(None)


def test_scalar_is_not_a_vector_model():
    with pytest.raises(InputError, match="not a vector"):
        vector_shift_numerator("scalar", "nue", Q, Z_CS, N_CS, FZ, FN)


# ---------------------------------------------------------------------------------------------------------------
# Custom models and --charges parsing
# ---------------------------------------------------------------------------------------------------------------


def test_parse_charges():
    assert parse_charges("1/3,1/3,-1,-1,-1") == (1 / 3, 1 / 3, -1.0, -1.0, -1.0)
    assert parse_charges(" 0.5, -1/2 ,0,\u22122,1e-1") == (0.5, -0.5, 0.0, -2.0, 0.1)


@pytest.mark.parametrize(
    "text",
    ["1/0,1,1,1,1", "a,b,c,d,e", "1,1,1,1", "1,1,1,1,1,1", "nan,1,1,1,1", "inf,0,0,0,0", "1,,1,1,1", "", "1/3"],
)
def test_parse_charges_rejects_bad_strings(text):
    with pytest.raises(InputError) as info:
        parse_charges(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "charges",
    [(math.nan, 0, 0, 0, 0), (0, math.inf, 0, 0, 0), (0, 0, 0, 0, 0), ("x", 0, 0, 0, 0), (None, 0, 0, 0, 0),
     (0, 0, 1, 0, 0), (0, 0, 0, 1, 1)],  # last two: leptophilic with sum Q'_l != 0 (UV-divergent mixing)
)
def test_custom_model_rejects_bad_charges(charges):
    with pytest.raises(InputError):
        custom_vector_model("bad", *charges)


def test_custom_model_rejects_empty_name():
    with pytest.raises(InputError):
        custom_vector_model(" ", 1, 1, 1, 1, 1)


@pytest.mark.parametrize("name", ["L_mu-L_tau", "L_e-L_mu", "B-L", "B-3L_mu"])
def test_custom_model_reproduces_registry_shift_exactly(name):
    custom = custom_vector_model("custom", *parse_charges(",".join(str(c) for c in TABLE[name][0])))
    for flavour in ("nue", "numu", "numubar"):
        a = vector_shift(name, flavour, Q[1:], 5.0, 1e-4, Z_CS, N_CS, FZ[1:], FN[1:])
        b = vector_shift(custom, flavour, Q[1:], 5.0, 1e-4, Z_CS, N_CS, FZ[1:], FN[1:])
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------------------------
# One-loop mixing
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", list(LOOP_REFERENCE))
def test_loop_values_of_physics_md(pair):
    beta, alpha = pair
    got = loop_mixing(MASS[beta], MASS[alpha], Q_GRID)
    np.testing.assert_allclose(got, LOOP_REFERENCE[pair], atol=5e-4, rtol=0)


@pytest.mark.parametrize("pair", list(LOOP_REFERENCE))
def test_loop_at_zero_momentum(pair):
    beta, alpha = pair
    assert abs(loop_mixing(MASS[beta], MASS[alpha], 0.0) - math.log(MASS[beta] / MASS[alpha]) / 3.0) < 1e-10


def test_loop_darkcast_cross_check():
    """eps_tau,mu(0) * 2 alpha/pi = 0.00437 (DarkCast's |eps| for L_mu - L_tau, physics.md §10.3)."""
    assert loop_mixing(M_TAU, M_MU, 0.0) * 2.0 * ALPHA / math.pi == pytest.approx(0.00437, abs=5e-6)


@pytest.mark.parametrize("pair", list(LOOP_REFERENCE))
@pytest.mark.parametrize("q", [1e-3, 0.3, 1.0, 5.0, 30.0, 75.0, 105.0, 150.0, 500.0, 3000.0, 1e5])
def test_loop_against_adaptive_quadrature(pair, q):
    beta, alpha = pair
    assert loop_mixing(MASS[beta], MASS[alpha], q) == pytest.approx(reference_loop(MASS[beta], MASS[alpha], q),
                                                                     abs=1e-8, rel=0)


@settings(max_examples=60, deadline=None)
@given(
    mb=st.floats(1e-2, 1e4), ma=st.floats(1e-2, 1e4), q=st.floats(0.0, 1e3),
)
def test_loop_properties(mb, ma, q):
    e_ba = loop_mixing(mb, ma, q)
    assert e_ba == pytest.approx(-loop_mixing(ma, mb, q), abs=1e-13)
    assert e_ba == pytest.approx(reference_loop(mb, ma, q), abs=1e-8)
    # |eps| shrinks as |q| grows (the logs of both masses approach each other), sign fixed by the masses
    assert abs(e_ba) <= abs(math.log(mb / ma)) / 3.0 + 1e-12
    assert e_ba * math.log(mb / ma) >= 0.0


def test_loop_is_vectorised_and_validates():
    grid = np.linspace(0, 200, 12).reshape(3, 4)
    out = loop_mixing(M_MU, M_E, grid)
    assert out.shape == (3, 4)
    assert out[1, 2] == loop_mixing(M_MU, M_E, grid[1, 2])
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(InputError):
            loop_mixing(M_MU, M_E, np.array([1.0, bad]))
    with pytest.raises(InputError):
        loop_mixing(0.0, M_E, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Weak-charge shifts
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LOOP_PAIRS))
def test_loop_model_shift_is_ac22_formula(name):
    """C = sqrt2 alpha (delta_la eps_ba + delta_lb eps_ab) Z F_Z / (pi G_F): only the proton term (§10.3)."""
    a, b = LOOP_PAIRS[name]
    eps_ba = loop_mixing(MASS[b], MASS[a], Q)
    for flavour, lepton in (("nue", "e"), ("numu", "mu"), ("numubar", "mu")):
        loop = (eps_ba if lepton == a else 0.0) + (-eps_ba if lepton == b else 0.0)
        expected = math.sqrt(2.0) * ALPHA * loop * Z_CS * FZ / (math.pi * G_F)
        got = vector_shift_numerator(name, flavour, Q, Z_CS, N_CS, FZ, FN)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-12 * np.max(np.abs(expected)) + 1e-300)
    # the neutron term does not move
    assert np.all(vector_shift_numerator(name, "nue", Q, 0, N_CS, FZ, FN) == 0.0)


def test_shift_weights_and_bases_rebuild_the_numerator():
    """C = sum_b w_b B_b (what the templates fold term by term): the weights are the charges' products, zero ones
    left out, and the bases rebuild C of every registered model and flavour."""
    from cevnsfit.physics.models import vector_shift_basis, vector_shift_weights

    assert vector_shift_weights("B-L", "nue") == {"proton": -1.0, "neutron": -1.0}
    assert vector_shift_weights("L_mu-L_tau", "numubar") == {"loop_mu": 1.0}
    assert vector_shift_weights("L_mu-L_tau", "nue") == {}
    assert vector_shift_weights("L_e-L_mu", "numu") == {"loop_e": -1.0, "loop_mu": 1.0}
    for name in TABLE:
        for flavour in ("nue", "numu"):
            rebuilt = sum(w * vector_shift_basis(b, Q, Z_CS, N_CS, FZ, FN)
                          for b, w in vector_shift_weights(name, flavour).items())
            np.testing.assert_allclose(rebuilt, vector_shift_numerator(name, flavour, Q, Z_CS, N_CS, FZ, FN), rtol=1e-14,
                                       atol=0)
    with pytest.raises(InputError, match="unknown shift basis"):
        vector_shift_basis("loop_tau", Q, Z_CS, N_CS, FZ, FN)
    with pytest.raises(InputError, match="not a vector model"):
        vector_shift_weights("scalar", "nue")


def test_loop_prefactor_of_physics_md():
    """sqrt2 alpha/(pi G_F) = 2.8164e8 MeV^2 (§2): C/(eps Z F_Z) for L_mu - L_tau."""
    c = vector_shift_numerator("L_mu-L_tau", "numu", 0.0, 1, 0, 1.0, 1.0)
    assert c / loop_mixing(M_TAU, M_MU, 0.0) == pytest.approx(2.8164e8, rel=2e-5, abs=0)


@pytest.mark.parametrize("name", ["universal", "B-L", "B-3L_mu", "B_y+L_mu+L_tau"])
def test_tree_shift_formula(name):
    qu, qd, qe, qmu, _ = (float(c) for c in TABLE[name][0])
    for flavour, ql in (("nue", qe), ("numu", qmu)):
        expected = ql / (math.sqrt(2.0) * G_F) * ((2 * qu + qd) * Z_CS * FZ + (qu + 2 * qd) * N_CS * FN)
        np.testing.assert_allclose(vector_shift_numerator(name, flavour, Q, Z_CS, N_CS, FZ, FN), expected,
                                   rtol=1e-14)


@pytest.mark.parametrize("name", ["B-L", "B-3L_mu"])
@pytest.mark.parametrize("flavour", ["nue", "numu"])
def test_heavy_mediator_equals_nsi(name, flavour):
    """eps^{fV}_ll = g^2 Q'_l Q'_f / (sqrt2 G_F M^2) in §10.1 gives (Q_SM + g^2 C/M^2)^2 (contact limit of §10.2)."""
    model = get_model(name)
    g, mass = 0.3, 2.0e4
    gvp, gvn = {"nue": (0.0401, -0.5094), "numu": (0.0318, -0.5094)}[flavour]
    ql = model.lepton_charge(flavour)
    lep = {"nue": "ee", "numu": "mumu"}[flavour]
    eps = {f"{f}V_{lep}": g * g * ql * qf / (math.sqrt(2.0) * G_F * mass**2) for f, qf in (("u", model.q_u),
                                                                                             ("d", model.q_d))}
    q_sm = gvp * Z_CS * FZ + gvn * N_CS * FN
    shift = g * g * vector_shift_numerator(model, flavour, Q, Z_CS, N_CS, FZ, FN) / mass**2
    expected = (q_sm + shift) ** 2
    np.testing.assert_allclose(nsi_weak_charge_squared(flavour, eps, gvp, gvn, Z_CS, N_CS, FZ, FN), expected,
                               rtol=1e-10)
    if ql != 0.0:
        assert np.max(np.abs(shift / q_sm)) > 0.1  # the test is not trivially satisfied by a tiny shift
    # and the finite-mass shift tends to the contact one for M >> |q|
    finite = vector_shift(model, flavour, Q, mass, g, Z_CS, N_CS, FZ, FN)
    np.testing.assert_allclose(finite, shift, rtol=1e-4, atol=1e-300)


def test_vector_shift_massless_and_validation():
    c = vector_shift_numerator("B-L", "nue", Q[1:], Z_CS, N_CS, FZ[1:], FN[1:])
    np.testing.assert_allclose(vector_shift("B-L", "nue", Q[1:], 0.0, 1e-5, Z_CS, N_CS, FZ[1:], FN[1:]),
                               1e-10 * c / Q[1:] ** 2, rtol=1e-14)
    with pytest.raises(InputError, match="massless"):
        vector_shift("B-L", "nue", Q, 0.0, 1e-5, Z_CS, N_CS, FZ, FN)
    for mass, g in ((-1.0, 1e-5), (math.nan, 1e-5), (10.0, math.inf)):
        with pytest.raises(InputError):
            vector_shift("B-L", "nue", Q, mass, g, Z_CS, N_CS, FZ, FN)
    with pytest.raises(InputError, match="flavour"):
        vector_shift_numerator("B-L", "nusterile", Q, Z_CS, N_CS, FZ, FN)  # nutau is known since issue 11


# ---------------------------------------------------------------------------------------------------------------
# Vector NSI
# ---------------------------------------------------------------------------------------------------------------


def test_nsi_formula_with_off_diagonal_terms():
    eps = {"uV_ee": 0.1, "dV_ee": -0.05, "uV_emu": 0.02, "dV_taue": 0.03, "uV_mumu": 9.0}
    zf, nf = Z_CS * FZ, N_CS * FN
    diag = (0.0401 + 2 * 0.1 - 0.05) * zf + (-0.5094 + 0.1 - 2 * 0.05) * nf
    emu = 2 * 0.02 * zf + 0.02 * nf
    etau = 0.03 * zf + 2 * 0.03 * nf
    expected = diag**2 + emu**2 + etau**2
    np.testing.assert_allclose(nsi_weak_charge_squared("nue", eps, 0.0401, -0.5094, Z_CS, N_CS, FZ, FN), expected,
                               rtol=1e-14)
    # eps_mue = eps_emu enters nu_mu; order of the indices does not matter
    got_mu = nsi_weak_charge_squared("numubar", {"uV_mue": 0.02}, 0.0318, -0.5094, Z_CS, N_CS, FZ, FN)
    np.testing.assert_allclose(got_mu, (0.0318 * zf - 0.5094 * nf) ** 2 + emu**2, rtol=1e-14)
    # no NSI: SM
    np.testing.assert_allclose(nsi_weak_charge_squared("numu", {}, 0.0318, -0.5094, Z_CS, N_CS, FZ, FN),
                               (0.0318 * zf - 0.5094 * nf) ** 2, rtol=1e-14)


@pytest.mark.parametrize(
    "eps",
    [{"sV_ee": 0.1}, {"uA_ee": 0.1}, {"uV_ex": 0.1}, {"uV_e": 0.1}, {"uV_emu": 0.1, "uV_mue": 0.1},
     {"uV_ee": math.nan}, {1: 0.1}],
)
def test_nsi_rejects_bad_keys_and_values(eps):
    with pytest.raises(InputError):
        nsi_weak_charge_squared("nue", eps, 0.0401, -0.5094, Z_CS, N_CS, FZ, FN)


def test_models_dict_is_the_registry():
    assert set(MODELS) == set(models.model_names())
