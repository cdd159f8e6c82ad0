"""The cost contract (see :mod:`cevnsfit.stats.chi2` for the whole picture): :class:`Cost`, :class:`BinnedCost`,
:class:`ReplicaCost`, the fit result, and the named-parameter machinery they share."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping  # (not typing's: its isinstance is ~10x slower; ``_signal`` runs per call)
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

SIGNAL = "cevns"
"""The component name of the CEvNS signal in every cost (the template a model replaces)."""


@dataclass
class FitResult:
    """Profiled fit of one signal template: chi^2, parameter values by name (``norm_<component>``: eta = a - 1;
    ``shape_<systematic>``, ``tly``, ``tqy``: in units of their sigma) and fitted counts per component."""

    chi2: float
    nuisances: dict
    fitted: dict  # component -> fitted counts array (n_energy, n_time)
    n_bins: int

    def totals(self) -> dict:
        return {z: float(v.sum()) for z, v in self.fitted.items()}


def _as_batch(signal: np.ndarray, shape: tuple) -> tuple[np.ndarray, bool]:
    s = np.asarray(signal, dtype=float)
    if s.shape == shape:
        return s[None, ...], True
    if s.ndim == 3 and s.shape[1:] == shape:
        return s, False
    raise InputError(f"signal template has shape {s.shape}, expected {shape} or (n, *{shape})")


def linear_signals(coefficients: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Signals (n, *shape) = coefficients (n, K) @ basis (K, *shape)."""
    basis = np.asarray(basis, dtype=float)
    out = np.asarray(coefficients, dtype=float) @ basis.reshape(basis.shape[0], -1)
    return out.reshape(-1, *basis.shape[1:])


def dlnd(d: np.ndarray) -> np.ndarray | float:
    """Constant part of the Poisson deviance, sum[D ln D - D] over the last axis (0 ln 0 = 0)."""
    return np.sum(np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0), axis=-1) - d.sum(axis=-1)


def dlnd_rows(d: np.ndarray) -> np.ndarray:
    """``dlnd`` per row (n, bins) -> (n,); a row equal to the one before it (a replica's points along a line)
    reuses its value instead of taking its logarithms again."""
    new = np.ones(d.shape[0], dtype=bool)
    new[1:] = np.any(d[1:] != d[:-1], axis=1)
    return dlnd(d[new])[np.cumsum(new) - 1]


def c_array(a, dtype=float) -> np.ndarray:
    """``a`` as the kernels take it: C-contiguous and writable, so that every call has the argument types that
    :func:`cevnsfit.stats.compiled.load` compiled (numba types a read-only array apart)."""
    out = np.ascontiguousarray(a, dtype=dtype)
    return out if out.flags.writeable else out.copy()


class Cost(ABC):
    """The contract of every cost: ``cost(signal)`` is the chi^2 profiled over the cost's nuisances (a float, or an
    (n,) array for a batch), ``cost.fit(signal)`` the profiled fit; ``name`` identifies the data set in a
    :class:`~cevnsfit.stats.sum.SumCost`; ``n_bins`` counts its bins.  Costs add, and ``sum(costs)`` works
    (``0 + cost`` is the cost).

    Named parameters: ``parameters`` (names in the cost's order), ``priors`` (name -> (centre, sigma): sigma None
    for a free parameter, 0 for one fixed at its centre without a prior term), ``fixed`` (name -> value of the
    fixed ones) and :meth:`fix`.
    """

    name: str = "cost"
    n_bins: int = 0

    @abstractmethod
    def __call__(self, signal) -> np.ndarray | float:
        """Profiled chi^2 of ``signal`` (one template, a batch, or a mapping name -> template)."""

    @abstractmethod
    def fit(self, signal):
        """The profiled fit at ``signal`` (nuisances and fitted components)."""

    @property
    @abstractmethod
    def parameters(self) -> tuple:
        """The parameters' names, in the cost's order."""

    @property
    @abstractmethod
    def priors(self) -> dict:
        """name -> (centre, sigma) of each parameter's Gaussian prior (sigma None: free; 0: fixed, no term)."""

    @abstractmethod
    def fix(self, values: Mapping[str, float]) -> "Cost":
        """A new cost of the same kind with the parameters ``values`` names fixed at those values."""

    def _check_names(self, values: Mapping[str, float]) -> None:
        unknown = [k for k in values if k not in self.parameters]
        if unknown:
            raise InputError(f"{self.name}: unknown parameter(s) {', '.join(map(str, unknown))}; the parameters are "
                             f"{', '.join(self.parameters)}")

    def __add__(self, other: "Cost"):
        if not isinstance(other, Cost):
            return NotImplemented
        from .sum import SumCost

        return SumCost([self, other])

    def __radd__(self, other) -> "Cost":
        if isinstance(other, (int, float)) and other == 0:  # the start value of sum()
            return self
        return NotImplemented


