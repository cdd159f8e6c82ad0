"""Pieces shared by the experiment modules: recoil grids, event binning, per-bin relative shape deltas, and the
detector-response formulas that several data sets use (quenching, logistic acceptance, Gaussian smearing into bins)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from ..errors import InputError
from ..io.datadir import resolve_collection
from ..parameters import DEFAULT, Parameters
from ..physics.cross_section import COUPLING_SCHEMES, FLAVOURS, KINEMATICS, max_recoil_mev
from ..physics.form_factors import FORM_FACTORS
from ..process import usable_cores
from ..response import DetectorResponse, ResponseKernel, build_kernel
from ..sources.sns import SNSSource
from ..sources.spectra import LineSpectrum


@dataclass(frozen=True)
class PhysicsOptions:
    """Choices shared by every data set (physics specification section 14, decisions 1-3) and the recoil step."""

    form_factor: str = "helm"
    couplings: str = "radiative"
    kinematics: str = "ac22"
    recoil_step_kev: float = 0.01

    def __post_init__(self) -> None:
        for name, value, allowed in (("form_factor", self.form_factor, FORM_FACTORS),
                                     ("couplings", self.couplings, COUPLING_SCHEMES),
                                     ("kinematics", self.kinematics, KINEMATICS)):
            if value not in allowed:
                raise InputError(f"option {name}='{value}' is not one of {', '.join(allowed)}")
        if not 0 < self.recoil_step_kev <= 0.1:
            raise InputError("recoil_step_kev must be in (0, 0.1] keV")


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


def bin_events(x: np.ndarray, y: np.ndarray, x_edges, y_edges) -> np.ndarray:
    """2-D histogram with left-closed bins [e_k, e_k+1) on both axes (events outside are dropped)."""
    x_edges, y_edges = np.asarray(x_edges, float), np.asarray(y_edges, float)
    ix = np.searchsorted(x_edges, x, side="right") - 1
    iy = np.searchsorted(y_edges, y, side="right") - 1
    ok = (ix >= 0) & (ix < x_edges.size - 1) & (iy >= 0) & (iy < y_edges.size - 1)
    out = np.zeros((x_edges.size - 1, y_edges.size - 1))
    np.add.at(out, (ix[ok], iy[ok]), 1.0)
    return out


def linear_quenching_kevee(recoil_kevnr: np.ndarray, a: float, b: float) -> np.ndarray:
    """E_ee = (a + b T') T' in keVee for a recoil T' in keVnr (the COHERENT LAr-2020 form, LArParametersAnlA.yaml)."""
    t = np.asarray(recoil_kevnr, dtype=float)
    return (a + b * t) * t


def polynomial_quenching_kevee(recoil_mev: np.ndarray, coefficients) -> np.ndarray:
    """E_ee [keVee] = 1e3 sum_i c_i x^(i+1), x = T' in MeVnr, E_ee sum in MeVee (the COHERENT CsI-2021 release
    form, ``scintRespCoefficients.txt``)."""
    x = np.asarray(recoil_mev, dtype=float)
    return 1e3 * sum(c * x ** (i + 1) for i, c in enumerate(coefficients))


def logistic_efficiency(x: np.ndarray, plateau: float, k: float, x0: float, offset: float,
                        upper: float | None = None) -> np.ndarray:
    """Acceptance a/(1 + exp(-k (x - x0))) + d, clipped below at 0 (and above at ``upper`` if given); x in the
    unit of x0 and 1/k (PE for CsI-2021's ``effCoefficients.txt``, keVee for a projected detector)."""
    return np.clip(plateau / (1.0 + np.exp(-k * (np.asarray(x, float) - x0))) + offset, 0.0, upper)


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


def relative_delta(varied: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """(varied - nominal) / nominal per bin, 0 where the nominal template is empty."""
    safe = np.where(nominal != 0, nominal, 1.0)
    return np.where(nominal != 0, (varied - nominal) / safe, 0.0)


class Experiment:
    """What every data set shares: data directory and files, options, cached response kernel, pull widths.

    A data set module subclasses it and provides ``_load`` (read and bin its files), ``targets``,
    ``recoil_response(nucleus_name, recoil_mev)`` (reconstructed-energy response of each recoil, accepted),
    ``time_fractions`` (per flavour), and class attributes ``name``, ``label``, ``components``, ``section`` (its
    section of parameters.yaml), ``files`` (key -> path under the data directory), ``options_class`` and
    ``collection`` (the folder of the data root its files are in, :mod:`cevnsfit.io.registry`).  A data set whose
    inputs live in a YAML file of their own adds them in ``_parameters``.
    """

    name = label = section = ""
    components: tuple = ()
    files: dict = {}
    options_class = None
    collection = "coherent"

    def __init__(self, data_dir=None, params: Parameters = DEFAULT, options=None, **kwargs):
        self.options = options if options is not None else self.options_class(**kwargs)
        self.params = self._parameters(params)
        # a data set without files (a projected detector: collection "") has no folder to find
        self.data_dir = resolve_collection(self.collection, data_dir) if self.collection else None
        self.paths = {k: self.data_dir / v for k, v in self.files.items()}
        self._kernel: ResponseKernel | None = None
        self._load()

    def _parameters(self, params: Parameters) -> Parameters:
        """The parameter set this data set uses (``params`` plus any section it keeps in its own file)."""
        return params

    def _load(self) -> None:  # pragma: no cover - every data set implements it
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int]:
        return self.observed.shape

    @property
    def sigmas(self) -> dict:
        """Relative normalisation uncertainties of the components (the AC22 chi^2 pulls)."""
        return {z: self.params[f"{self.section}.sigma_{z}"] for z in self.components}

    def source(self) -> SNSSource:
        return SNSSource.for_experiment(self.section, self.params)

    def sm_summary(self) -> dict:
        """The ``cevnsfit sm`` document: predicted and best-fit counts per component, observed, chi^2_min, bins,
        nuisances (:func:`cevnsfit.analysis.sm_summary`)."""
        from ..analysis import sm_summary

        return sm_summary(self)

    @classmethod
    def sm_table(cls, summary: dict) -> tuple[str, list[str], list[list[str]], str]:
        """(title, columns, rows, footer) of the human-readable ``cevnsfit sm`` table."""
        r = summary
        title = f"{cls.name}: observed {r['observed']} events, chi2_min = {r['chi2_min']:.2f} for {r['n_bins']} bins"
        rows = [[z, f"{r['predicted'][z]:.1f}", f"{r['best_fit'][z]:.1f}"] for z in r["predicted"]]
        rows.append(["total", f"{sum(r['predicted'].values()):.1f}", f"{sum(r['best_fit'].values()):.1f}"])
        foot = "nuisances: " + ", ".join(f"{k} = {v:+.3f}" for k, v in r["nuisances"].items())
        return title, ["component", "predicted [events]", "best fit [events]"], rows, foot

    def check_inputs(self) -> None:
        """Read every input file now (the constructor reads the event files; the source and timing files are
        otherwise read only when the kernel is built); raises :class:`DataError` naming a bad file."""
        self.source()
        timing = getattr(self, "timing", None)
        if timing is not None:
            timing()

    def detector_response(self) -> DetectorResponse:
        """Recoil grid (<= ``recoil_step_kev``, up to the end point of the Michel spectra) and response per nucleus."""
        targets = self.targets()
        e_max = 0.5 * self.params["constants.m_mu"]
        lines = [s.energy_mev for s in self.source().spectra.values() if isinstance(s, LineSpectrum)]

        def one(name):
            tg = targets[name]
            steps = [float(max_recoil_mev(e, tg.nucleus.mass_mev)) for e in lines]
            t, w = recoil_grid(tg.nucleus.mass_mev, e_max, self.options.recoil_step_kev, steps)
            return t, self.recoil_response(name, t) * w[None, :]

        # the nuclei's responses are independent, and nearly all of their cost is in large array functions that
        # release the GIL (CsI: the incomplete gammas of each nucleus, ~0.45 s each): in threads, the same numbers
        with ThreadPoolExecutor(min(len(targets), usable_cores()), thread_name_prefix="cevnsfit-response") as pool:
            done = dict(zip(targets, pool.map(one, targets)))
        recoil = {n: done[n][0] for n in targets}
        energy = {n: done[n][1] for n in targets}
        return DetectorResponse(targets, recoil, energy, {f: self.time_fractions(f) for f in FLAVOURS})

    @property
    def kernel(self) -> ResponseKernel:
        """The response kernel (built on first use, then kept)."""
        if self._kernel is None:
            o = self.options
            self._kernel = build_kernel(self.detector_response(), self.source(), o.form_factor, o.couplings,
                                        o.kinematics, self.params)
        return self._kernel

    def signal(self, computed: np.ndarray) -> np.ndarray:
        """Analysis CEvNS template from computed counts (identity unless a data set says otherwise)."""
        return computed

    def sm_prediction(self) -> dict:
        """Predicted counts per component, (n_energy, n_time) arrays."""
        return {"cevns": self.signal(self.kernel.sm_counts()), **self.backgrounds}
