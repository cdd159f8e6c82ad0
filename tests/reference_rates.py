"""Independent reference calculation of the Standard-Model CEvNS counts (CsI-2021 and LAr-2020).

This module is deliberately written *separately* from the package's fast path (``cevnsfit.response`` /
``cevnsfit.experiments``): it shares no grids, no spectral-moment tricks and no incomplete-gamma / error-function
shortcut for the detector response.  Only numerical parameter values are read from
``cevnsfit.parameters.DEFAULT`` and the COHERENT release files are read directly with ``numpy.loadtxt``.
Everything is computed by adaptive quadrature (``scipy.integrate.quad``) on scalar Python functions:

    N_{alpha,i} = N_target * Phi_alpha * sum_X  int dT'  B_i(T')  int_{E_min(T')}^{E_max} dE f_alpha(E) dsigma_X/dT'(E, T')

    B_i(T') = int_{bin i} dx eps(x) P(x | T')                      (reconstructed-energy bin i)

* CsI: x in PE, P = Gamma pdf (physics.md 8.4) of the quenched energy (8.3), eps = logistic efficiency clipped at 0
  (8.5).  The Gamma pdf times eps is integrated with quad (break point at the efficiency zero crossing).
* LAr: x in keVee, P = Gaussian of width 0.58 sqrt(E_ee) (9.3), E_ee = (0.246 + 7.8e-4 T') T', eps = linear
  interpolation of CENNS10AnlAEfficiency.txt (0 below the first node, DEFAULT["lar2020.efficiency_above_file"] above
  the last one).  quad with the interpolation nodes as break points.
* neutrino energy integral by quad over the analytic Michel spectra (own implementation); the prompt nu_mu line is a
  delta function at E_pi = (m_pi^2 - m_mu^2)/(2 m_pi).
* Helm form factor, cross section (physics.md 4, kinematic factor 1 - M T / (2 E^2), |q|^2 = 2 M T + T^2): own code.

The counts are integrated over *all* arrival times (no time efficiency).  Time fractions:

* :func:`lar_time_fractions` -- analytic LAr timing model (physics.md 6.4) evaluated by numerical convolution
  (Gaussian CDF integrated against the exponential delay densities with quad), fractions of the total.
* :func:`csi_time_fractions` -- snsFlux2D time projection (physics.md 6.3) times the bin-averaged eps_T (8.5),
  with the average computed by quad.

Light mediators (physics.md 10.2-10.4) enter through an optional hashable ``bsm`` tuple, written here from the
specification's formulas and not from the package's algebra:

* ``("vector", q_u, q_d, q_e, q_mu, q_tau, M, g)`` with quark charges: the Z' as flavour-diagonal vector NSI
  (10.2 into 10.1), eps^{qV}_ll = g^2 Q'_l Q'_q / (sqrt2 G_F (|q|^2 + M^2)) put into
  Q = (gVp + 2 eps^u + eps^d) Z F_Z + (gVn + eps^u + 2 eps^d) N F_N;
* the same tuple with q_u = q_d = 0 (only L_alpha - L_beta, i.e. one lepton charge +1 and one -1): AC22's loop
  formula (10.3), proton coupling gVp + sqrt2 alpha g^2 (delta_{l alpha} eps_{beta alpha} + delta_{l beta}
  eps_{alpha beta}) / (pi G_F (|q|^2 + M^2)), the vacuum-polarisation integral eps by quad;
* ``("scalar", M, g)``: dsigma_phi/dT = M_N^2 T / (4 pi E^2) g^4 (sigma_piN/m_ud)^2 [Z F_Z + N F_N]^2 / (|q|^2 + M^2)^2
  added to the vector cross section (10.4).

M = ``math.inf`` is the contact limit: g then stands for g/M in MeV^-1 and the propagator is 1.

Results are cached (``functools.lru_cache``) so that a test module can ask for the same numbers repeatedly.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import integrate, optimize, special

from cevnsfit.io.datadir import resolve_data_dir
from cevnsfit.parameters import DEFAULT

FLAVOURS = ("nue", "numu", "numubar")

# --------------------------------------------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------------------------------------------
G_F = DEFAULT["constants.G_F"]  # MeV^-2
HBARC = DEFAULT["constants.hbar_c"]  # MeV fm
HBARC2_CM2 = DEFAULT["constants.hbar_c2_cm2"]  # MeV^2 cm^2
M_MU = DEFAULT["constants.m_mu"]
M_PI = DEFAULT["constants.m_pi"]
N_A = DEFAULT["constants.N_A"]
TAU_PI_US = DEFAULT["constants.tau_pi"] / 1e3
TAU_MU_US = DEFAULT["constants.tau_mu"] / 1e3
E_PI = (M_PI**2 - M_MU**2) / (2.0 * M_PI)  # prompt nu_mu energy, 29.792 MeV
E_MAX_MICHEL = M_MU / 2.0
HELM_S = DEFAULT["form_factor.helm_s"]  # fm

GVP = {"nue": DEFAULT["couplings.gVp_nue"], "numu": DEFAULT["couplings.gVp_numu"],
       "numubar": DEFAULT["couplings.gVp_numu"]}  # nu_mu-bar uses the nu_mu vector couplings
GVN = DEFAULT["couplings.gVn"]
ALPHA = DEFAULT["constants.alpha"]
LEPTON_MASS = {"e": DEFAULT["constants.m_e"], "mu": DEFAULT["constants.m_mu"], "tau": DEFAULT["constants.m_tau"]}
FLAVOUR_LEPTON = {"nue": "e", "numu": "mu", "numubar": "mu"}
SIGMA_PIN_OVER_MUD = DEFAULT["scalar.sigma_piN_over_mud"]

CSI_PE_EDGES = (0.0, 8.0, 12.0, 16.0, 20.0, 24.0, 32.0, 40.0, 50.0, 60.0)
CSI_T_EDGES_US = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0, 2.0, 4.0, 6.0)
LAR_E_EDGES = tuple(10.0 * k for k in range(13))  # keVee
LAR_T_EDGES_US = tuple(-0.1 + 0.5 * k for k in range(11))

_EPSREL = 1e-8


class Nucleus:
    """Z, N, nuclear mass M [MeV] and point-proton / point-neutron rms radii [fm] from DEFAULT."""

    def __init__(self, name: str):
        self.name = name
        self.Z = int(DEFAULT[f"nuclei.{name}.Z"])
        self.N = int(DEFAULT[f"nuclei.{name}.N"])
        self.M = float(DEFAULT[f"nuclei.{name}.mass"])
        self.Rp = float(DEFAULT[f"nuclei.{name}.R_p"])
        self.Rn = float(DEFAULT[f"nuclei.{name}.R_n"])

    def t_max(self, e_nu: float) -> float:
        return 2.0 * e_nu**2 / (self.M + 2.0 * e_nu)

    def e_min(self, t: float) -> float:
        return 0.5 * (t + math.sqrt(t * t + 2.0 * self.M * t))


# --------------------------------------------------------------------------------------------------------------
# cross section
# --------------------------------------------------------------------------------------------------------------
def helm(q_fm: float, r_rms: float, s: float = HELM_S) -> float:
    """Helm form factor 3 j1(q R0)/(q R0) exp(-q^2 s^2/2), R0^2 = 5/3 (R^2 - 3 s^2)."""
    r0 = math.sqrt(5.0 / 3.0 * (r_rms * r_rms - 3.0 * s * s))
    x = q_fm * r0
    if x < 1e-3:
        f = 1.0 - x * x / 10.0 + x**4 / 280.0
    else:
        # j1(x) = sin x / x^2 - cos x / x
        f = 3.0 * (math.sin(x) - x * math.cos(x)) / x**3
    return f * math.exp(-0.5 * (q_fm * s) ** 2)


def weak_charge(t: float, nuc: Nucleus, flavour: str, bsm: tuple | None = None) -> float:
    """Weak charge of the vector cross section at recoil t [MeV], SM or with a vector mediator ``bsm``."""
    q_mev = math.sqrt(2.0 * nuc.M * t + t * t)
    fz, fn = helm(q_mev / HBARC, nuc.Rp), helm(q_mev / HBARC, nuc.Rn)
    gvp, gvn = GVP[flavour], GVN
    if bsm is not None and bsm[0] == "vector":
        _, qu, qd, qe, qmu, qtau, mass, g = bsm
        prop = 1.0 if math.isinf(mass) else 1.0 / (q_mev * q_mev + mass * mass)
        lepton = FLAVOUR_LEPTON[flavour]
        if qu or qd:  # tree level: flavour-diagonal vector NSI
            q_lep = {"e": qe, "mu": qmu}[lepton]
            eps_u = g * g * q_lep * qu * prop / (math.sqrt(2.0) * G_F)
            eps_d = g * g * q_lep * qd * prop / (math.sqrt(2.0) * G_F)
            gvp, gvn = gvp + 2.0 * eps_u + eps_d, gvn + eps_u + 2.0 * eps_d
        else:  # L_alpha - L_beta through gamma-Z' mixing (AC22)
            charges = {"e": qe, "mu": qmu, "tau": qtau}
            alpha_l = [f for f, c in charges.items() if c == 1.0]
            beta_l = [f for f, c in charges.items() if c == -1.0]
            assert len(alpha_l) == 1 and len(beta_l) == 1 and sum(map(abs, charges.values())) == 2.0, bsm
            a, b = alpha_l[0], beta_l[0]
            mix = 0.0
            if lepton == a:
                mix = loop_eps(b, a, q_mev)
            elif lepton == b:
                mix = loop_eps(a, b, q_mev)
            gvp = gvp + math.sqrt(2.0) * ALPHA * g * g * mix * prop / (math.pi * G_F)
    return gvp * nuc.Z * fz + gvn * nuc.N * fn


@lru_cache(maxsize=None)
def loop_eps(beta: str, alpha: str, q_mev: float) -> float:
    """eps_{beta alpha}(|q|) = int_0^1 x(1-x) ln[(m_b^2 + x(1-x) q^2) / (m_a^2 + x(1-x) q^2)] dx by quad."""
    mb2, ma2, q2 = LEPTON_MASS[beta] ** 2, LEPTON_MASS[alpha] ** 2, q_mev * q_mev

    def f(x: float) -> float:
        y = x * (1.0 - x)
        return y * math.log((mb2 + y * q2) / (ma2 + y * q2))

    return integrate.quad(f, 0.0, 1.0, epsabs=1e-15, epsrel=1e-12, limit=200)[0]


def scalar_dsigma_dt(e_nu: float, t: float, nuc: Nucleus, mass: float, g: float) -> float:
    """Light-scalar cross section in cm^2/MeV (physics.md 10.4)."""
    q2 = 2.0 * nuc.M * t + t * t
    q_fm = math.sqrt(q2) / HBARC
    coh = SIGMA_PIN_OVER_MUD * (nuc.Z * helm(q_fm, nuc.Rp) + nuc.N * helm(q_fm, nuc.Rn))
    prop = 1.0 if math.isinf(mass) else 1.0 / (q2 + mass * mass)
    return nuc.M**2 * t / (4.0 * math.pi * e_nu * e_nu) * g**4 * coh * coh * prop * prop * HBARC2_CM2


def dsigma_dt(e_nu: float, t: float, nuc: Nucleus, flavour: str, bsm: tuple | None = None) -> float:
    """CEvNS cross section in cm^2/MeV (physics.md 4, AC22 kinematic factor clipped at 0; 10.2-10.4 with ``bsm``)."""
    if t > nuc.t_max(e_nu):
        return 0.0
    kin = 1.0 - nuc.M * t / (2.0 * e_nu * e_nu)
    vec = G_F**2 * nuc.M / math.pi * max(kin, 0.0) * weak_charge(t, nuc, flavour, bsm) ** 2 * HBARC2_CM2
    if bsm is not None and bsm[0] == "scalar":
        vec += scalar_dsigma_dt(e_nu, t, nuc, bsm[1], bsm[2])
    return vec


def michel(e_nu: float, flavour: str) -> float:
    """Per-decay energy spectra of the delayed flavours [MeV^-1], normalised to 1 on [0, m_mu/2]."""
    if e_nu < 0.0 or e_nu > E_MAX_MICHEL:
        return 0.0
    y = e_nu / M_MU
    if flavour == "nue":
        return 192.0 / M_MU * y * y * (0.5 - y)
    if flavour == "numubar":
        return 64.0 / M_MU * y * y * (0.75 - y)
    raise ValueError(flavour)


def folded_xsec(t: float, nuc: Nucleus, flavour: str, bsm: tuple | None = None) -> float:
    """int dE f_alpha(E) dsigma/dT(E, T) [cm^2/MeV per neutrino], E from E_min(T) to the end point."""
    if flavour == "numu":  # monochromatic line
        return dsigma_dt(E_PI, t, nuc, flavour, bsm) if nuc.e_min(t) < E_PI else 0.0
    e_lo = nuc.e_min(t)
    if e_lo >= E_MAX_MICHEL:
        return 0.0
    val, _ = integrate.quad(lambda e: michel(e, flavour) * dsigma_dt(e, t, nuc, flavour, bsm), e_lo, E_MAX_MICHEL,
                            epsabs=0.0, epsrel=1e-10, limit=50)
    return val


def t_max_flavour(nuc: Nucleus, flavour: str) -> float:
    return nuc.t_max(E_PI if flavour == "numu" else E_MAX_MICHEL)


def fluence(experiment: str) -> float:
    """Neutrinos per flavour per cm^2: r N_POT / (4 pi L^2)."""
    key = {"csi": "csi2021", "lar": "lar2020"}[experiment]
    l_cm = DEFAULT[f"{key}.baseline"] * 100.0
    return DEFAULT[f"{key}.nu_per_flavour_per_pot"] * DEFAULT[f"{key}.pot"] / (4.0 * math.pi * l_cm**2)


def n_targets(experiment: str) -> float:
    """Number of CsI molecules (one Cs + one I each) or of Ar atoms (all Ar40)."""
    key = {"csi": "csi2021", "lar": "lar2020"}[experiment]
    return DEFAULT[f"{key}.mass_kg"] * 1e3 / DEFAULT[f"{key}.molar_mass_g_per_mol"] * N_A


# --------------------------------------------------------------------------------------------------------------
# release files (read directly)
# --------------------------------------------------------------------------------------------------------------
def _data_dir() -> Path:
    return resolve_data_dir()


def _coefficient_rows(path: Path) -> list[list[float]]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append([float(v) for v in line.split()])
    return rows


@lru_cache(maxsize=None)
def csi_quenching() -> tuple[float, float, float, float]:
    """Nominal quenching coefficients (E_ee[MeVee] = a x + b x^2 + c x^3 + d x^4, x in MeVnr)."""
    return tuple(_coefficient_rows(_data_dir() / "csi2021/scintRespCoefficients.txt")[0])


@lru_cache(maxsize=None)
def csi_efficiency() -> tuple[float, float, float, float]:
    """Nominal efficiency coefficients (a, k, x0, d): eps(x) = a / (1 + exp(-k (x - x0))) + d."""
    return tuple(_coefficient_rows(_data_dir() / "csi2021/effCoefficients.txt")[0])


@lru_cache(maxsize=None)
def lar_efficiency_table() -> tuple[np.ndarray, np.ndarray]:
    tab = np.loadtxt(_data_dir() / "lar2020/CENNS10AnlAEfficiency.txt")
    return tab[:, 0].copy(), tab[:, 2].copy()


# --------------------------------------------------------------------------------------------------------------
# CsI[Na] response
# --------------------------------------------------------------------------------------------------------------
def csi_eee_kev(t_mev: float) -> float:
    a, b, c, d = csi_quenching()
    return 1e3 * (a * t_mev + b * t_mev**2 + c * t_mev**3 + d * t_mev**4)


def csi_eps(x: float) -> float:
    a, k, x0, d = csi_efficiency()
    return max(0.0, a / (1.0 + math.exp(-k * (x - x0))) + d)


@lru_cache(maxsize=None)
def csi_eps_zero() -> float:
    """PE value where the efficiency crosses zero (clipped below)."""
    a, k, x0, d = csi_efficiency()
    return x0 - math.log(a / (-d) - 1.0) / k


def csi_gamma_pdf(x: float, e_ee_kev: float) -> float:
    """P(x | E_ee) = [a(1+b)]^(1+b)/Gamma(1+b) x^b exp(-a(1+b)x), a = 0.0749/E_ee, b = 9.56 E_ee."""
    if x <= 0.0:
        return 0.0
    a = DEFAULT["csi2021.resolution_a"] / e_ee_kev
    b = DEFAULT["csi2021.resolution_b"] * e_ee_kev
    rate = a * (1.0 + b)
    logp = (1.0 + b) * math.log(rate) + b * math.log(x) - rate * x - math.lgamma(1.0 + b)
    return math.exp(logp)


@lru_cache(maxsize=None)
def csi_bin_response(lo: float, hi: float, t_mev: float) -> float:
    """B(T') = int_lo^hi dx eps(x) P(x | E_ee(T')) by quad."""
    e_ee = csi_eee_kev(t_mev)
    if e_ee <= 1e-9:
        return 0.0
    lo = max(lo, csi_eps_zero())
    if hi <= lo:
        return 0.0
    mean = e_ee / DEFAULT["csi2021.resolution_a"]
    pts = [p for p in (mean,) if lo < p < hi]
    val, _ = integrate.quad(lambda x: csi_eps(x) * csi_gamma_pdf(x, e_ee), lo, hi, points=pts or None,
                            epsabs=1e-14, epsrel=1e-10, limit=200)
    return val


def _csi_recoil_for_pe(pe: float) -> float:
    """T' [MeV] whose mean PE equals pe (break point for the outer integral)."""
    target = pe * DEFAULT["csi2021.resolution_a"]  # keVee
    return optimize.brentq(lambda t: csi_eee_kev(t) - target, 0.0, 0.1, xtol=1e-14)


