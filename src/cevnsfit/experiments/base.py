"""The Experiment: a composition of a source, a target, responses and a likelihood, with its data.

    counts_ij = sum_flavour time_j(flavour) sum_nucleus  energy_i(T') x dsigma/dT'(E, T'; nucleus) x source(E)

* **source** (:mod:`cevnsfit.sources`): per-flavour spectra, fluence, arrival times -- the SNS, the Sun, a reactor;
* **target** (:mod:`cevnsfit.targets`): the nuclei and their number in the fiducial mass;
* **responses** (:mod:`cevnsfit.responses`): an energy response (recoil -> reconstructed-energy bins, with the
  recoil grid it needs) and a time response (flavour -> time bins);
* **likelihood** (:mod:`.likelihoods`): the cost's kind (Poisson, Gaussian, morphed templates) and its named
  nuisances with their priors from the cited parameters;
* **data**: observed counts and background templates on the same bins.

Nothing here assumes a particular source or detector.  An experiment module (or a declaration file) builds the
parts and hands them over; a part with behaviour of its own -- the signal map of a release that fits templates on a
nuisance grid, the summary of a flux measurement -- is passed as a hook, not written as a subclass.
Units: MeV inside; the bins' units are the responses' (``energy.unit``; time in us).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import InputError
from ..kernel import ResponseKernel, build_kernel, detector_response
from ..parameters import DEFAULT, Parameters
from ..physics.cross_section import COUPLING_SCHEMES, KINEMATICS
from ..physics.form_factors import FORM_FACTORS

__all__ = ["PhysicsOptions", "Experiment", "bin_events", "relative_delta", "sm_summary", "sm_table"]


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


def bin_events(x: np.ndarray, y: np.ndarray, x_edges, y_edges) -> np.ndarray:
    """2-D histogram with left-closed bins [e_k, e_k+1) on both axes (events outside are dropped)."""
    x_edges, y_edges = np.asarray(x_edges, float), np.asarray(y_edges, float)
    ix = np.searchsorted(x_edges, x, side="right") - 1
    iy = np.searchsorted(y_edges, y, side="right") - 1
    ok = (ix >= 0) & (ix < x_edges.size - 1) & (iy >= 0) & (iy < y_edges.size - 1)
    out = np.zeros((x_edges.size - 1, y_edges.size - 1))
    np.add.at(out, (ix[ok], iy[ok]), 1.0)
    return out


def relative_delta(varied: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """(varied - nominal) / nominal per bin, 0 where the nominal template is empty."""
    safe = np.where(nominal != 0, nominal, 1.0)
    return np.where(nominal != 0, (varied - nominal) / safe, 0.0)


class Experiment:
    """A composed experiment (module docstring).

    Required parts: ``name``, ``label``, ``params``, ``options`` (:class:`PhysicsOptions` or a subclass), ``source``
    (a :class:`~cevnsfit.sources.base.Source`), ``targets`` ({nucleus: Target}), ``energy`` and ``time`` (responses),
    ``likelihood`` (:mod:`.likelihoods`), ``observed`` and ``backgrounds`` ({component: template}; a template may be
    a callable of the experiment, evaluated on first use -- a background proportional to the signal).  Optional:
    ``signal`` (computed counts -> the cost's signal template; identity), ``summary`` / ``table`` (the ``cevnsfit
    sm`` document and its table; the profiled SM fit by default), ``data_dir`` and ``files`` (key -> path relative
    to it), ``collection`` (its folder of the data root), and any extra attribute the experiment's own code reads
    (``extras``).
    """

    def __init__(self, name: str, label: str, *, params: Parameters = DEFAULT, options: PhysicsOptions | None = None,
                 source, targets: dict, energy, time, likelihood, observed, backgrounds: dict,
                 signal: Callable | None = None, summary: Callable | None = None, table: Callable | None = None,
                 data_dir=None, files: dict | None = None, collection: str = "", extras: dict | None = None):
        self.name, self.label = name, label
        self.params = params
        self.options = options if options is not None else PhysicsOptions()
        self._source, self._targets = source, dict(targets)
        self.energy, self.time, self.likelihood = energy, time, likelihood
        self._observed, self._backgrounds = observed, dict(backgrounds)
        self._signal, self._summary, self._table = signal, summary or sm_summary, table or sm_table
        self.data_dir = data_dir
        self.files = dict(files or {})
        self.paths = {k: data_dir / v for k, v in self.files.items()} if data_dir is not None else {}
        self.collection = collection
        self._kernel: ResponseKernel | None = None
        for key, value in (extras or {}).items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        return f"<Experiment {self.name}: {self.label}>"

    # ---- the parts --------------------------------------------------------------------------------------
    def source(self):
        """The neutrino source as this detector sees it (:class:`~cevnsfit.sources.base.Source`)."""
        return self._source

    def targets(self) -> dict:
        """{nucleus name: Target}: the nuclei of the fiducial mass and their numbers."""
        return dict(self._targets)

    @property
    def components(self) -> tuple:
        """The likelihood's components: ``"cevns"`` first, then the backgrounds."""
        return self.likelihood.components

    @property
    def observed(self) -> np.ndarray:
        if callable(self._observed):
            self._observed = self._observed(self)
        return self._observed

    @property
    def backgrounds(self) -> dict:
        for key, value in self._backgrounds.items():
            if callable(value):
                self._backgrounds[key] = value(self)
        return self._backgrounds

    @property
    def shape(self) -> tuple[int, int]:
        """(energy bins, time bins) of the kernel's counts."""
        n_t = 1 if self.time.edges_us is None else self.time.edges_us.size - 1
        return self.energy.edges.size - 1, n_t

    @property
    def energy_edges(self) -> np.ndarray:
        return self.energy.edges

    @property
    def time_edges_us(self):
        return self.time.edges_us

    @property
    def energy_label(self) -> str:
        return self.energy.label

    @property
    def energy_unit(self) -> str:
        return self.energy.unit

    @property
    def sigmas(self) -> dict:
        """Relative normalisation uncertainties of the components (the pulls of the cost)."""
        return self.likelihood.sigmas(self.params)

    @property
    def nuisances(self) -> dict:
        """{``<experiment>.<name>``: (prior centre, prior width or None, citation)} of the likelihood's nuisances."""
        return {f"{self.name}.{k}": v for k, v in self.likelihood.nuisances(self.params).items()}

    # ---- predictions --------------------------------------------------------------------------------------
    @property
    def kernel(self) -> ResponseKernel:
        """The response kernel (built on first use, then kept)."""
        if self._kernel is None:
            o = self.options
            detector = detector_response(self._targets, self._source, self.energy, self.time, o.recoil_step_kev)
            self._kernel = build_kernel(detector, self._source, o.form_factor, o.couplings, o.kinematics, self.params)
        return self._kernel

    def signal(self, computed: np.ndarray) -> np.ndarray:
        """The cost's CEvNS template from computed counts (linear in them)."""
        return computed if self._signal is None else self._signal(self, computed)

    def sm_prediction(self) -> dict:
        """Predicted counts per component at the nominal nuisances."""
        return self.likelihood.prediction(self, self.signal(self.kernel.sm_counts()))

    def cost(self, **options):
        """The profiled cost of this experiment's data (``free_signal=True``: no prior on the CEvNS normalisation)."""
        return self.likelihood.cost(self, **options)

    def check_inputs(self) -> None:
        """Every input is read when the experiment is built (data, source files); nothing is left to check."""
        _ = (self.observed, self.backgrounds)

    def sm_summary(self) -> dict:
        """The ``cevnsfit sm`` document of this experiment."""
        return self._summary(self)

    def sm_table(self, summary: dict) -> tuple[str, list[str], list[list[str]], str]:
        """(title, columns, rows, footer) of the human-readable ``cevnsfit sm`` table."""
        return self._table(self.name, summary)


