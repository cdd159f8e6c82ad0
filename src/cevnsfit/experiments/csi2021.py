"""COHERENT CsI[Na], full data set (2021 release): arXiv:2110.07730, PRL 129 (2022) 081801.

Analysis region 0 <= PE < 60, 0 <= t_rec < 6 us in 9 x 11 (PE x time) bins; Poisson chi^2 with four pulls
(physics specification section 8).  Detector response:

* quenching  E_ee [MeVee] = a x + b x^2 + c x^3 + d x^4, x = T' [MeVnr] (``scintRespCoefficients.txt``);
* light yield 13.35 PE/keVee and Gamma-distributed PE with shape 1 + b, rate a (1 + b), a = 0.0749/E_ee,
  b = 9.56 E_ee (E_ee in keVee);
* PE efficiency eps_E(x) = a/(1 + exp(-k (x - x0))) + d, clipped at 0 (``effCoefficients.txt``), applied to the
  reconstructed PE;
* time efficiency eps_T(t) = 1 for t < 0.52 us, exp(-0.0494/us (t - 0.52 us)) after, applied to the arrival time
  of CEvNS, BRN and NIN (not to the steady-state background, which is measured).

Backgrounds: beam-related (BRN) and neutrino-induced (NIN) neutrons from the release shapes, steady state (SS)
from the anti-coincidence sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.special import gammainc, gammaln, xlogy

from ..errors import DataError, InputError
from ..io.datadir import read_npz, read_table, require_file
from ..io.validate import require_non_negative, require_uniform_centres
from ..parameters import DEFAULT, Parameters
from ..physics.nuclei import get_nucleus
from ..response import Target
from ..sources.sns import SNSSource
from ..sources.spectra import BinnedSpectrum, pion_line_energy_mev
from ..sources.timing import AnalyticTiming, GridTiming
from ..stats.chi2 import PoissonChi2
from .common import Experiment, PhysicsOptions, bin_events, logistic_efficiency, polynomial_quenching_kevee

NAME = "csi"
LABEL = "CsI[Na] 2021"
PE_EDGES = (0.0, 8.0, 12.0, 16.0, 20.0, 24.0, 32.0, 40.0, 50.0, 60.0)
T_EDGES_US = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0, 2.0, 4.0, 6.0)
COMPONENTS = ("cevns", "brn", "nin", "ss")

FILES = {
    "coincidence": "csi2021/dataBeamOnC.txt",
    "anticoincidence": "csi2021/dataBeamOnAC.txt",
    "brn_pe": "csi2021/brnPE.txt",
    "brn_t": "csi2021/brnTrec.txt",
    "nin_pe": "csi2021/ninPE.txt",
    "nin_t": "csi2021/ninTrec.txt",
    "efficiency": "csi2021/effCoefficients.txt",
    "quenching": "csi2021/scintRespCoefficients.txt",
    "flux_grid": "flux/snsFlux2D_derived_BarbeauGroup/rebin125ns_2D/flux_dict_converted.npz",
}
QUENCHING_VARIANTS = ("nominal", "model0+", "model0-", "model1+", "model1-")  # row order in the file
EFFICIENCY_VARIANTS = ("nominal", "sys1", "sys2")  # the two 1-sigma sets of effCoefficients.txt
FLUX_MODELS = ("grid_time_analytic_energy", "grid2d", "analytic")


@dataclass(frozen=True)
class CsIOptions(PhysicsOptions):
    """Analysis choices (physics specification section 14); defaults reproduce the AC22 set-up as documented."""

    quenching: str = "nominal"
    efficiency: str = "nominal"
    flux_model: str = "grid_time_analytic_energy"
    t_edges_us: tuple = T_EDGES_US
    pe_edges: tuple = PE_EDGES
    pe_node_step: float = 0.1
    brn_nin_norm: str = "before_time_efficiency"  # or "after_time_efficiency"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value, allowed in (
            ("quenching", self.quenching, QUENCHING_VARIANTS),
            ("efficiency", self.efficiency, EFFICIENCY_VARIANTS),
            ("flux_model", self.flux_model, FLUX_MODELS),
            ("brn_nin_norm", self.brn_nin_norm, ("before_time_efficiency", "after_time_efficiency")),
        ):
            if value not in allowed:
                raise InputError(f"CsI option {name}='{value}' is not one of {', '.join(allowed)}")
        for name, edges in (("t_edges_us", self.t_edges_us), ("pe_edges", self.pe_edges)):
            e = np.asarray(edges, dtype=float)
            if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
                raise InputError(f"CsI option {name} must be increasing finite bin edges")
        if not 0 < self.pe_node_step <= 0.5:
            raise InputError("CsI pe_node_step must be in (0, 0.5] PE")


def _coefficient_rows(path: Path, expected_rows: int) -> np.ndarray:
    table = read_table(path, ncols=4, min_rows=expected_rows)
    if table.shape[0] != expected_rows:
        raise DataError(f"{path}: {table.shape[0]} coefficient rows, expected {expected_rows}")
    return table


def time_efficiency(t_us: np.ndarray, params: Parameters = DEFAULT) -> np.ndarray:
    """eps_T(t): 1 before 0.52 us, then exp(-0.0494/us (t - 0.52 us)); t = arrival time in us."""
    t0, k = params["csi2021.time_eff_t0"], params["csi2021.time_eff_decay"]
    t = np.asarray(t_us, dtype=float)
    return np.where(t < t0, 1.0, np.exp(-k * (t - t0)))


def pe_efficiency(pe: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """eps_E(x) = a/(1 + exp(-k (x - x0))) + d at reconstructed PE x, clipped at 0 (coefficients: a k x0 d)."""
    a, k, x0, d = coeffs
    return logistic_efficiency(pe, a, k, x0, d)


def efficiency_zero_pe(coeffs: np.ndarray) -> float:
    """PE where a/(1 + exp(-k (x - x0))) + d crosses zero (7.07 PE for the nominal set), or -inf if never."""
    a, k, x0, d = coeffs
    if d >= 0 or a + d <= 0:
        return -np.inf
    return float(x0 - np.log(a / (-d) - 1.0) / k)


def pe_response_matrix(
    e_ee_kevee: np.ndarray,
    pe_edges: np.ndarray,
    eff_coeffs: np.ndarray,
    light_yield: float,
    res_a: float,
    res_b: float,
    node_step: float,
) -> np.ndarray:
    """P(reconstructed PE in bin i and accepted | E_ee), shape (n_bins, n_energies).

    The Gamma PE distribution (shape k = 1 + b E, scale theta = 1 / (a(1 + b)) with a = res_a / E) is integrated
    exactly against eps_E interpolated linearly on nodes ``node_step`` PE apart, using
    int x g_k(x) dx = k theta [P(k+1, x/theta)] (regularised incomplete gamma P).  The mean PE is
    light_yield * E: the release's a = 0.0749 equals 1/13.35 keVee/PE.  Each column depends on its own energy only.
    """
    e = np.maximum(np.asarray(e_ee_kevee, dtype=float), 1e-9)
    k = 1.0 + res_b * e
    theta = 1.0 / ((res_a / e) * k)
    if not np.isclose(res_a * light_yield, 1.0, rtol=1e-3):
        # the resolution model fixes the mean at 1/a: rescale so that the mean PE is light_yield * E_ee
        theta = theta * res_a * light_yield
    edges = np.asarray(pe_edges, dtype=float)
    kink = efficiency_zero_pe(eff_coeffs)
    bins = []  # per bin: its nodes
    for lo, hi in zip(edges[:-1], edges[1:]):
        n = max(int(np.ceil((hi - lo) / node_step)), 1)
        nodes = np.linspace(lo, hi, n + 1)
        if lo < kink < hi:  # the clipped efficiency has a kink there: make it a node (else +0.3 % in [0, 8) PE)
            nodes = np.unique(np.append(nodes, kink))
        bins.append(nodes)
    # P(k, z) at every node of every bin at once (a bin edge is a node of both bins: evaluated once), and
    # P(k+1, z) = P(k, z) - z^k e^-z / Gamma(k+1) (DLMF 8.8.5) instead of a second incomplete gamma: the
    # incomplete gammas are nearly all of the cost (~0.7 s per CsI nucleus for the two)
    all_nodes, where = np.unique(np.concatenate(bins), return_inverse=True)
    z = all_nodes[:, None] / theta[None, :]
    p0 = gammainc(k[None, :], z)
    with np.errstate(divide="ignore"):  # z = 0: z^k = 0 for k >= 1
        term = xlogy(k, z)  # in place from here: 4x faster than the expression's temporaries
        term -= z
        term -= gammaln(k + 1.0)
        p1 = p0 - np.exp(term, out=term)
    out = np.zeros((edges.size - 1, e.size))
    start = 0
    for i, nodes in enumerate(bins):
        rows = where[start:start + nodes.size]
        start += nodes.size
        eff = pe_efficiency(nodes, eff_coeffs)
        slope = np.diff(eff) / np.diff(nodes)
        icpt = eff[:-1] - slope * nodes[:-1]
        out[i] = (icpt[:, None] * np.diff(p0[rows], axis=0)
                  + slope[:, None] * (k * theta)[None, :] * np.diff(p1[rows], axis=0)).sum(axis=0)
    return out


@lru_cache(maxsize=8)
def _pe_response_cached(e_ee: bytes, pe_edges: bytes, eff_coeffs: bytes, light_yield: float, res_a: float,
                        res_b: float, node_step: float) -> np.ndarray:
    """:func:`pe_response_matrix` memoised on its inputs (arrays as float64 bytes), read-only.  The PE response is
    the costliest part of a CsI kernel (~0.4 s per nucleus; Cs and I each have theirs: their recoil grids differ) and
    does not depend on the nuclear radii, couplings or flux: a kernel at other such parameters (a fit of R_n, say)
    reuses it."""
    out = pe_response_matrix(np.frombuffer(e_ee), np.frombuffer(pe_edges), np.frombuffer(eff_coeffs), light_yield,
                             res_a, res_b, node_step)
    out.setflags(write=False)
    return out


def _binned_pdf(path: Path, edges) -> np.ndarray:
    """Sum of a 1-PE-bin spectrum file into analysis PE bins (bin centres decide membership)."""
    table, lines = read_table(path, ncols=2, min_rows=60, with_lines=True)
    centres, values = table[:, 0], table[:, 1]
    require_uniform_centres(path, centres, lines, "PE bin centre")
    require_non_negative(path, values, lines, "content")
    idx = np.searchsorted(np.asarray(edges, float), centres, side="right") - 1
    out = np.zeros(len(edges) - 1)
    ok = (idx >= 0) & (idx < len(edges) - 1)
    np.add.at(out, idx[ok], values[ok])
    return out


def _time_pdf(path: Path, t_edges_us, roi_us: tuple[float, float], params: Parameters) -> np.ndarray:
    """Fraction per analysis time bin of a 10-ns t_rec density file, times eps_T, over its unweighted ROI sum."""
    table, lines = read_table(path, ncols=2, min_rows=600, with_lines=True)
    centres, dens = table[:, 0], table[:, 1]
    require_uniform_centres(path, centres, lines, "time bin centre")
    require_non_negative(path, dens, lines, "density")
    width = np.median(np.diff(centres))
    edges = np.concatenate([centres - 0.5 * width, [centres[-1] + 0.5 * width]])
    hist = GridTiming(edges, {"pdf": dens})
    roi = hist.bin_fractions("pdf", np.asarray(roi_us))[0]
    if roi <= 0:
        raise DataError(f"{path}: no content in the region {roi_us} us")
    return hist.bin_fractions("pdf", t_edges_us, lambda t: time_efficiency(t, params)) / roi


class CsI2021(Experiment):
    """The CsI[Na] 2021 data set: observed counts, backgrounds, response kernel and chi^2 ingredients."""

    name = NAME
    label = LABEL
    components = COMPONENTS
    section = "csi2021"
    files = FILES
    options_class = CsIOptions

    # ---- data -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        o, p = self.options, self.params
        pe_edges, t_edges = np.asarray(o.pe_edges, float), np.asarray(o.t_edges_us, float)
        events = {}
        for key in ("coincidence", "anticoincidence"):
            # columns: reconstructed PE and arrival time after the POT trigger (us); both are non-negative.  (A swap
            # of the two is not detectable: both ranges overlap.)
            table, lines = read_table(self.paths[key], ncols=2, min_rows=1000, with_lines=True)
            require_non_negative(self.paths[key], table[:, 0], lines, "PE")
            require_non_negative(self.paths[key], table[:, 1], lines, "time")
            events[key] = table
        c, ac = events["coincidence"], events["anticoincidence"]
        self.observed = bin_events(c[:, 0], c[:, 1], pe_edges, t_edges)
        ss = bin_events(ac[:, 0], ac[:, 1], pe_edges, t_edges)
        self.quenching_coeffs = _coefficient_rows(self.paths["quenching"], 5)[QUENCHING_VARIANTS.index(o.quenching)]
        self.efficiency_coeffs = _coefficient_rows(self.paths["efficiency"], 3)[EFFICIENCY_VARIANTS.index(o.efficiency)]
        roi = (t_edges[0], t_edges[-1])
        backgrounds = {"ss": ss}
        for z in ("brn", "nin"):
            pe = _binned_pdf(self.paths[f"{z}_pe"], pe_edges)
            t = _time_pdf(self.paths[f"{z}_t"], t_edges, roi, p)
            norm = p[f"csi2021.n_{z}"]
            if o.brn_nin_norm == "after_time_efficiency":
                norm = norm / t.sum()
            backgrounds[z] = norm * np.outer(pe / pe.sum(), t)
        self.backgrounds = backgrounds
        require_file(self.paths["flux_grid"])

    energy_label = "energy [PE]"
    energy_unit = "PE"

    @property
    def energy_edges(self) -> np.ndarray:
        return np.asarray(self.options.pe_edges, float)

    @property
    def time_edges_us(self) -> np.ndarray:
        return np.asarray(self.options.t_edges_us, float)

    @property
    def ss_variance(self) -> np.ndarray:
        """Variance of the steady-state estimate per bin: the AC sample has the same exposure as the C sample."""
        return self.backgrounds["ss"]

    # ---- response --------------------------------------------------------------------------------------
    def source(self) -> SNSSource:
        src = super().source()
        if self.options.flux_model != "grid2d":
            return src
        keys = {"nue": "nuE", "numu": "nuMu", "numubar": "nuMuBar"}
        grid = read_npz(self.paths["flux_grid"], ("E_bin_label_MeV", *keys.values()))
        labels = grid["E_bin_label_MeV"]
        spectra = {}
        for f, key in keys.items():
            w = grid[key].sum(axis=0)
            if w.shape != labels.shape or not np.all(np.isfinite(w)) or w.sum() <= 0:
                raise DataError(f"flux grid {self.paths['flux_grid']}: {key} does not match E_bin_label_MeV")
            w = w / w.sum()
            centres = labels.copy()
            if f == "numu":  # the pion line sits in label 30 at bin centre 30.0: move it to E_pi
                centres[np.argmin(np.abs(labels - 30.0))] = pion_line_energy_mev(self.params)
            spectra[f] = BinnedSpectrum(centres, w)
        return SNSSource(src.fluence_per_cm2, spectra)

    def timing(self):
        if self.options.flux_model == "analytic":
            return AnalyticTiming.from_parameters(
                self.params["csi2021.mu_t_analytic"], self.params["lar2020.pot_trace_width"], self.params
            )
        return GridTiming.from_npz(self.paths["flux_grid"], offset_ns=self.params["csi2021.nu_time_offset"])

    def targets(self) -> dict:
        p = self.params
        molecules = p["csi2021.mass_kg"] * 1e3 / p["csi2021.molar_mass_g_per_mol"] * p["constants.N_A"]
        return {n: Target(get_nucleus(n, p), molecules) for n in ("Cs133", "I127")}

    def recoil_response(self, nucleus: str, recoil_mev: np.ndarray) -> np.ndarray:
        """P(PE bin, accepted | recoil): quenching, Gamma-distributed PE, PE efficiency."""
        o, p = self.options, self.params

        def raw(a) -> bytes:
            return np.ascontiguousarray(a, dtype=float).ravel().tobytes()

        return _pe_response_cached(raw(polynomial_quenching_kevee(recoil_mev, self.quenching_coeffs)), raw(o.pe_edges),
                                   raw(self.efficiency_coeffs), float(p["csi2021.light_yield_pe_per_kevee"]),
                                   float(p["csi2021.resolution_a"]), float(p["csi2021.resolution_b"]),
                                   float(o.pe_node_step))

    def time_fractions(self, flavour: str) -> np.ndarray:
        """Fraction of ``flavour`` per analysis time bin, weighted by the time efficiency eps_T."""
        return self.timing().bin_fractions(flavour, np.asarray(self.options.t_edges_us),
                                          lambda t: time_efficiency(t, self.params))

    def cost(self, free_signal: bool = False) -> PoissonChi2:
        """AC22 Poisson chi^2; ``free_signal`` drops the CEvNS pull (normalisation fitted freely)."""
        sig = dict(self.sigmas)
        if free_signal:
            sig["cevns"] = None
        return PoissonChi2(self.name, self.observed, {z: self.backgrounds[z] for z in COMPONENTS[1:]}, sig)