# --------------------------------------------------------------------------------------------------------------
# LAr response
# --------------------------------------------------------------------------------------------------------------
def lar_eee_kev(t_kev: float) -> float:
    return (DEFAULT["lar2020.qf_a"] + DEFAULT["lar2020.qf_b"] * t_kev) * t_kev


def lar_eps(x: float) -> float:
    xs, eff = lar_efficiency_table()
    if x < xs[0]:
        return float(eff[0])  # held at the first node (0 in the file)
    if x > xs[-1]:
        return DEFAULT["lar2020.efficiency_above_file"]
    j = min(int(np.searchsorted(xs, x, side="right")) - 1, len(xs) - 2)
    w = (x - xs[j]) / (xs[j + 1] - xs[j])
    return float(eff[j] + w * (eff[j + 1] - eff[j]))


@lru_cache(maxsize=None)
def lar_bin_response(lo: float, hi: float, t_kev: float) -> float:
    """B(T') = int_lo^hi dx eps(x) Gauss(x; E_ee, 0.58 sqrt(E_ee)) by quad (nodes as break points)."""
    e_ee = lar_eee_kev(t_kev)
    if e_ee <= 0.0:
        return 0.0
    sig = DEFAULT["lar2020.resolution_a"] * math.sqrt(e_ee)
    a, b = max(lo, e_ee - 12.0 * sig), min(hi, e_ee + 12.0 * sig)  # outside: < 1e-32 of the pdf
    if b <= a:
        return 0.0
    xs, _ = lar_efficiency_table()
    pts = [float(p) for p in xs if a < p < b]
    if a < e_ee < b:
        pts.append(e_ee)
    norm = 1.0 / (sig * math.sqrt(2.0 * math.pi))

    def f(x: float) -> float:
        z = (x - e_ee) / sig
        return lar_eps(x) * norm * math.exp(-0.5 * z * z)

    val, _ = integrate.quad(f, a, b, points=sorted(pts) or None, epsabs=1e-14, epsrel=1e-10, limit=400)
    return val


