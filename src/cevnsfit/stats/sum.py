"""Sums of costs: independent nuisances by default, optionally shared normalisation factors (see
:mod:`cevnsfit.stats.chi2`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

from ..errors import InputError
from .cost import SIGNAL, Cost

# The outer minimisation over a shared factor theta (SharedFactor): GRID_POINTS samples of the bracket, then golden
# section between the neighbours of the best sample until the bracket is narrower than THETA_TOL.  Near the
# minimum chi^2 ~ chi^2_min + (theta - theta_hat)^2 / s^2 with s <= sigma, so the error in chi^2 is ~ (THETA_TOL /
# sigma)^2: 1e-16 for sigma = 0.1, far below the 1e-7 asked (and the members' Newton tolerance, 1e-9).
GRID_POINTS = 33
THETA_TOL = 1e-9
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class SharedFactor:
    """A normalisation factor (1 + theta) shared by components of several costs of a :class:`SumCost`, with one
    Gaussian prior (theta / sigma)^2 -- e.g. the SNS neutrino flux, common to CsI and LAr:
    ``SharedFactor(name="sns_flux", sigma=0.10, members={"csi": "cevns", "lar": "cevns"})``.

    ``members``: cost name -> component that the factor multiplies (the signal ``"cevns"`` or a background);
    ``value``: theta when fixed (:meth:`SumCost.fix`), None when profiled.  Each cost keeps its own nuisances
    (profiled inside); a cost takes part in at most one shared factor.
    """

    name: str
    sigma: float
    members: Mapping[str, str] = field(default_factory=dict)
    value: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "members", dict(self.members))
        if not self.name or "." in self.name:
            raise InputError(f"a shared factor needs a name without '.', got {self.name!r}")
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise InputError(f"shared factor {self.name}: sigma must be finite and > 0, got {self.sigma}")
        if self.value is not None and not (np.isfinite(self.value) and self.value >= -1.0):
            raise InputError(f"shared factor {self.name}: theta must be >= -1 (the factor 1 + theta >= 0), got "
                             f"{self.value}")


class SumCost(Cost):
    """Sum of costs, called with a mapping cost name -> signal template (one or a batch).

    Without ``shared`` the costs have independent nuisances: the chi^2 is the sum of theirs.  With ``shared``
    (:class:`SharedFactor` s) the chi^2 is, per factor, min over theta > -1 of [sum of its members' chi^2 with
    their component scaled by 1 + theta] + (theta / sigma)^2, plus the other costs' chi^2.  ``parameters``: each
    cost's parameters prefixed by its name (``csi.norm_cevns``), then the shared factors' names.
    """

    def __init__(self, costs, shared=()):
        flat, factors = [], list(shared)
        for c in costs:
            if isinstance(c, SumCost):
                flat.extend(c.costs)
                factors.extend(c.shared)
            else:
                flat.append(c)
        names = [c.name for c in flat]
        if len(set(names)) != len(names):
            raise InputError(f"cannot add costs with the same name twice: {names}")
        self.costs = flat
        self.name = "+".join(names)
        self.n_bins = sum(c.n_bins for c in flat)
        self.shared = tuple(factors)
        by_name = {c.name: c for c in flat}
        taken = {}
        for f in self.shared:
            if f.name in taken.values() or sum(g.name == f.name for g in self.shared) > 1:
                raise InputError(f"shared factor {f.name} is defined twice")
            for member, component in f.members.items():
                if member not in by_name:
                    raise InputError(f"shared factor {f.name}: no cost named {member} (costs: {', '.join(names)})")
                if component not in getattr(by_name[member], "components", ()):
                    raise InputError(f"shared factor {f.name}: cost {member} has no component {component}")
                if member in taken:
                    raise InputError(f"cost {member} is in two shared factors ({taken[member]}, {f.name})")
                taken[member] = f.name

    # ---- named parameters -------------------------------------------------------------------------------
    @property
    def parameters(self) -> tuple:
        return tuple(f"{c.name}.{p}" for c in self.costs for p in c.parameters) + tuple(f.name for f in self.shared)

    @property
    def priors(self) -> dict:
        out = {f"{c.name}.{k}": v for c in self.costs for k, v in c.priors.items()}
        out.update({f.name: (0.0, float(f.sigma)) for f in self.shared})
        return out

    @property
    def fixed(self) -> dict:
        out = {f"{c.name}.{k}": v for c in self.costs for k, v in c.fixed.items()}
        out.update({f.name: f.value for f in self.shared if f.value is not None})
        return out

    def fix(self, values: Mapping[str, float]) -> "SumCost":
        """A new sum with the named parameters fixed: ``<cost>.<parameter>`` goes to that cost's ``fix``, a shared
        factor's name fixes its theta (its prior term stays)."""
        self._check_names(values)
        shared = {f.name for f in self.shared}
        per = {c.name: {} for c in self.costs}
        for k, v in values.items():
            if k not in shared:
                owner = next(c.name for c in self.costs
                             if k.startswith(c.name + ".") and k[len(c.name) + 1:] in c.parameters)
                per[owner][k[len(owner) + 1:]] = v
        costs = [c.fix(per[c.name]) if per[c.name] else c for c in self.costs]
        return SumCost(costs, [replace(f, value=float(values[f.name])) if f.name in values else f for f in self.shared])

    # ---- chi^2 ------------------------------------------------------------------------------------------
    def __call__(self, signals: Mapping) -> np.ndarray | float:
        if not self.shared:
            return sum(c(signals[c.name]) for c in self.costs)
        total = sum((c(signals[c.name]) for c in self.costs if not self._factor_of(c.name)), 0.0)
        for f in self.shared:
            total = total + self._profile_factor(f, signals)[0]
        return total

    def fit(self, signals: Mapping) -> dict:
        """{cost name: its FitResult}; with shared factors, each member's fit is at the profiled theta (its fitted
        counts include 1 + theta), which its ``nuisances`` report under the factor's name; the factor's prior term
        is in no member's chi^2."""
        out = {}
        for c in self.costs:
            f = self._factor_of(c.name)
            if f is None:
                out[c.name] = c.fit(signals[c.name])
                continue
            theta = float(np.atleast_1d(self._profile_factor(f, {m: signals[m] for m in f.members})[1])[0])
            cost, sig = self._scaled(c, f.members[c.name], signals[c.name], theta)
            out[c.name] = cost.fit(sig)
            out[c.name].nuisances[f.name] = theta
        return out

    def _factor_of(self, name: str) -> SharedFactor | None:
        return next((f for f in self.shared if name in f.members), None)

    @staticmethod
    def _scaled(cost, component: str, signal, theta: float):
        """(cost, signal) with ``component`` scaled by 1 + theta: the signal itself, or a scaled background."""
        if component == SIGNAL:
            return cost, (1.0 + theta) * np.asarray(signal, dtype=float)
        return cost.scaled(component, 1.0 + theta), signal

    def _profile_factor(self, f: SharedFactor, signals: Mapping) -> tuple[np.ndarray | float, np.ndarray]:
        """(chi^2 of the factor's members plus its prior, minimised over theta; theta_hat (n,)) for one signal per
        member (float chi^2) or a batch of n."""
        members = [(c, f.members[c.name], np.asarray(signals[c.name], dtype=float)) for c in self.costs
                    if c.name in f.members]
        single = all(s.ndim == len(c.shape) for c, _, s in members)
        rows = [s[None] if single else s for _, _, s in members]
        n = rows[0].shape[0]
        if any(r.shape[0] != n for r in rows):
            raise InputError(f"shared factor {f.name}: its costs' signal batches differ in length")

        def chi2(theta: np.ndarray) -> np.ndarray:
            """sum of the members' chi^2 (n, m) at theta (n, m) -- the prior term not included."""
            m = theta.shape[1]
            out = np.zeros((n, m))
            for (cost, component, _), s in zip(members, rows):
                if component == SIGNAL:  # the scaled signals as one batch
                    batch = (s[:, None] * (1.0 + theta).reshape(n, m, *([1] * (s.ndim - 1)))).reshape(n * m, *s.shape[1:])
                    out += np.reshape(cost(batch), (n, m))
                else:  # a scaled background: a cost per value of theta
                    for i, j in np.ndindex(n, m):
                        out[i, j] += cost.scaled(component, 1.0 + theta[i, j])(s[i])
            return out

        if f.value is not None:
            theta = np.full(n, f.value)
            chi = chi2(theta[:, None])[:, 0] + (theta / f.sigma) ** 2
        else:
            chi, theta = _minimise(chi2, f.sigma, n)
        return (float(chi[0]), theta) if single else (chi, theta)


