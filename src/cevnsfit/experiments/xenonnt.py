"""XENONnT solar 8B CEvNS: the collaboration's binned likelihood release (SR0, SR1, SR2; CC-BY-4.0).

References: XENON, PRL 133 (2024) 191002 (arXiv:2408.02877, SR0+SR1); arXiv:2604.06002 (SR0+SR1+SR2); release
XENONnT/cevns_data_release, Zenodo 10.5281/zenodo.20576156 (layout in shared/data/xenonnt_cevns/PROVENANCE.md).

Per science run the release gives the observed events (four observables, 3 bins each: 81 bins), background
templates in events/(t yr) -- accidental coincidences (AC) and electronic recoils (ER) fixed, radiogenic neutrons
(RG) on the 7 x 7 grid of light-yield / charge-yield nuisances (tly, tqy in sigma, -3..3) -- and the detection
efficiency of mono-energetic nuclear recoils at 0.5, 0.6, ..., 5.0 keV on the same grid.

**Signal.**  The 8B CEvNS recoil spectrum on natural xenon (9 isotopes, data/xenonnt.yaml) is folded through the
efficiencies, *linearly interpolated between the 0.1 keV nodes*.  Below 0.5 keV and above 5.0 keV the release has
no template: the efficiency is taken as zero there (the analysis threshold is 0.5 keV; the 8B recoils end at
4.7 keV for 124Xe and 4.4 keV for 132Xe, so nothing above 5 keV is lost for the SM; a light-mediator or dark-matter
spectrum above 5 keV is cut, conservatively).  The folding is one matrix per isotope: rows = (grid point, run,
bin), columns = the 0.01-keV recoil grid, stored factorised (rows x 46 nodes) @ (46 nodes x recoils) so that the
kernel of :mod:`cevnsfit.response` and the mediator templates of :mod:`cevnsfit.templates` work unchanged.

**Likelihood.**  Extended binned Poisson over the 81 bins of each selected run, runs combined, with nuisances
(shared by the runs): the 8B flux (free for the measurement; SNO prior in mediator fits), the AC, ER and RG
normalisations (Gaussian pulls, data/xenonnt.yaml) and tly, tqy (unit Gaussians) by cardinal-cubic-spline
morphing on the grid (:mod:`cevnsfit.stats.morphing`).

A composition (:mod:`.base`): the ``solar_8b`` source, natural xenon (9 isotopes), the ``mono_templates`` energy
response (the release's efficiency rows times each run's exposure), an ``integrated`` time response (the Sun is
steady) and a ``morphed_poisson`` likelihood.  The release reader and its cache are :mod:`.xenonnt_release`; this
module adds the flux measurement that ``cevnsfit sm`` reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io.datadir import resolve_collection
from ..kernel import DetectorResponse, build_kernel
from ..parameters import DEFAULT, Parameters
from ..responses import make_response
from ..responses.mono import FoldedMatrix
from ..sources import make_source
from ..sources.base import Source
from ..sources.sun import WINTER_FILE
from ..targets import Target, material_targets
from .base import Experiment, PhysicsOptions
from .likelihoods import MorphedPoissonLikelihood
from .registry import register_experiment
from .xenonnt_release import GRID, MONO_KEV, N_BINS, RUNS, load_release

NAME = "xenonnt"
LABEL = "XENONnT 8B (SR0+SR1+SR2)"
BACKGROUNDS = ("er", "rg")  # shared by the runs; the accidental coincidences (ac) have one component per run
ISOTOPES = ("Xe124", "Xe126", "Xe128", "Xe129", "Xe130", "Xe131", "Xe132", "Xe134", "Xe136")
FILES = {**{f"{r}_events": f"data/{r}.csv" for r in RUNS}, **{f"{r}_binning": f"binning/{r}.yaml" for r in RUNS}}


@dataclass(frozen=True)
class XenonOptions(PhysicsOptions):
    """Analysis choices: runs, 8B flux reference (``sno``/``ssm``) and the 0.01 keV recoil step of the folding."""

    runs: tuple = RUNS
    flux: str = "sno"
    spectrum: str = "winter"  # the 8B spectrum: Winter et al. 2006 (the standard) or "analytic" (sources/sun.py)
    b8_shape: float = 0.0  # the spectrum's shape, in sigma of Winter et al.'s published band (a nuisance)
    cache: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        runs = (tuple(r.strip() for r in self.runs.split(",") if r.strip()) if isinstance(self.runs, str)
                else tuple(self.runs))
        if not runs or len(set(runs)) != len(runs) or any(r not in RUNS for r in runs):
            raise InputError(f"XENONnT runs must be distinct names among {', '.join(RUNS)}; got {', '.join(map(str, runs)) or 'none'}")
        object.__setattr__(self, "runs", tuple(r for r in RUNS if r in runs))  # release order
        if self.flux not in ("sno", "ssm"):
            raise InputError(f"XENONnT option flux='{self.flux}' is not one of sno, ssm")


EFFICIENCY_BOUNDS = (0.5, 1.5)  # the signal efficiency's range in the collaboration's statistical model


def run_slicer(runs: tuple):
    """``run_slice(run)``: the bins of ``run`` in the (runs x 81) bins of an experiment of these ``runs``."""
    def run_slice(run: str) -> slice:
        i = runs.index(run)
        return slice(i * N_BINS, (i + 1) * N_BINS)
    return run_slice


def _signal(experiment, computed: np.ndarray) -> np.ndarray:
    """Kernel counts (..., n_grid n_bins, 1) -> the cost's signal template (..., n_grid, n_bins)."""
    c = np.asarray(computed, dtype=float)
    return c.reshape(*c.shape[:-2], len(GRID) ** 2, N_BINS * len(experiment.runs))