def _lar_recoil_for_eee(eee: float) -> float:
    qa, qb = DEFAULT["lar2020.qf_a"], DEFAULT["lar2020.qf_b"]
    return (-qa + math.sqrt(qa * qa + 4.0 * qb * eee)) / (2.0 * qb)


# --------------------------------------------------------------------------------------------------------------
# counts per reconstructed-energy bin (all arrival times, no time efficiency)
# --------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def csi_counts(lo: float, hi: float, flavour: str, bsm: tuple | None = None) -> float:
    """Predicted CEvNS counts (Cs + I) with lo <= PE < hi, integrated over all arrival times (SM or ``bsm``)."""
    total = 0.0
    for name in ("Cs133", "I127"):
        nuc = Nucleus(name)
        tmax = t_max_flavour(nuc, flavour)
        pts = []
        for pe in (lo, hi, max(lo, csi_eps_zero())):
            if pe > 0:
                t = _csi_recoil_for_pe(pe)
                if 0.0 < t < tmax:
                    pts.append(t)
        val, _ = integrate.quad(lambda t: csi_bin_response(lo, hi, t) * folded_xsec(t, nuc, flavour, bsm),
                                0.0, tmax, points=sorted(set(pts)) or None, epsabs=0.0, epsrel=1e-7, limit=200)
        total += val
    return n_targets("csi") * fluence("csi") * total