def sm_summary(experiment) -> dict:
    """Predicted and best-fit counts per component (events in the analysis region), observed count, chi^2_min, bins
    and nuisances: the profiled fit of the experiment's cost at its Standard-Model CEvNS prediction."""
    pred = experiment.sm_prediction()
    fit = experiment.cost().fit(pred["cevns"])
    return {
        "predicted": {z: float(pred[z].sum()) for z in experiment.components},
        "best_fit": {z: float(v) for z, v in fit.totals().items()},
        "observed": int(round(experiment.observed.sum())),
        "chi2_min": float(fit.chi2),
        "n_bins": int(fit.n_bins),
        "nuisances": fit.nuisances,
        "cevns_signal_strength": signal_strength(experiment, pred["cevns"]),
    }


def signal_strength(experiment, signal: np.ndarray) -> dict:
    """The CEvNS signal strength mu (observed / Standard-Model normalisation) fitted with no prior on it: best fit,
    1 sigma interval (profile Delta chi^2 = 1; mu >= 0) and the significance sqrt(Delta chi^2) of the rejection of
    mu = 0 (the background-only hypothesis, asymptotic, one parameter)."""
    from scipy.optimize import brentq

    free = experiment.cost(free_signal=True)
    best = free.fit(signal)
    mu_unbounded = 1.0 + best.nuisances["norm_cevns"]
    mu_hat = max(mu_unbounded, 0.0)
    at = lambda mu: free.fix({"norm_cevns": mu - 1.0})(signal)  # noqa: E731
    # mu >= 0 is the physical region: where the data prefer a deficit (a reactor-off spectrum, say), the interval is
    # measured from the minimum on the boundary, not from the unphysical one (which would leave no crossing at all)
    chi_min = at(0.0) if mu_unbounded < 0.0 else min(best.chi2, at(mu_hat))
    excess = lambda mu: at(mu) - chi_min - 1.0  # noqa: E731
    lo = 0.0 if mu_hat == 0.0 or excess(0.0) <= 0 else brentq(excess, 0.0, mu_hat, xtol=1e-6)
    hi_end = max(2.0 * mu_hat, 1.0)
    while excess(hi_end) <= 0 and hi_end < 1e4:
        hi_end *= 2.0
    hi = brentq(excess, mu_hat, hi_end, xtol=1e-6)
    q0 = max(free(np.zeros_like(signal)) - chi_min, 0.0)
    return {"best_fit": mu_hat, "interval_1sigma": [lo, hi], "significance_sigma": float(np.sqrt(q0)),
            "chi2_background_only": float(chi_min + q0)}


def sm_table(name: str, summary: dict) -> tuple[str, list[str], list[list[str]], str]:
    """(title, columns, rows, footer) of the ``cevnsfit sm`` table of a :func:`sm_summary` document."""
    r = summary
    title = f"{name}: observed {r['observed']} events, chi2_min = {r['chi2_min']:.2f} for {r['n_bins']} bins"
    rows = [[z, f"{r['predicted'][z]:.1f}", f"{r['best_fit'][z]:.1f}"] for z in r["predicted"]]
    rows.append(["total", f"{sum(r['predicted'].values()):.1f}", f"{sum(r['best_fit'].values()):.1f}"])
    foot = "nuisances: " + ", ".join(f"{k} = {v:+.3f}" for k, v in r["nuisances"].items())
    mu = r.get("cevns_signal_strength")
    if mu is not None:
        foot += (f"\nCEvNS signal strength (free): {mu['best_fit']:.3f} [{mu['interval_1sigma'][0]:.3f}, "
                 f"{mu['interval_1sigma'][1]:.3f}] (1 sigma); background only rejected at {mu['significance_sigma']:.2f} sigma")
    return title, ["component", "predicted [events]", "best fit [events]"], rows, foot
