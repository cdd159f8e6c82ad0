"""COHERENT CENNS-10 liquid argon, Analysis A (2020 release): arXiv:2003.10630, data release arXiv:2006.12659.

12 energy bins (0-120 keVee) x 10 time bins (-0.1-4.9 us), the 8 F90 bins of the release summed; Gaussian chi^2
with four normalisation pulls and five shape nuisances (physics specification section 9).  Detector response:

* quenching E_ee = (a + b T') T' with a = 0.246, b = 7.8e-4/keVnr (LArParametersAnlA.yaml);
* Gaussian energy resolution sigma = 0.58 sqrt(E_ee/keVee) keVee;
* acceptance: ``CENNS10AnlAEfficiency.txt`` interpolated linearly in reconstructed keVee, 0.963 above 39.75 keVee;
* timing: SNS POT trace Gauss(450 ns, 150 ns) folded with the pion (and muon) lifetimes, no time efficiency.

A composition (:mod:`.base`) of registered parts: the ``pion_dar`` source with ``analytic`` arrival times, an argon
target, the ``gaussian`` energy response (``linear`` quenching, ``sqrt`` resolution, ``tabulated`` efficiency,
exact integration between the table's nodes), ``source_timing`` in time and a ``gaussian`` likelihood with the
release's shape systematics.  The release's file formats (3-D tables summed over F90) are this module's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, InputError
from ..io.datadir import read_table, resolve_collection
from ..io.validate import require_counts, require_grid, require_non_negative, require_uniform_centres
from ..parameters import DEFAULT, Parameters
from ..responses import make_response
from ..sources import make_source
from ..targets import material_targets
from .base import Experiment, PhysicsOptions, relative_delta
from .likelihoods import GaussianLikelihood
from .registry import register_experiment

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


def read_efficiency(path: Path, above: float):
    """The release's acceptance table (keVee, -, efficiency) as a ``tabulated`` efficiency, ``above`` beyond it."""
    table, lines = read_table(path, ncols=3, min_rows=50, with_lines=True)
    require_uniform_centres(path, table[:, 0], lines, "energy")
    outside = (table[:, 2] < 0) | (table[:, 2] > 1)
    if np.any(outside):
        i = int(np.argmax(outside))
        raise DataError(f"{path}: line {lines[i]}: efficiency {table[i, 2]:g} outside [0, 1]")
    return make_response("efficiency", "tabulated", x=table[:, 0], values=table[:, 2], above=above)


def _stat_sigma(experiment) -> np.ndarray:
    """Per-bin sigma_ij of the Gaussian chi^2: sqrt(N_obs + N_SS/5) by default (the release's stat. error)."""
    kind = experiment.options.sigma
    if kind == "data_plus_ss":
        var = experiment.observed + experiment.ss_variance
    elif kind == "data":
        var = experiment.observed
    else:
        var = sum(experiment.sm_prediction().values())
    return np.sqrt(np.maximum(var, 1.0))  # an empty bin keeps unit variance (none occur with the default)


def _release_ratio(experiment, computed: np.ndarray) -> np.ndarray:
    """Option prediction='release_ratio': the release's CEvNS template scaled bin by bin by computed / SM (bins
    where the computed SM rate vanishes keep the release content)."""
    sm = experiment.kernel.sm_counts()
    ratio = np.divide(computed, sm, out=np.ones_like(np.asarray(computed, float)),
                      where=np.broadcast_to(sm > 0, np.shape(computed)))
    return experiment.release["cevns"] * ratio


@register_experiment(NAME, label="LAr", collection="coherent", files=FILES, fetch=("lar2020", "flux"),
                     citation="COHERENT, PRL 126 (2021) 012002, arXiv:2003.10630", options=LArOptions)
def load(data_dir=None, params: Parameters = DEFAULT, options: LArOptions | None = None, **kwargs) -> Experiment:
    """The CENNS-10 LAr data set (module docstring); ``kwargs``: :class:`LArOptions`."""
    o = options if options is not None else LArOptions(**kwargs)
    p = params
    root = resolve_collection("coherent", data_dir)
    paths = {k: root / v for k, v in FILES.items()}
    observed = read_3d(paths["data"], counts=True)
    release = {z: read_3d(paths[z]) for z in COMPONENTS}
    backgrounds = {z: release[z] for z in ("ss", "pbrn", "dbrn")}
    variations = {key: read_3d(paths[key]) for key in FILES if key.startswith(("cevns_", "pbrn_"))}
    if o.renormalise_pbrn_timing_mean:
        v = variations["pbrn_tmean+"]
        variations["pbrn_tmean+"] = v * release["pbrn"].sum() / v.sum()
    # relative per-bin deltas of each shape systematic: (+, -) or (single, None)
    shape_deltas = {}
    for name, comp, plus, minus in SHAPE_SYSTEMATICS:
        if name not in o.shape_systematics:
            continue
        nominal = release[comp]
        shape_deltas[name] = (comp, relative_delta(variations[plus], nominal),
                              relative_delta(variations[minus], nominal) if minus else None)
    efficiency = read_efficiency(paths["efficiency"], p["lar2020.efficiency_above_file"])
    energy = make_response("energy", "gaussian",
                           quenching=make_response("quenching", "linear", a=p["lar2020.qf_a"], b=p["lar2020.qf_b"]),
                           resolution=make_response("resolution", "sqrt", a=p["lar2020.resolution_a"]),
                           efficiency=efficiency, edges=E_EDGES_KEVEE, integration="exact")
    source = make_source("pion_dar", p, pot=p["lar2020.pot"], baseline=p["lar2020.baseline"],
                         nu_per_flavour_per_pot=p["lar2020.nu_per_flavour_per_pot"],
                         timing={"model": "analytic", "mean_ns": p["lar2020.pot_trace_mean"],
                                 "width_ns": p["lar2020.pot_trace_width"]})
    if o.argon_isotopes == "ar40":
        composition = {"Ar40": 1.0}
    else:
        composition = {n: p[f"argon_isotopes.{n}"] for n in ("Ar40", "Ar38", "Ar36")}
    targets = material_targets(composition, p["lar2020.mass_kg"], p, p["lar2020.molar_mass_g_per_mol"])
    likelihood = GaussianLikelihood(COMPONENTS, {z: f"lar2020.sigma_{z}" for z in COMPONENTS}, _stat_sigma,
                                    shape_deltas)
    return Experiment(NAME, LABEL, params=p, options=o, source=source, targets=targets, energy=energy,
                      time=make_response("time", "source_timing", edges_us=T_EDGES_US), likelihood=likelihood,
                      observed=observed, backgrounds=backgrounds, data_dir=root, files=FILES, collection="coherent",
                      signal=_release_ratio if o.prediction == "release_ratio" else None,
                      extras={"release": release, "shape_deltas": shape_deltas, "efficiency": efficiency,
                              "ss_variance": backgrounds["ss"] / p["lar2020.ss_window_ratio"]})