@lru_cache(maxsize=None)
def lar_counts(lo: float, hi: float, flavour: str, bsm: tuple | None = None) -> float:
    """Predicted CEvNS counts (all Ar40) with lo <= E_ee[keVee] < hi, all arrival times (SM or ``bsm``)."""
    nuc = Nucleus("Ar40")
    tmax_kev = 1e3 * t_max_flavour(nuc, flavour)
    pts = [t for t in (_lar_recoil_for_eee(e) for e in (lo, hi, 0.25, 5.0)) if 0.0 < t < tmax_kev]
    val, _ = integrate.quad(lambda tk: lar_bin_response(lo, hi, tk) * folded_xsec(tk * 1e-3, nuc, flavour, bsm),
                            0.0, tmax_kev, points=sorted(set(pts)) or None, epsabs=0.0, epsrel=1e-7, limit=200)
    # the integration variable is T' in keV: dT'[MeV] = 1e-3 dT'[keV]
    return n_targets("lar") * fluence("lar") * val * 1e-3


# --------------------------------------------------------------------------------------------------------------
# time fractions
# --------------------------------------------------------------------------------------------------------------
def _gauss_in(a: float, b: float, mu: float, sig: float) -> float:
    return float(special.ndtr((b - mu) / sig) - special.ndtr((a - mu) / sig))