@register_experiment(NAME, label="XENONnT", collection="xenonnt_cevns", files=FILES, fetch=("xenonnt", "b8_winter"),
                     citation="XENON, PRL 133 (2024) 191002, arXiv:2408.02877; arXiv:2604.06002", options=XenonOptions)
def load(data_dir=None, params: Parameters = DEFAULT, options: XenonOptions | None = None, **kwargs) -> Experiment:
    """The XENONnT 8B data set (module docstring); ``kwargs``: :class:`XenonOptions`."""
    o = options if options is not None else XenonOptions(**kwargs)
    p = params
    root = resolve_collection("xenonnt_cevns", data_dir)
    runs = o.runs
    release = load_release(root, runs, o.cache)
    livetimes = {r: float(p[f"xenonnt.livetime_{r}"]) for r in runs}
    for r, lt in livetimes.items():
        if not lt > 0:
            raise InputError(f"XENONnT livetime of {r} must be positive")
    observed = np.concatenate([release[r]["observed"] for r in runs])
    # accidental coincidences: one normalisation per run (the collaboration's statistical model), so one template
    # per run, zero on the other runs' bins
    backgrounds = {f"ac_{r}": np.concatenate([release[q]["ac"] * livetimes[q] if q == r else np.zeros(N_BINS)
                                               for q in runs]) for r in runs}
    backgrounds.update({
        "er": np.concatenate([release[r]["er"] * livetimes[r] for r in runs]),
        "rg": np.concatenate([release[r]["rg"] * livetimes[r] for r in runs], axis=1),  # (49, n_bins)
    })
    # efficiency rows (grid, run, bin) x nodes, times the run's exposure in t yr
    eff = np.stack([release[r]["mono"] * livetimes[r] for r in runs], axis=1)  # (49, runs, 46, 81)
    rows = np.ascontiguousarray(eff.transpose(0, 1, 3, 2).reshape(-1, len(MONO_KEV)))
    composition = {n: p[f"nuclei.{n}.abundance"] for n in ISOTOPES}
    targets = material_targets(composition, 1000.0, p, p["xenonnt.molar_mass"])  # per tonne: exposures in t yr
    # the signal's normalisation carries the 8B flux (SNO) and the signal efficiency, independent factors
    pulls = {"cevns": ("xenonnt.sigma_b8", "xenonnt.sigma_signal_efficiency"),
             **{z: f"xenonnt.sigma_{z}" for z in backgrounds}}
    likelihood = MorphedPoissonLikelihood(("cevns", *backgrounds), pulls, (GRID, GRID), ("tly", "tqy"))
    table = None
    if o.spectrum == "winter":  # the fetched Winter et al. table (data set b8_winter), or the one in data_dir's map
        table = resolve_collection("solar", data_dir if isinstance(data_dir, Mapping) else None) / WINTER_FILE
    source = make_source("solar_8b", p, flux=o.flux, spectrum=o.spectrum, shape_shift=o.b8_shape, table=table)
    return Experiment(NAME, LABEL, params=p, options=o, source=source,
                      targets=targets, energy=make_response("energy", "mono_templates", rows=rows, nodes=MONO_KEV),
                      time=make_response("time", "integrated"), likelihood=likelihood, observed=observed,
                      backgrounds=backgrounds, signal=_signal, summary=sm_summary, table=sm_table, data_dir=root,
                      files=FILES, collection="xenonnt_cevns",
                      extras={"release": release, "runs": runs, "livetimes": livetimes, "efficiency_rows": rows,
                              "n_events": {r: int(release[r]["n_events"]) for r in runs},
                              "n_bins": N_BINS * len(runs), "n_grid": len(GRID) ** 2,
                              "grid_index_nominal": likelihood.nominal_index, "spectra_kind": "observables",
                              "run_slice": run_slicer(runs), "b8_table": table})