class BinnedCost(Cost):
    """A cost over one data set's bins: observed counts, component templates (the signal ``"cevns"`` first) and
    one parameter per component normalisation (``norm_<component>``, eta = a - 1) followed by the cost's shape
    parameters.  :meth:`profile` computes the chi^2 of a batch of signal templates (returning the chi^2 first).

    A subclass sets ``components``, ``shape_params`` (names of its other parameters), ``_sigmas`` (one pull width
    per parameter: None free, 0 fixed at the centre, else the width), ``_centres`` (pull centres) and ``_fixed``
    (name -> value) and implements ``_pack`` (the kernel's arrays of the current fixed set).
    """

    components: tuple = ()
    shape_params: tuple = ()

    @abstractmethod
    def profile(self, signal: np.ndarray):
        """(chi^2 (n,), ...) for a batch of signal templates (n, *shape), nuisances profiled."""

    def _signal(self, signal):
        return signal[self.name] if isinstance(signal, Mapping) else signal

    def __call__(self, signal) -> np.ndarray | float:
        """Profiled chi^2 of one signal template (float) or of a batch (n,) -- ``profile`` does the work."""
        batch, single = _as_batch(self._signal(signal), self.shape)
        chi = self.profile(batch)[0]
        return float(chi[0]) if single else chi

    # ---- named parameters -------------------------------------------------------------------------------
    def _init_parameters(self, sigmas: Mapping, shape_sigmas: dict, centres: Mapping | None) -> None:
        """Pull widths from ``sigmas`` (component -> None, 0 or width) and ``shape_sigmas`` (shape name -> 1 or 0),
        centres from ``centres`` (name -> value, default 0); sigma 0 = fixed at the centre."""
        missing = [z for z in self.components if z not in sigmas]
        if missing:
            raise InputError(f"{self.name}: no pull width for {', '.join(missing)}")
        self._sigmas = {**{f"norm_{z}": sigmas[z] for z in self.components}, **shape_sigmas}
        for k, s in self._sigmas.items():
            if s is not None and not (np.isfinite(s) and s >= 0):
                raise InputError(f"{self.name}: the pull width of {k} must be None (free), 0 (fixed) or > 0, got {s}")
        self._centres = dict.fromkeys(self._sigmas, 0.0)
        if centres:
            self._check_names(centres)
            self._centres.update({k: float(v) for k, v in centres.items()})
        self._fixed = {k: self._centres[k] for k, s in self._sigmas.items() if s == 0}

    @property
    def parameters(self) -> tuple:
        return tuple(f"norm_{z}" for z in self.components) + tuple(self.shape_params)

    @property
    def priors(self) -> dict:
        return {k: (self._centres[k], None if s is None else float(s)) for k, s in self._sigmas.items()}

    @property
    def fixed(self) -> dict:
        """name -> value of the fixed parameters (eta for a normalisation, sigma units for a shape)."""
        return dict(self._fixed)

    @property
    def pull_sigmas(self) -> np.ndarray:
        """(n_parameters,) the pull widths of the constrained parameters, the units of the pull centres of
        replicas; inf for a parameter with no prior term (free, or fixed at its centre): it has no centre."""
        return np.array([np.inf if s is None or s == 0 else float(s) for s in self._sigmas.values()])

    def _inv_var(self) -> np.ndarray:
        """1/sigma^2 per parameter (0 where no prior term)."""
        return np.array([0.0 if s is None or s == 0 else 1.0 / float(s) ** 2 for s in self._sigmas.values()])

    def _centre_values(self) -> np.ndarray:
        """The pull centres per parameter (eta for a normalisation, sigma units for a shape)."""
        return np.array(list(self._centres.values()))

    def _fixed_values(self) -> tuple[np.ndarray, np.ndarray]:
        """(fixed (n_parameters,) bool, the fixed values there and 0 elsewhere; eta, sigma units)."""
        return (np.array([k in self._fixed for k in self._sigmas]),
                np.array([self._fixed.get(k, 0.0) for k in self._sigmas]))

    def _norm_offset(self) -> np.ndarray:
        """1 for a normalisation, 0 for a shape parameter: a = eta + 1 in the kernels of factors."""
        return (np.arange(len(self._sigmas)) < len(self.components)).astype(float)

    def _check_value(self, name: str, value: float) -> None:
        """A fixed value must be finite; a subclass adds its bounds."""
        if not np.isfinite(value):
            raise InputError(f"{self.name}: {name} must be fixed at a finite value, got {value}")

    def fix(self, values: Mapping[str, float]) -> "BinnedCost":
        """A new cost of the same kind with the parameters named in ``values`` fixed there (eta = a - 1 for a
        ``norm_*``, sigma units for a shape); its chi^2 keeps their prior terms at those values, so a scan of a
        fixed parameter is its profile likelihood with the constraint.  Unknown names raise InputError."""
        self._check_names(values)
        for k, v in values.items():
            self._check_value(k, float(v))
        new = copy.copy(self)
        new._fixed = {**self._fixed, **{k: float(v) for k, v in values.items()}}
        new._pack()
        return new

    @abstractmethod
    def _pack(self) -> None:
        """(Re)build the arrays the kernel takes from the data and the current fixed set."""

    def scaled(self, component: str, factor: float) -> "BinnedCost":
        """A new cost of the same kind whose background ``component`` template is multiplied by ``factor`` >= 0 (a
        shared normalisation: :class:`~cevnsfit.stats.sum.SharedFactor`); the signal is the caller's to scale."""
        if component not in self.components[1:]:
            raise InputError(f"{self.name}: no background component {component!r} (backgrounds: "
                             f"{', '.join(self.components[1:])})")
        new = copy.copy(self)
        new._scale_background(self.components.index(component), float(factor))
        new._pack()
        return new

    def _scale_background(self, i: int, factor: float) -> None:
        """Multiply component i's template (a background, i >= 1) by ``factor``, on this (copied) cost."""
        self.backgrounds = self.backgrounds.copy()
        self.backgrounds[i - 1] *= factor

    def _nuisances(self, theta: np.ndarray) -> dict:
        """FitResult.nuisances from one row of parameter values (eta, sigma units); a fixed parameter reports its
        value as given (the kernels hold a = 1 + eta, which need not give back eta's last bit)."""
        return {k: self._fixed.get(k, float(v)) for k, v in zip(self.parameters, theta)}

    # ---- batches ----------------------------------------------------------------------------------------
    def reduce(self, signal: np.ndarray) -> np.ndarray:
        """The signal on the bins the chi^2 reads (linear; ``cost(reduce(s)) == cost(s)``): all of them here; a cost
        that can drop or merge bins (:class:`cevnsfit.stats.morphing.MorphedPoissonChi2`) overrides it."""
        return signal

    def profile_warm(self, signal: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """(chi^2 (n,), a start for the next batch): a cost with an iterative profile uses ``start`` (the state a
        neighbouring batch returned) as a warm start; here the profile is direct and the state None."""
        return self(signal), None

    def profile_linear(self, coefficients: np.ndarray, basis: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """``profile_warm`` of the signals coefficients @ basis: ``coefficients`` (n, K), ``basis`` (K, *shape) --
        e.g. a mediator's templates N0 + g^2 N1 + g^4 N2 along a line of couplings.  A cost may use the basis to
        form its template-side products once instead of once per signal (:class:`GaussianChi2` does)."""
        return self.profile_warm(linear_signals(coefficients, basis), start)

    def profile_lines(self, coefficients: np.ndarray, bases: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """``profile_linear`` of the same ``coefficients`` (n, K) on each basis of ``bases`` (R, K, *shape) -- a
        mediator's lines of couplings at R neighbouring masses: (chi^2 (R, n), the start for the next block).
        Here line by line, each warm-started from the fits of the lines before (:meth:`_next_start`); a cost with
        a direct profile does all R at once (:class:`GaussianChi2`: R times fewer calls)."""
        out = np.empty((len(bases), np.shape(coefficients)[0]))
        before = None
        for r, basis in enumerate(bases):
            out[r], fitted = self.profile_linear(coefficients, basis, self._next_start(before, start))
            before, start = start, fitted
        return out, start

    def _next_start(self, before, last):
        """The warm start of a line from the fits of the two lines before it (``before`` None for the second
        line; both None for the first): here the last one's."""
        return last

    def line(self, basis: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """chi^2 (n,) of the signals coefficients (n, K) @ ``basis`` (K, *shape) as a function of the coefficients,
        for many calls on one basis (a limit refined along a line of couplings): the closed form where the profile
        is one (:meth:`quadratic`), else ``profile_linear`` per call."""
        form = self.quadratic(np.asarray(basis, dtype=float)[None])
        if form is not None:
            return lambda coefficients: form(coefficients)[0]
        return lambda coefficients: self.profile_linear(coefficients, basis)[0]

    def quadratic(self, bases: np.ndarray):
        """The profile of the signals in R bases (R, K, *shape) as a closed form in their coefficients
        (:class:`~cevnsfit.stats.quadratic.QuadraticProfile`), or None: here none (an iterative fit);
        :class:`~cevnsfit.stats.gaussian.GaussianChi2` has one on a single sign branch."""
        return None


class ReplicaCost(BinnedCost):
    """The replica (toy) half of the :class:`BinnedCost` contract, what :mod:`cevnsfit.stats.toys` calls: a cost
    that implements it can throw replicated data sets (``sample``) and profile them (``replicas``,
    ``replicas_grid``) at the counts and nuisances a signal favours (``expected``, ``nominal``).  ``pull_sigmas``
    (n_parameters,) gives the units of the pull centres.  Toys and ``cevnsfit fc`` recognise a cost that can
    throw replicas by this type, not by a flag.
    """

    @abstractmethod
    def sample(self, expected: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` replicated data sets (n, n_bins) drawn about ``expected`` (n_bins,) as the chi^2 assumes them."""

    @abstractmethod
    def counts(self, signal: np.ndarray, theta: np.ndarray) -> dict:
        """component -> expected counts (n_bins,) at one signal template and parameter values ``theta``
        (n_parameters,: eta for a normalisation, sigma units for a shape)."""

    def linear_factors(self, basis: np.ndarray):
        """Whatever ``replicas_linear`` can precompute from a signal basis (K, *shape) alone; None: nothing."""
        return None

    def replicas_linear(self, coefficients: np.ndarray, basis: np.ndarray, observed: np.ndarray,
                        centres: np.ndarray | None = None, factors=None) -> np.ndarray:
        """``replicas`` of the signals coefficients (n, K) @ basis (K, *shape); ``factors``: ``linear_factors``."""
        return self.replicas(linear_signals(coefficients, basis), observed, centres)

    def _replica_rows(self, n: int, observed, centres) -> tuple[np.ndarray, np.ndarray]:
        """(data (n, n_bins), pull centres (n, n_parameters)) checked."""
        d = np.asarray(observed, dtype=float).reshape(n, self.n_bins)
        c = np.zeros((n, self.pull_sigmas.size)) if centres is None else np.asarray(centres, dtype=float)
        if c.shape != (n, self.pull_sigmas.size):
            raise InputError(f"pull centres have shape {c.shape}, expected ({n}, {self.pull_sigmas.size})")
        return d, c

    def replicas(self, signal: np.ndarray, observed: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
        """Profiled chi^2 (n,) of replicated data sets: row k pairs signal[k] with observed[k] (n, n_bins) and
        pull centres[k] (n, n_parameters, in the units of ``pull_sigmas``; None = the nominal 0), which shift the
        cost's own centres.  The same chi^2 as ``__call__``, with the observed counts and the auxiliary
        measurements of that row."""
        s = np.asarray(signal, dtype=float)
        n = s.shape[0]
        d, c = self._replica_rows(n, observed, centres)
        return self.profile(s.reshape(n, *self.shape), observed=d, centres=c)[0]

    def grid_factors(self, signals: np.ndarray):
        """Whatever ``replicas_grid`` can precompute from the templates alone (kept by a toy line and passed back
        as ``factors``); None: nothing."""
        return None

    def replicas_grid(self, signals: np.ndarray, observed: np.ndarray, centres: np.ndarray | None = None,
                      factors=None) -> np.ndarray:
        """Profiled chi^2 (n, k) of replica r (observed (n, n_bins), centres (n, n_parameters)) at signal template
        j (signals (k, *shape)): ``replicas`` of every pair, one batched call (a cost may do it faster)."""
        k = signals.shape[0]
        n = np.asarray(observed).shape[0]
        s = np.broadcast_to(signals, (n, *signals.shape)).reshape(n * k, *signals.shape[1:])
        c = None if centres is None else np.repeat(centres, k, axis=0)
        return self.replicas(s, np.repeat(observed, k, axis=0), c).reshape(n, k)

    def _profiled(self, signal: np.ndarray) -> tuple[float, np.ndarray]:
        """(chi^2, parameter values: eta, sigma units) profiled for one signal template on the observed data
        (``profile`` returns them second; a cost whose profile returns other units overrides this)."""
        out = self.profile(_as_batch(self._signal(signal), self.shape)[0][:1])
        return float(out[0][0]), np.asarray(out[1])[0]

    def fit(self, signal) -> FitResult:
        chi, theta = self._profiled(signal)
        fitted = {z: v.reshape(self.observed.shape) for z, v in self.counts(self._signal(signal), theta).items()}
        return FitResult(chi, self._nuisances(theta), fitted, self.n_bins)

    def expected(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(expected counts per bin (n_bins,), nuisance values (n_parameters,) in the units of the pull centres)
        profiled for one signal template: the point in nuisance space that the data favour for this signal (toys
        are thrown there)."""
        _, theta = self._profiled(signal)
        return sum(self.counts(signal, theta).values()), np.array(list(self._nuisances(theta).values()))

    def nominal(self, signal: np.ndarray) -> np.ndarray:
        """Expected counts per bin at the nominal nuisances: every parameter at its pull centre, the fixed ones at
        their values."""
        mask, value = self._fixed_values()
        return sum(self.counts(signal, np.where(mask, value, self._centre_values())).values())