@lru_cache(maxsize=None)
def lar_time_fractions(flavour: str, mu_us: float | None = None, sigma_us: float | None = None) -> np.ndarray:
    """Fraction of all arrivals in each LAr time bin (edges -0.1 + 0.5 k us) for the analytic model of physics.md 6.4.

    prompt: Gauss(mu, sigma) (x) Exp(tau_pi);  delayed: prompt (x) Exp(tau_mu).  The convolutions are done by quad
    over the exponential delays (the Gaussian is integrated over the bin through its CDF).
    """
    mu = DEFAULT["lar2020.pot_trace_mean"] / 1e3 if mu_us is None else mu_us
    sig = DEFAULT["lar2020.pot_trace_width"] / 1e3 if sigma_us is None else sigma_us
    out = []
    for a, b in zip(LAR_T_EDGES_US[:-1], LAR_T_EDGES_US[1:]):
        def prompt(s_pi: float, shift: float = 0.0) -> float:
            return math.exp(-s_pi / TAU_PI_US) / TAU_PI_US * _gauss_in(a, b, mu + s_pi + shift, sig)

        if flavour == "numu":
            val, _ = integrate.quad(prompt, 0.0, 60.0 * TAU_PI_US, epsabs=1e-13, epsrel=1e-10, limit=200,
                                    points=[max(0.0, a - mu), max(0.0, b - mu)])
        else:
            def inner(s_mu: float) -> float:
                v, _ = integrate.quad(prompt, 0.0, 60.0 * TAU_PI_US, args=(s_mu,), epsabs=1e-13, epsrel=1e-10,
                                      limit=200)
                return math.exp(-s_mu / TAU_MU_US) / TAU_MU_US * v

            val, _ = integrate.quad(inner, 0.0, 40.0 * TAU_MU_US, epsabs=1e-12, epsrel=1e-9, limit=200,
                                    points=[max(0.0, a - mu), max(0.0, b - mu)])
        out.append(val)
    return np.array(out)