def _minimise(chi2, sigma: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """min over theta >= -1 of g(theta) + (theta / sigma)^2 per row, g = ``chi2`` (>= 0: a chi^2): (minimum (n,),
    theta_hat (n,)).  Since g >= 0, the minimum lies where (theta / sigma)^2 <= g(0) + 0: the bracket
    [max(-1, -sigma sqrt g(0)), sigma sqrt g(0)] holds it; GRID_POINTS samples of it, then golden section between
    the best sample's neighbours (every row at once, one batched evaluation per step).  Returns the smallest value
    evaluated, an upper bound of the minimum within ~(THETA_TOL / sigma)^2 of it."""
    f = lambda t: chi2(t) + (t / sigma) ** 2  # noqa: E731
    g0 = np.maximum(chi2(np.zeros((n, 1)))[:, 0], 0.0)
    half = sigma * np.sqrt(g0)
    lo, hi = np.maximum(-1.0, -half), half
    t = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, GRID_POINTS)[None, :]
    v = f(t)
    rows = np.arange(n)
    k = np.argmin(np.where(np.isnan(v), np.inf, v), axis=1)
    best, arg = v[rows, k], t[rows, k]
    a, b = t[rows, np.maximum(k - 1, 0)], t[rows, np.minimum(k + 1, GRID_POINTS - 1)]
    x1, x2 = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    f12 = f(np.stack([x1, x2], axis=1))
    f1, f2 = f12[:, 0], f12[:, 1]
    while np.any(b - a > THETA_TOL):
        left = f1 < f2  # the minimum lies in [a, x2]: x2 <- x1, new x1; else in [x1, b]: x1 <- x2, new x2
        a, b = np.where(left, a, x1), np.where(left, x2, b)
        new = np.where(left, b - _GOLDEN * (b - a), a + _GOLDEN * (b - a))
        fn = f(new[:, None])[:, 0]
        x2, f2, x1, f1 = np.where(left, x1, new), np.where(left, f1, fn), np.where(left, new, x2), np.where(left, fn, f2)
        for x, fx in ((x1, f1), (x2, f2)):
            better = fx < best
            best, arg = np.where(better, fx, best), np.where(better, x, arg)
    for x, fx in ((x1, f1), (x2, f2)):
        better = fx < best
        best, arg = np.where(better, fx, best), np.where(better, x, arg)
    return best, arg
