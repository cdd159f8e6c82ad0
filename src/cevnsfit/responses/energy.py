"""Energy responses: recoils T' of each nucleus to reconstructed-energy bins, with the recoil grid they need.

An energy response has ``edges`` (bin edges in its ``unit``), ``recoil_grid(nucleus, e_max_mev, lines_mev,
step_kev)`` -> (T' nodes, trapezoid weights), both in MeV, and ``weighted_matrix(nucleus, recoil_mev, weights)`` ->
(n_bins, n_recoil): P(reconstructed in bin i and accepted | T'_k) times the quadrature weight of T'_k (MeV).

* ``gaussian``: E_ee = quenching(T'), reconstructed E ~ Normal(E_ee, resolution(E_ee)), accepted with efficiency(E),
  binned in keVee; an optional threshold cuts the true recoil (keVnr) or the reconstructed energy (keVee).  The
  efficiency integral is exact for a piecewise-linear acceptance whose kinks are nodes (``integration="exact"``:
  LAr-2020's table) or a midpoint rule on ``substeps`` sub-intervals per bin (``"midpoint"``: smooth acceptances).
* ``gamma_pe``: photo-electrons (CsI-2021): mean light_yield E_ee, Gamma distributed with shape 1 + b E_ee and rate
  a (1 + b) (a = res_a / E_ee, b = res_b E_ee, E_ee in keVee), accepted with a PE efficiency, binned in PE.
* ``mono_templates`` (:mod:`.mono`): efficiencies of mono-energetic recoils (XENONnT).

No light without a recoil: the T' = 0 node has zero response in every model.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import gammainc, gammaln, ndtr, xlogy

from ..errors import InputError
from ..physics.cross_section import max_recoil_mev
from . import register_response
from .efficiency import ConstantEfficiency, LogisticEfficiency
from .resolution import QuadratureResolution


def recoil_grid(mass_mev: float, max_neutrino_energy_mev: float, step_kev: float,
                steps_mev=()) -> tuple[np.ndarray, np.ndarray]:
    """Recoil grid from 0 to the kinematic end point, and its trapezoid weights (both in MeV).

    Uniform, except that each recoil in ``steps_mev`` where the integrand jumps (the end point of a monochromatic
    line) is bracketed by two nodes 1e-12 apart in relative terms: the trapezoid rule then integrates the jump
    exactly instead of smearing it over one step.  (Without them the scalar-mediator counts of the prompt nu_mu
    line, whose T'/E^2 factor does not vanish at the line's end point, came out up to 1.5e-3 high per CsI bin:
    tests/test_reference_mediators.py.)
    """
    t_max = float(max_recoil_mev(max_neutrino_energy_mev, mass_mev))
    n = int(np.ceil(t_max / (step_kev * 1e-3))) + 1
    t = np.linspace(0.0, t_max, n)
    inner = [s * f for s in steps_mev if 0.0 < s < t_max for f in (1.0 - 1e-12, 1.0 + 1e-12)]
    if inner:
        t = np.unique(np.concatenate([t, inner]))
    dt = np.diff(t)
    w = np.zeros(t.size)
    w[:-1] += 0.5 * dt
    w[1:] += 0.5 * dt
    return t, w


class UniformRecoilGrid:
    """The default recoil grid of a response: uniform up to the end point, line end points bracketed."""

    def recoil_grid(self, nucleus, e_max_mev: float, lines_mev=(), step_kev: float = 0.01):
        steps = [float(max_recoil_mev(e, nucleus.mass_mev)) for e in lines_mev]
        return recoil_grid(nucleus.mass_mev, e_max_mev, step_kev, steps)


def check_edges(edges, what: str) -> np.ndarray:
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise InputError(f"{what} must be increasing finite bin edges")
    return e


def gaussian_response_matrix(mean_kevee: np.ndarray, sigma_kevee: np.ndarray, bin_nodes, efficiency,
                             linear: bool = True) -> np.ndarray:
    """P(reconstructed E in bin i and accepted | true E), shape (n_bins, n_energies), for E ~ N(mean, sigma).

    ``bin_nodes``: per bin, the increasing energies (keVee) that split it into sub-intervals (None or fewer than
    two: the bin accepts nothing); ``efficiency``: acceptance as a function of the reconstructed energy.  With
    ``linear`` the acceptance is taken linear between nodes, and the integral is exact for a piecewise-linear one
    whose kinks are nodes: int (c0 + c1 E) N(E; mu, s) dE = c0 dPhi + c1 (mu dPhi - s dphi); without it, constant
    at its midpoint value on each sub-interval (a midpoint rule for a smooth acceptance).  sigma = 0 (perfect
    resolution) is a step at the mean.
    """
    mu = np.asarray(mean_kevee, dtype=float)
    s = np.broadcast_to(np.asarray(sigma_kevee, dtype=float), mu.shape)
    positive = s > 0
    safe = np.where(positive, s, 1.0)
    out = np.zeros((len(bin_nodes), mu.size))
    for i, nodes in enumerate(bin_nodes):
        if nodes is None or len(nodes) < 2:
            continue
        nodes = np.asarray(nodes, dtype=float)
        if linear:
            eff = efficiency(nodes)
            d = np.diff(nodes)
            keep = d > 0
            slope = np.where(keep, np.diff(eff) / np.where(keep, d, 1.0), 0.0)
            icpt = eff[:-1] - slope * nodes[:-1]
        else:
            icpt = efficiency(0.5 * (nodes[1:] + nodes[:-1]))
        z = (nodes[:, None] - mu[None, :]) / safe[None, :]
        cdf = np.where(positive[None, :], ndtr(z), (nodes[:, None] >= mu[None, :]).astype(float))
        d_cdf = np.diff(cdf, axis=0)
        if not linear:
            out[i] = (icpt[:, None] * d_cdf).sum(axis=0)
            continue
        pdf = np.where(positive[None, :], np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi), 0.0)
        d_pdf = np.diff(pdf, axis=0)
        out[i] = (icpt[:, None] * d_cdf + slope[:, None] * (mu[None, :] * d_cdf - s[None, :] * d_pdf)).sum(axis=0)
    return out


@register_response("energy", "gaussian", units={"edges": "keVee", "threshold": "keVnr | keVee"})
class GaussianEnergyResponse(UniformRecoilGrid):
    """Quenching, Gaussian resolution and efficiency into keVee bins (module docstring).

    ``quenching``: one quenching model, or {nucleus name: model}; ``resolution`` (None: perfect), ``efficiency``
    (None: 1); ``threshold``: None or (value, "keVnr" | "keVee").
    """

    unit = "keVee"
    label = "energy [keVee]"

    def __init__(self, quenching, edges, resolution=None, efficiency=None, threshold=None, integration: str = "exact",
                 substeps: int = 16):
        self.quenching = quenching
        self.resolution = QuadratureResolution() if resolution is None else resolution  # None: perfect resolution
        self.efficiency = ConstantEfficiency(1.0) if efficiency is None else efficiency
        self.edges = check_edges(edges, "energy bin edges (keVee)")
        if integration not in ("exact", "midpoint"):
            raise InputError(f"integration must be exact or midpoint, got {integration!r}")
        if threshold is not None and (len(threshold) != 2 or threshold[1] not in ("keVnr", "keVee") or threshold[0] < 0):
            raise InputError(f"a threshold is (value >= 0, keVnr | keVee), got {threshold!r}")
        self.threshold, self.integration, self.substeps = threshold, integration, int(substeps)

    def quenching_for(self, nucleus):
        if isinstance(self.quenching, dict):
            if nucleus.name not in self.quenching:
                raise InputError(f"no quenching model for {nucleus.name} (given for {', '.join(self.quenching)})")
            return self.quenching[nucleus.name]
        return self.quenching

    def bin_nodes(self) -> list:
        """Per bin the energies (keVee) splitting it: the efficiency's kinks inside (exact integration), or
        ``substeps`` equal parts above a keVee threshold (midpoint); None for a bin entirely below that threshold."""
        edges = self.edges
        if self.integration == "exact":
            kinks = np.asarray(self.efficiency.kinks, dtype=float)
            lo_cut = self.threshold[0] if self.threshold is not None and self.threshold[1] == "keVee" else -np.inf
            out = []
            for lo, hi in zip(edges[:-1], edges[1:]):
                lo = max(lo, lo_cut)
                out.append(np.concatenate([[lo], kinks[(kinks > lo) & (kinks < hi)], [hi]]) if hi > lo else None)
            return out
        lo_cut = self.threshold[0] if self.threshold is not None and self.threshold[1] == "keVee" else -np.inf
        return [np.linspace(max(lo, lo_cut), hi, self.substeps + 1) if hi > max(lo, lo_cut) else None
                for lo, hi in zip(edges[:-1], edges[1:])]

    def matrix(self, nucleus, recoil_mev) -> np.ndarray:
        """P(reconstructed in bin i, accepted | T'), (n_bins, n_recoil)."""
        t = np.asarray(recoil_mev, dtype=float)
        e_ee = self.quenching_for(nucleus).electron_equivalent_kev(t, nucleus)
        out = gaussian_response_matrix(e_ee, self.resolution.sigma_kevee(e_ee), self.bin_nodes(), self.efficiency,
                                       linear=self.integration == "exact")
        if self.threshold is not None and self.threshold[1] == "keVnr":
            out[:, t * 1e3 < self.threshold[0]] = 0.0
        out[:, t <= 0] = 0.0  # no light without a recoil
        return out

    def weighted_matrix(self, nucleus, recoil_mev, weights) -> np.ndarray:
        return self.matrix(nucleus, recoil_mev) * np.asarray(weights, float)[None, :]


def pe_response_matrix(e_ee_kevee: np.ndarray, pe_edges: np.ndarray, efficiency: LogisticEfficiency, light_yield: float,
                       res_a: float, res_b: float, node_step: float) -> np.ndarray:
    """P(reconstructed PE in bin i and accepted | E_ee), shape (n_bins, n_energies).

    The Gamma PE distribution (shape k = 1 + b E, scale theta = 1 / (a(1 + b)) with a = res_a / E) is integrated
    exactly against the efficiency interpolated linearly on nodes ``node_step`` PE apart, using
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
    kinks = efficiency.kinks
    bins = []  # per bin: its nodes
    for lo, hi in zip(edges[:-1], edges[1:]):
        n = max(int(np.ceil((hi - lo) / node_step)), 1)
        nodes = np.linspace(lo, hi, n + 1)
        for kink in kinks:  # the clipped efficiency has a kink there: make it a node (else +0.3 % in [0, 8) PE)
            if lo < kink < hi:
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
        eff = efficiency(nodes)
        slope = np.diff(eff) / np.diff(nodes)
        icpt = eff[:-1] - slope * nodes[:-1]
        out[i] = (icpt[:, None] * np.diff(p0[rows], axis=0)
                  + slope[:, None] * (k * theta)[None, :] * np.diff(p1[rows], axis=0)).sum(axis=0)
    return out


@lru_cache(maxsize=8)
def _pe_response_cached(e_ee: bytes, pe_edges: bytes, efficiency: tuple, light_yield: float, res_a: float,
                        res_b: float, node_step: float) -> np.ndarray:
    """:func:`pe_response_matrix` memoised on its inputs (arrays as float64 bytes), read-only.  The PE response is
    the costliest part of a CsI kernel (~0.4 s per nucleus; Cs and I each have theirs: their recoil grids differ) and
    does not depend on the nuclear radii, couplings or flux: a kernel at other such parameters (a fit of R_n, say)
    reuses it."""
    out = pe_response_matrix(np.frombuffer(e_ee), np.frombuffer(pe_edges), LogisticEfficiency(*efficiency), light_yield,
                             res_a, res_b, node_step)
    out.setflags(write=False)
    return out


@register_response("energy", "gamma_pe", units={"light_yield": "PE/keVee", "res_a": "keVee", "res_b": "keVee^-1",
                                                "edges": "PE", "node_step": "PE"})
class GammaPEResponse(UniformRecoilGrid):
    """Quenching, Gamma-distributed photo-electrons and a logistic PE efficiency into PE bins (module docstring)."""

    unit = "PE"
    label = "energy [PE]"

    def __init__(self, quenching, efficiency: LogisticEfficiency, light_yield: float, res_a: float, res_b: float,
                 edges, node_step: float = 0.1):
        if not isinstance(efficiency, LogisticEfficiency):
            raise InputError("the gamma_pe response takes a logistic PE efficiency")
        if not 0 < node_step <= 0.5:
            raise InputError("gamma_pe node_step must be in (0, 0.5] PE")
        self.quenching, self.efficiency = quenching, efficiency
        self.light_yield, self.res_a, self.res_b = float(light_yield), float(res_a), float(res_b)
        self.edges = check_edges(edges, "PE bin edges")
        self.node_step = float(node_step)

    def matrix(self, nucleus, recoil_mev) -> np.ndarray:
        """P(PE bin, accepted | T'): quenching, Gamma-distributed PE, PE efficiency (cached, read-only)."""
        def raw(a) -> bytes:
            return np.ascontiguousarray(a, dtype=float).ravel().tobytes()

        e = self.efficiency
        return _pe_response_cached(raw(self.quenching.electron_equivalent_kev(recoil_mev, nucleus)), raw(self.edges),
                                   (e.plateau, e.k, e.x0, e.offset, e.upper), self.light_yield, self.res_a,
                                   self.res_b, self.node_step)

    def weighted_matrix(self, nucleus, recoil_mev, weights) -> np.ndarray:
        return self.matrix(nucleus, recoil_mev) * np.asarray(weights, float)[None, :]