@lru_cache(maxsize=None)
def csi_time_fractions(flavour: str) -> np.ndarray:
    """CsI analysis-bin fractions: snsFlux2D time projection (renormalised on 0-15 us) x bin-averaged eps_T."""
    path = _data_dir() / "flux/snsFlux2D_derived_BarbeauGroup/rebin125ns_2D/flux_dict_converted.npz"
    key = {"nue": "nuE", "numu": "nuMu", "numubar": "nuMuBar"}[flavour]
    with np.load(path) as g:
        edges_us = np.asarray(g["t_edges_ns"], float) / 1e3
        proj = np.asarray(g[key], float).sum(axis=1)
    proj = proj / proj.sum()
    t0, slope = DEFAULT["csi2021.time_eff_t0"], DEFAULT["csi2021.time_eff_decay"]

    def eps_t(t: float) -> float:
        return 1.0 if t < t0 else math.exp(-slope * (t - t0))

    out = np.zeros(len(CSI_T_EDGES_US) - 1)
    for k in range(len(proj)):
        a, b = edges_us[k], edges_us[k + 1]
        centre = 0.5 * (a + b)
        j = int(np.searchsorted(CSI_T_EDGES_US, centre)) - 1
        if not 0 <= j < len(out):
            continue
        pts = [t0] if a < t0 < b else None
        mean_eps = integrate.quad(eps_t, a, b, points=pts, epsabs=1e-14, epsrel=1e-12)[0] / (b - a)
        out[j] += proj[k] * mean_eps
    return out