def sm_signal(experiment) -> np.ndarray:
    """SM 8B CEvNS expectation (n_grid, n_bins) at the reference flux."""
    return experiment.signal(experiment.kernel.sm_counts())


def shape_shift_signal(experiment) -> np.ndarray | None:
    """d(signal)/d(b8_shape): the SM expectation with the 8B spectrum one sigma further along Winter et al.'s band,
    minus the nominal one -- exact per sigma, since the counts are linear in the spectrum (the band integrates to
    zero: its renormalisation changes the shape by < 1e-5).  The same detector response, another source.  None for
    the analytic spectrum, which has no band."""
    o = experiment.options
    if o.spectrum != "winter":
        return None
    shifted = make_source("solar_8b", experiment.params, flux=o.flux, spectrum="winter", shape_shift=o.b8_shape + 1.0,
                          table=experiment.b8_table)
    kernel = build_kernel(experiment.kernel.detector, shifted, o.form_factor, o.couplings, o.kinematics,
                          experiment.params)
    return experiment.signal(kernel.sm_counts()) - sm_signal(experiment)


def best_fit(experiment):
    """The SM fit with the 8B flux free (the measurement): a FitResult with the fitted counts per component."""
    return experiment.cost(free_signal=True).fit(sm_signal(experiment))


def flux_weighted_cross_section_cm2(experiment) -> float:
    """SM <sigma> = int phi(E) sigma(E) dE / int phi(E) dE per xenon nucleus (abundance-weighted), all recoils, cm^2.

    The quantity XENONnT quotes (PRL 133 (2024) 191002): the CEvNS cross section integrated over recoils and
    averaged over the oscillated 8B spectrum; from the kernel's recoil-grid ingredients with no detector response.
    """
    exp = experiment
    src = exp.source()
    k = exp.kernel
    atoms = sum(tg.count for tg in k.detector.targets.values())
    total = 0.0
    for name, tg in k.detector.targets.items():
        t = k.detector.recoil_mev[name]
        w = np.full(t.size, t[1] - t[0])
        w[0] = w[-1] = 0.5 * (t[1] - t[0])
        # per unit fluence and nucleus: V / (count x fluence) without the detector = prefactor x kin, times Q^2
        dense_one = FoldedMatrix(np.ones((1, 1)), w[None, :])
        det = DetectorResponse({name: Target(tg.nucleus, 1.0)}, {name: t}, {name: dense_one},
                               {f: np.ones(1) for f in src.flavours})
        kern = build_kernel(det, Source(src.name, 1.0, src.spectra, None, src.flux_per_cm2_s), exp.options.form_factor,
                            exp.options.couplings, exp.options.kinematics, exp.params)
        total += tg.count / atoms * float(kern.sm_counts().sum())
    return total


# ---- the SM measurement (``cevnsfit sm --experiment xenonnt``) ------------------------------------------
def _crossing(f, lo: float, hi: float) -> float:
    from scipy.optimize import brentq

    return float(brentq(f, lo, hi, xtol=1e-6))


