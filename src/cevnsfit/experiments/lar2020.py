"""COHERENT CENNS-10 liquid argon, Analysis A (2020 release): arXiv:2003.10630, data release arXiv:2006.12659.

12 energy bins (0-120 keVee) x 10 time bins (-0.1-4.9 us), the 8 F90 bins of the release summed; Gaussian chi^2
with four normalisation pulls and five shape nuisances (physics specification section 9).  Detector response:

* quenching E_ee = (a + b T') T' with a = 0.246, b = 7.8e-4/keVnr (LArParametersAnlA.yaml);
* Gaussian energy resolution sigma = 0.58 sqrt(E_ee/keVee) keVee;
* acceptance: ``CENNS10AnlAEfficiency.txt`` interpolated linearly in reconstructed keVee, 0.963 above 39.75 keVee;
* timing: SNS POT trace Gauss(450 ns, 150 ns) folded with the pion (and muon) lifetimes, no time efficiency.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, InputError
from ..io.datadir import read_table
from ..io.validate import require_counts, require_grid, require_non_negative, require_uniform_centres
from ..physics.nuclei import get_nucleus
from ..response import Target
from ..sources.timing import AnalyticTiming
from ..stats.chi2 import GaussianChi2
from .common import Experiment, PhysicsOptions, gaussian_response_matrix, linear_quenching_kevee, relative_delta

NAME = "lar"
LABEL = "LAr (CENNS-10) 2020"
E_EDGES_KEVEE = tuple(float(x) for x in np.arange(0.0, 121.0, 10.0))
T_EDGES_US = tuple(float(x) for x in np.round(-0.1 + 0.5 * np.arange(11), 10))
N_F90 = 8
COMPONENTS = ("cevns", "ss", "pbrn", "dbrn")

FILES = {
    "data": "lar2020/datanobkgsub.txt",
    "cevns": "lar2020/cevnspdf.txt",
    "ss": "lar2020/bkgpdf.txt",
    "pbrn": "lar2020/brnpdf.txt",
    "dbrn": "lar2020/delbrnpdf.txt",
    "cevns_f90+": "lar2020/cevnspdf+1sigF90.txt",
    "cevns_f90-": "lar2020/cevnspdf-1sigF90.txt",
    "cevns_tmean": "lar2020/cevnspdfCEvNSTimingMeanSyst.txt",
    "pbrn_energy+": "lar2020/brnpdf+1sigEnergy.txt",
    "pbrn_energy-": "lar2020/brnpdf-1sigEnergy.txt",
    "pbrn_tmean+": "lar2020/brnpdf+1sigBRNTimingMean.txt",
    "pbrn_tmean-": "lar2020/brnpdf-1sigBRNTimingMean.txt",
    "pbrn_twidth": "lar2020/brnpdfBRNTimingWidthSyst.txt",
    "efficiency": "lar2020/CENNS10AnlAEfficiency.txt",
}

# Shape systematics of AC22: (name, component, + file, - file or None for a single-file variation).
SHAPE_SYSTEMATICS = (
    ("cevns_f90", "cevns", "cevns_f90+", "cevns_f90-"),
    ("cevns_timing_mean", "cevns", "cevns_tmean", None),
    ("pbrn_energy", "pbrn", "pbrn_energy+", "pbrn_energy-"),
    ("pbrn_timing_mean", "pbrn", "pbrn_tmean+", "pbrn_tmean-"),
    ("pbrn_timing_width", "pbrn", "pbrn_twidth", None),
)
ISOTOPES = ("ar40", "natural")
PREDICTIONS = ("computed", "release_ratio")
SIGMA_MODELS = ("data_plus_ss", "data", "prediction")


@dataclass(frozen=True)
class LArOptions(PhysicsOptions):
    """Analysis choices (physics specification section 14)."""

    argon_isotopes: str = "ar40"
    prediction: str = "computed"
    sigma: str = "data_plus_ss"
    renormalise_pbrn_timing_mean: bool = False
    shape_systematics: tuple = tuple(s[0] for s in SHAPE_SYSTEMATICS)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value, allowed in (
            ("argon_isotopes", self.argon_isotopes, ISOTOPES),
            ("prediction", self.prediction, PREDICTIONS),
            ("sigma", self.sigma, SIGMA_MODELS),
        ):
            if value not in allowed:
                raise InputError(f"LAr option {name}='{value}' is not one of {', '.join(allowed)}")
        known = {s[0] for s in SHAPE_SYSTEMATICS}
        unknown = set(self.shape_systematics) - known
        if unknown:
            raise InputError(f"unknown LAr shape systematic(s) {sorted(unknown)}; known: {sorted(known)}")


# The release grid of the 3-D files, row order energy (slowest), F90, time (fastest): bin centres.
E_CENTRES_KEVEE = np.arange(5.0, 120.0, 10.0)
F90_CENTRES = 0.525 + 0.05 * np.arange(N_F90)
T_CENTRES_US = 0.15 + 0.5 * np.arange(10)
GRID_ROWS = np.array([(e, f, t) for e in E_CENTRES_KEVEE for f in F90_CENTRES for t in T_CENTRES_US])


def read_3d(path: Path, counts: bool = False) -> np.ndarray:
    """A release 3-D file (E, F90, t, content; energy slowest, time fastest) summed over F90 -> (12, 10).

    Every row must be the release grid point of its position (so a swapped, duplicated or moved row is refused with
    its line) and every content non-negative; ``counts`` (the observed data) also requires integers.
    """
    table, lines = read_table(path, ncols=4, min_rows=12 * N_F90 * 10, with_lines=True)
    require_grid(path, table[:, :3], GRID_ROWS, lines, "(E, F90, t)")
    if table.shape[0] != GRID_ROWS.shape[0]:
        raise DataError(f"{path}: {table.shape[0]} rows, expected {GRID_ROWS.shape[0]}")
    (require_counts if counts else require_non_negative)(path, table[:, 3], lines, "count" if counts else "content")
    return table[:, 3].reshape(12, N_F90, 10).sum(axis=1)


class Efficiency:
    """Acceptance vs reconstructed keVee: the release table interpolated linearly, held constant beyond it."""

    def __init__(self, path: Path, above: float):
        table, lines = read_table(path, ncols=3, min_rows=50, with_lines=True)
        require_uniform_centres(path, table[:, 0], lines, "energy")
        outside = (table[:, 2] < 0) | (table[:, 2] > 1)
        if np.any(outside):
            i = int(np.argmax(outside))
            raise DataError(f"{path}: line {lines[i]}: efficiency {table[i, 2]:g} outside [0, 1]")
        self.nodes = np.concatenate([[-1e3, 0.0], table[:, 0], [1e4]])
        self.values = np.concatenate([[0.0, 0.0], table[:, 2], [above]])
        self.values[-2] = table[-1, 2]  # last file value
        self.values[-1] = above
        # the file ends at 39.75 keVee: jump to the constant `above` just after the last node
        self.nodes = np.insert(self.nodes, -1, table[-1, 0] + 1e-9)
        self.values = np.insert(self.values, -1, above)

    def __call__(self, e_kevee: np.ndarray) -> np.ndarray:
        return np.interp(e_kevee, self.nodes, self.values)


def bin_nodes(edges_kevee, efficiency: Efficiency) -> list[np.ndarray]:
    """Per energy bin: its edges and the efficiency table's nodes inside it (where the acceptance has kinks), so
    that :func:`.common.gaussian_response_matrix` integrates the piecewise-linear acceptance exactly."""
    edges = np.asarray(edges_kevee, dtype=float)
    return [np.concatenate([[lo], efficiency.nodes[(efficiency.nodes > lo) & (efficiency.nodes < hi)], [hi]])
            for lo, hi in zip(edges[:-1], edges[1:])]


def resolution_sigma_kevee(e_true_kevee: np.ndarray, res_a: float) -> np.ndarray:
    """sigma = res_a sqrt(E_true) (keVee), floored at 1e-6 keVee (no step function at E_true = 0)."""
    return np.maximum(res_a * np.sqrt(np.maximum(np.asarray(e_true_kevee, float), 0.0)), 1e-6)


class LAr2020(Experiment):
    """The CENNS-10 LAr data set: observed counts, templates, shape systematics and response kernel."""

    name = NAME
    label = LABEL
    components = COMPONENTS
    section = "lar2020"
    files = FILES
    options_class = LArOptions

    def _load(self) -> None:
        self.observed = read_3d(self.paths["data"], counts=True)
        self.release = {z: read_3d(self.paths[z]) for z in COMPONENTS}
        self.backgrounds = {z: self.release[z] for z in ("ss", "pbrn", "dbrn")}
        variations = {}
        for key in FILES:
            if key.startswith(("cevns_", "pbrn_")):
                variations[key] = read_3d(self.paths[key])
        if self.options.renormalise_pbrn_timing_mean:
            v = variations["pbrn_tmean+"]
            variations["pbrn_tmean+"] = v * self.release["pbrn"].sum() / v.sum()
        # relative per-bin deltas of each shape systematic: (+, -) or (single, None)
        self.shape_deltas = {}
        for name, comp, plus, minus in SHAPE_SYSTEMATICS:
            if name not in self.options.shape_systematics:
                continue
            nominal = self.release[comp]
            d_plus = relative_delta(variations[plus], nominal)
            d_minus = relative_delta(variations[minus], nominal) if minus else None
            self.shape_deltas[name] = (comp, d_plus, d_minus)
        self.efficiency = Efficiency(self.paths["efficiency"], self.params["lar2020.efficiency_above_file"])

    energy_label = "energy [keVee]"
    energy_unit = "keVee"
    energy_edges = np.asarray(E_EDGES_KEVEE)
    time_edges_us = np.asarray(T_EDGES_US)

    @property
    def ss_variance(self) -> np.ndarray:
        """Variance of the steady-state estimate: measured in a 5x longer beam-off window."""
        return self.backgrounds["ss"] / self.params["lar2020.ss_window_ratio"]

    def stat_sigma(self, prediction: np.ndarray | None = None) -> np.ndarray:
        """Per-bin sigma_ij of the Gaussian chi^2: sqrt(N_obs + N_SS/5) by default (the release's stat. error)."""
        if self.options.sigma == "data_plus_ss":
            var = self.observed + self.ss_variance
        elif self.options.sigma == "data":
            var = self.observed
        else:
            if prediction is None:
                raise InputError("LAr sigma='prediction' needs the predicted counts")
            var = prediction
        return np.sqrt(np.maximum(var, 1.0))  # an empty bin keeps unit variance (none occur with the default)

    # ---- response --------------------------------------------------------------------------------------
    def targets(self) -> dict:
        p = self.params
        atoms = p["lar2020.mass_kg"] * 1e3 / p["lar2020.molar_mass_g_per_mol"] * p["constants.N_A"]
        if self.options.argon_isotopes == "ar40":
            return {"Ar40": Target(get_nucleus("Ar40", p), atoms)}
        return {n: Target(get_nucleus(n, p), atoms * p[f"argon_isotopes.{n}"]) for n in ("Ar40", "Ar38", "Ar36")}

    def timing(self) -> AnalyticTiming:
        p = self.params
        return AnalyticTiming.from_parameters(p["lar2020.pot_trace_mean"], p["lar2020.pot_trace_width"], p)

    def recoil_response(self, nucleus: str, recoil_mev: np.ndarray) -> np.ndarray:
        """P(keVee bin, accepted | recoil): linear quenching, Gaussian resolution, acceptance."""
        p = self.params
        e_ee = linear_quenching_kevee(recoil_mev * 1e3, p["lar2020.qf_a"], p["lar2020.qf_b"])
        return gaussian_response_matrix(e_ee, resolution_sigma_kevee(e_ee, p["lar2020.resolution_a"]),
                                        bin_nodes(E_EDGES_KEVEE, self.efficiency), self.efficiency)

    def time_fractions(self, flavour: str) -> np.ndarray:
        return self.timing().bin_fractions(flavour, np.asarray(T_EDGES_US))

    def signal(self, computed: np.ndarray) -> np.ndarray:
        """Map computed CEvNS counts to the analysis template (``prediction`` option)."""
        if self.options.prediction == "computed":
            return computed
        sm = self.kernel.sm_counts()
        # bins where the computed SM rate vanishes keep the release content (ratio 1)
        ratio = np.divide(computed, sm, out=np.ones_like(np.asarray(computed, float)), where=np.broadcast_to(sm > 0, np.shape(computed)))
        return self.release["cevns"] * ratio

    def cost(self, free_signal: bool = False) -> GaussianChi2:
        """AC22 Gaussian chi^2; ``free_signal`` drops the CEvNS pull (normalisation fitted freely)."""
        sig = dict(self.sigmas)
        if free_signal:
            sig["cevns"] = None
        sm = sum(self.sm_prediction().values()) if self.options.sigma == "prediction" else None
        return GaussianChi2(
            self.name,
            self.observed,
            {z: self.backgrounds[z] for z in COMPONENTS[1:]},
            sig,
            self.stat_sigma(sm),
            self.shape_deltas,
        )
