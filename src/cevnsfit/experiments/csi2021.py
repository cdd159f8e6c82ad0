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

The experiment is a composition (:mod:`.base`) of registered parts: the ``pion_dar`` source (SNS, 19.3 m, the
snsFlux2D arrival times), a CsI target, the ``gamma_pe`` energy response with ``polynomial`` quenching and a
``logistic`` PE efficiency, the ``source_timing`` time response with a ``delayed_exponential`` time efficiency, and a
``poisson`` likelihood.  Only the release's file formats are this module's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, InputError
from ..io.datadir import read_table, require_file, resolve_collection
from ..io.validate import require_non_negative, require_uniform_centres
from ..parameters import DEFAULT, Parameters
from ..responses import make_response
from ..sources import make_source
from ..sources.timing import GridTiming
from ..targets import material_targets
from .base import Experiment, PhysicsOptions, bin_events
from .likelihoods import PoissonLikelihood
from .readers import register_reader
from .registry import register_experiment

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


def _time_pdf(path: Path, t_edges_us, roi_us: tuple[float, float], efficiency) -> np.ndarray:
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
    return hist.bin_fractions("pdf", t_edges_us, efficiency) / roi


def read_events(path: Path, pe_edges, t_edges_us) -> np.ndarray:
    """An event list of the release (reconstructed PE, arrival time after the POT trigger in us; both non-negative --
    a swap of the two is not detectable: both ranges overlap) binned in PE and time, left-closed bins."""
    table, lines = read_table(path, ncols=2, min_rows=1000, with_lines=True)
    require_non_negative(path, table[:, 0], lines, "PE")
    require_non_negative(path, table[:, 1], lines, "time")
    return bin_events(table[:, 0], table[:, 1], pe_edges, t_edges_us)


def separable_background(pe_path: Path, t_path: Path, pe_edges, t_edges_us, norm: float, time_efficiency,
                         after_time_efficiency: bool = False) -> np.ndarray:
    """A beam-related background of the release: ``norm`` events in the region before the time acceptance (or
    after it), with the PE spectrum of ``pe_path`` and the arrival-time density of ``t_path`` times eps_T."""
    pe = _binned_pdf(pe_path, pe_edges)
    t = _time_pdf(t_path, t_edges_us, (t_edges_us[0], t_edges_us[-1]), time_efficiency)
    if after_time_efficiency:
        norm = norm / t.sum()
    return norm * np.outer(pe / pe.sum(), t)


@register_reader("csi2021_events")
def _events_reader(ctx, node, key, shape):
    """The CsI-2021 release's event list ``file`` (PE, time): counts in the response's PE and time bins."""
    return read_events(ctx.path(key, node["file"]), ctx.energy_edges, ctx.time_edges_us)


@register_reader("csi2021_separable")
def _separable_reader(ctx, node, key, shape):
    """A CsI-2021 beam-related background: ``norm`` events (a value or parameter key) shaped by the PE file
    ``energy`` and the t_rec file ``time`` (times the time response's efficiency)."""
    norm = ctx.value(node.get("norm"), f"{key}.norm", "events")
    return separable_background(ctx.path(f"{key}.energy", node.get("energy")), ctx.path(f"{key}.time", node.get("time")),
                                ctx.energy_edges, ctx.time_edges_us, norm, ctx.time_efficiency,
                                node.get("normalise") == "after_time_efficiency")


def _source(o: CsIOptions, paths: dict, p: Parameters):
    """The SNS as CsI sees it: analytic or grid spectra, grid or analytic arrival times (option ``flux_model``)."""
    if o.flux_model == "analytic":
        timing = {"model": "analytic", "mean_ns": p["csi2021.mu_t_analytic"], "width_ns": p["lar2020.pot_trace_width"]}
    else:
        timing = {"model": "grid", "path": paths["flux_grid"], "offset_ns": p["csi2021.nu_time_offset"]}
    spectrum = {"grid": paths["flux_grid"]} if o.flux_model == "grid2d" else "analytic"
    return make_source("pion_dar", p, pot=p["csi2021.pot"], baseline=p["csi2021.baseline"],
                       nu_per_flavour_per_pot=p["csi2021.nu_per_flavour_per_pot"], spectrum=spectrum, timing=timing)


@register_experiment(NAME, label="CsI", collection="coherent", files=FILES, fetch=("csi2021", "flux"),
                     citation="COHERENT, PRL 129 (2022) 081801, arXiv:2110.07730", options=CsIOptions)
def load(data_dir=None, params: Parameters = DEFAULT, options: CsIOptions | None = None, **kwargs) -> Experiment:
    """The CsI[Na] 2021 data set (module docstring); ``kwargs``: :class:`CsIOptions`."""
    o = options if options is not None else CsIOptions(**kwargs)
    p = params
    root = resolve_collection("coherent", data_dir)
    paths = {k: root / v for k, v in FILES.items()}
    pe_edges, t_edges = np.asarray(o.pe_edges, float), np.asarray(o.t_edges_us, float)
    observed = read_events(paths["coincidence"], pe_edges, t_edges)
    ss = read_events(paths["anticoincidence"], pe_edges, t_edges)
    quenching_coeffs = _coefficient_rows(paths["quenching"], 5)[QUENCHING_VARIANTS.index(o.quenching)]
    efficiency_coeffs = _coefficient_rows(paths["efficiency"], 3)[EFFICIENCY_VARIANTS.index(o.efficiency)]
    time_eff = make_response("efficiency", "delayed_exponential", t0=p["csi2021.time_eff_t0"],
                             decay=p["csi2021.time_eff_decay"])
    backgrounds = {z: separable_background(paths[f"{z}_pe"], paths[f"{z}_t"], pe_edges, t_edges, p[f"csi2021.n_{z}"],
                                           time_eff, o.brn_nin_norm == "after_time_efficiency") for z in ("brn", "nin")}
    backgrounds["ss"] = ss
    require_file(paths["flux_grid"])
    a, k, x0, d = efficiency_coeffs
    energy = make_response("energy", "gamma_pe",
                           quenching=make_response("quenching", "polynomial", coefficients=quenching_coeffs),
                           efficiency=make_response("efficiency", "logistic", plateau=a, k=k, x0=x0, offset=d),
                           light_yield=p["csi2021.light_yield_pe_per_kevee"], res_a=p["csi2021.resolution_a"],
                           res_b=p["csi2021.resolution_b"], edges=pe_edges, node_step=o.pe_node_step)
    time = make_response("time", "source_timing", edges_us=t_edges, efficiency=time_eff)
    targets = material_targets({"Cs133": 1.0, "I127": 1.0}, p["csi2021.mass_kg"], p,
                               p["csi2021.molar_mass_g_per_mol"])
    likelihood = PoissonLikelihood(COMPONENTS, {z: f"csi2021.sigma_{z}" for z in COMPONENTS})
    return Experiment(NAME, LABEL, params=p, options=o, source=_source(o, paths, p), targets=targets, energy=energy,
                      time=time, likelihood=likelihood, observed=observed, backgrounds=backgrounds, data_dir=root,
                      files=FILES, collection="coherent",
                      extras={"quenching_coeffs": quenching_coeffs, "efficiency_coeffs": efficiency_coeffs,
                              "time_efficiency": time_eff, "ss_variance": ss})