def sm_summary(experiment) -> dict:
    """The ``sm --experiment xenonnt --json`` document: counts, 8B flux fit, 1-sigma interval, significance.

    Flux: the signal normalisation profiled with no prior on the flux; the signal efficiency profiled with its
    prior (``xenonnt.sigma_signal_efficiency``, bounded to [0.5, 1.5] as in the collaboration's model: it multiplies
    the signal like the flux, so it widens the flux interval without moving the best fit); the 8B spectrum's shape
    (``b8_shape``, unit Gaussian in sigma of Winter et al.'s band) profiled too.  Asymptotic Delta chi^2 = 1
    interval, normalisation kept >= 0.  Significance: sqrt(q0), q0 = chi^2(background only) - chi^2_min, one-sided
    (0 for a deficit).
    """
    from scipy.optimize import minimize, minimize_scalar

    exp = experiment
    s0 = sm_signal(exp)
    ds = shape_shift_signal(exp)
    phi_ref = exp.source().flux_per_cm2_s
    free = exp.cost(free_signal=True)
    shape_range = (-3.0, 3.0)  # the band's sigma: the spectrum stays positive well beyond

    def free_at(theta):
        return float(free(s0 + theta * ds)) + theta * theta

    theta_hat = 0.0
    if ds is not None:
        res = minimize_scalar(free_at, bounds=shape_range, method="bounded", options={"xatol": 1e-7})
        theta_hat = float(res.x) if res.fun < free_at(0.0) else 0.0
    s = s0 if ds is None else s0 + theta_hat * ds
    chi_min, p, _ = free.profile(s[None])
    chi_min = float(chi_min[0]) + theta_hat**2
    a_hat = float(p[0, 0])
    chi_bkg = float(free(np.zeros_like(s)))
    q0 = max(chi_bkg - chi_min, 0.0)
    fixed = exp.cost(fixed_signal=True)
    sigma_eff = exp.params["xenonnt.sigma_signal_efficiency"]

    def delta(a):
        if ds is None:
            def with_efficiency(eff):
                return float(fixed(a * eff * s0)) + ((eff - 1.0) / sigma_eff) ** 2

            res = minimize_scalar(with_efficiency, bounds=EFFICIENCY_BOUNDS, method="bounded", options={"xatol": 1e-7})
            return min(float(res.fun), with_efficiency(1.0)) - chi_min - 1.0

        def with_both(x):
            eff, theta = x
            return float(fixed(a * eff * (s0 + theta * ds))) + ((eff - 1.0) / sigma_eff) ** 2 + theta * theta

        res = minimize(with_both, np.array([1.0, theta_hat]), method="L-BFGS-B",
                       bounds=[EFFICIENCY_BOUNDS, shape_range], options={"ftol": 1e-13, "gtol": 1e-9})
        return min(float(res.fun), with_both((1.0, theta_hat))) - chi_min - 1.0

    lo = 0.0 if delta(0.0) <= 0 else _crossing(delta, 0.0, a_hat)
    hi_bracket = max(2.0 * a_hat, 1.0)
    while delta(hi_bracket) < 0 and hi_bracket < 1e3:
        hi_bracket *= 2.0
    hi = _crossing(delta, a_hat, hi_bracket)
    pred = exp.sm_prediction()
    sigma_sm = flux_weighted_cross_section_cm2(exp)
    per_run = {}
    for r in exp.runs:
        sl = exp.run_slice(r)
        per_run[r] = {"observed": int(exp.n_events[r]), "observed_in_bins": int(exp.observed[sl].sum()),
                      "expected_background": float(sum(pred[z][sl].sum() for z in exp.components[1:])),
                      "expected_signal": float(pred["cevns"][sl].sum())}
    return {
        "runs": list(exp.runs),
        "observed": int(sum(exp.n_events.values())),
        "expected_background": float(sum(v["expected_background"] for v in per_run.values())),
        "expected_signal": float(pred["cevns"].sum()),
        "b8_flux_reference": phi_ref,
        "b8_shape_best_fit_sigma": theta_hat,
        "b8_flux_best_fit": a_hat * phi_ref,
        "b8_flux_interval_1sigma": [lo * phi_ref, hi * phi_ref],
        "significance_sigma": float(np.sqrt(q0)) if a_hat > 0 else 0.0,
        # flux and cross section enter as a product: at the reference flux, the signal scale measures <sigma>
        "flux_weighted_cross_section_sm_cm2": sigma_sm,
        "flux_weighted_cross_section_best_fit_cm2": a_hat * sigma_sm,
        "flux_weighted_cross_section_interval_1sigma_cm2": [lo * sigma_sm, hi * sigma_sm],
        "per_run": per_run,
    }


def sm_table(name: str, summary: dict) -> tuple[str, list[str], list[list[str]], str]:
    """(title, columns, rows, footer) of the human-readable ``cevnsfit sm`` table."""
    s = summary
    lo, hi = s["b8_flux_interval_1sigma"]
    title = (f"{name}: {'+'.join(s['runs'])}, observed {s['observed']} events, "
             f"background-only rejected at {s['significance_sigma']:.2f} sigma")
    cols = ["run", "observed [events]", "expected background [events]", "expected 8B signal [events]"]
    rows = [[r, str(v["observed"]), f"{v['expected_background']:.2f}", f"{v['expected_signal']:.2f}"]
            for r, v in s["per_run"].items()]
    rows.append(["total", str(s["observed"]), f"{s['expected_background']:.2f}", f"{s['expected_signal']:.2f}"])
    foot = (f"8B flux best fit {s['b8_flux_best_fit']:.3g} cm^-2 s^-1, 1 sigma [{lo:.3g}, {hi:.3g}] "
            f"(reference {s['b8_flux_reference']:.3g})")
    return title, cols, rows, foot
