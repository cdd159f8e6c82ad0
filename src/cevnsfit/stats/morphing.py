"""Extended binned Poisson cost with templates morphed on a 2-D grid of shape nuisances.

Statistics only: observed counts, component templates, normalisation pulls and a grid.  A component template is
either fixed (n_bins,) or given on a rectangular grid of two shape nuisances (x, y) as (n_x n_y, n_bins); the
signal template is always given on the grid.  The expectation is

    mu_b(a, x, y) = sum_z a_z T_z,b(x, y),      T(x, y) = sum_ij A_i(x) B_j(y) T_ij

with A_i, B_j the *cardinal cubic splines* of the nodes (not-a-knot): the morphing reproduces every grid point
exactly (A_i(x_k) = delta_ik), is twice continuously differentiable between them (so Newton converges), and is
linear in the templates (so the mediator engine's N0 + g^2 N1 + g^4 N2 stays exact).  Outside the grid the
nuisances are clamped to its edges (|x|, |y| <= 3 for XENONnT's +-3 sigma grid).

    chi^2 = 2 sum_b [mu_b - D_b + D_b ln(D_b / mu_b)] + sum_z ((a_z - 1 - eta_z0)/sigma_z)^2 + (x - x_0)^2 + (y - y_0)^2

(unit Gaussian priors on x, y; centres 0 unless given).  ``sigmas[z]``: relative width, ``None`` = free, ``0`` =
fixed at a_z = 1.  The minimum over (a, x, y) is found by damped Newton with analytic gradient and Hessian (made
positive definite by a Levenberg shift where the second-derivative term makes it indefinite), in compiled code
(kernels/morph.py).  Parameters: ``norm_<component>`` (eta = a - 1), then the two shape names (e.g. tly, tqy).

**Empty bins are one bin.**  A bin with D_b = 0 enters chi^2, its gradient and its Hessian only through mu_b (the
D ln mu terms vanish), and mu is linear in the templates: the sum of the morphed templates over the empty bins is
the morph of their sum.  So the Newton iterations run on the non-empty bins plus one bin holding the sum of the
empty ones -- exact (the same chi^2 up to the rounding of a reordered sum), and 4.5x fewer bins for XENONnT
(53 of 243 bins hold events, SR0+SR1+SR2).  Fitted per-bin templates (:meth:`fit`) are morphed on all bins.
Replicated data sets leave other bins empty: a batch of replicas is compressed on the bins empty in *all* of its
rows (exact for each row), from full-bin templates.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import InputError
from .compiled import Kernels
from .cost import SIGNAL, ReplicaCost, _as_batch, c_array, dlnd, dlnd_rows



KERNELS = Kernels("morph")  # ready on first use: numba is imported then (stats/compiled.py)


class CardinalSplines:
    """Cardinal cubic-spline basis A_i(x) on ``nodes``: values, first and second derivatives, vectorised."""

    def __init__(self, nodes):
        self.nodes = np.asarray(nodes, dtype=float)
        if self.nodes.ndim != 1 or self.nodes.size < 4 or np.any(np.diff(self.nodes) <= 0):
            raise InputError("a morphing grid needs at least 4 increasing nodes per axis")
        from scipy.interpolate import CubicSpline  # (here: its import, ~0.1 s, then runs beside other work)

        pp = CubicSpline(self.nodes, np.eye(self.nodes.size), axis=0)
        self._c = np.ascontiguousarray(pp.c.transpose(1, 0, 2))  # (n_intervals, 4, n_nodes): (x - x_k)^3 ... ^0
        self._lo, self._hi = float(self.nodes[0]), float(self.nodes[-1])

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, A', A''), each (len(x), n_nodes); x is clamped to the grid."""
        x = np.minimum(np.maximum(np.asarray(x, dtype=float), self._lo), self._hi)
        k = np.minimum(np.searchsorted(self.nodes, x, side="right") - 1, self.nodes.size - 2)
        t = (x - self.nodes[k])[:, None]
        c = self._c[k]
        c3, c2, c1, c0 = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
        return ((c3 * t + c2) * t + c1) * t + c0, (3.0 * c3 * t + 2.0 * c2) * t + c1, 6.0 * c3 * t + 2.0 * c2


class GridMorph:
    """Weights of a 2-D cardinal-spline morphing: ``weights(x, y)`` -> (n, 6, n_x n_y) for
    (T, dT/dx, dT/dy, d2T/dx2, d2T/dxdy, d2T/dy2) = weights @ T_grid, grid index i * n_y + j."""

    def __init__(self, x_nodes, y_nodes):
        self.x, self.y = CardinalSplines(x_nodes), CardinalSplines(y_nodes)
        self.n_grid = self.x.nodes.size * self.y.nodes.size

    def weights(self, x, y) -> np.ndarray:
        a, da, dda = self.x(np.reshape(x, -1))
        b, db, ddb = self.y(np.reshape(y, -1))
        left = np.stack((a, da, a, dda, da, a), axis=1)  # (n, 6, n_x)
        right = np.stack((b, b, db, b, db, ddb), axis=1)  # (n, 6, n_y)
        return (left[:, :, :, None] * right[:, :, None, :]).reshape(left.shape[0], 6, -1)

    def __call__(self, grid_templates: np.ndarray, x, y) -> np.ndarray:
        """Morphed template(s) at (x, y): grid_templates (n_grid, n_bins) -> (n, n_bins)."""
        return self.weights(x, y)[:, 0, :] @ np.asarray(grid_templates, float)


def _compression(nonempty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept bins, merged bins) for a mask of the bins that hold data."""
    return np.flatnonzero(nonempty), np.flatnonzero(~nonempty)


def _compress(a: np.ndarray, keep: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """(..., n_bins) -> (..., kept [+ 1]): the kept bins, then the sum over the merged ones."""
    # indexing, not a 0/1 matrix product: for one template that product is large enough for OpenBLAS to start
    # its threads, which costs milliseconds on a loaded machine
    a = np.asarray(a, dtype=float)
    if not empty.size:
        return a[..., keep]
    return np.concatenate([a[..., keep], a[..., empty].sum(axis=-1, keepdims=True)], axis=-1)


class MorphedPoissonChi2(ReplicaCost):
    """Extended binned Poisson chi^2 with normalisation pulls and two grid-morphed shape nuisances (see module).

    ``observed`` (n_bins,); ``backgrounds``: component -> (n_bins,) or (n_grid, n_bins); ``sigmas``: component
    (including ``"cevns"``) -> relative pull width, None (free) or 0 (fixed); ``grid``: (x_nodes, y_nodes);
    ``shape_names``: names of the two shape nuisances (parameters); ``merge_empty``: iterate on the non-empty
    bins plus their complement's sum (module doc; exact); ``centres``: parameter name -> pull centre.  The signal
    passed to ``__call__`` is (n_grid, n_bins) or a batch (n, n_grid, n_bins), or the same on the reduced bins
    (:meth:`reduce`); replicas take full-bin templates.
    """

    def __init__(self, name: str, observed, backgrounds: Mapping, sigmas: Mapping, grid, shape_names=("x", "y"),
                 tol: float = 1e-9, merge_empty: bool = True, centres: Mapping | None = None):
        self.morph = GridMorph(*grid)
        ng = self.morph.n_grid
        self.name = name
        d = np.asarray(observed, dtype=float).ravel()
        if np.any(d < 0) or not np.all(np.isfinite(d)):
            raise InputError(f"{name}: observed counts must be finite and non-negative")
        self.observed = d
        self.n_bins = d.size
        self.shape = (ng, d.size)
        self.merge_empty = merge_empty
        # the Newton iterations' bins: the non-empty ones, then (if any) the sum of the empty ones (module doc)
        # (merge_empty=False keeps every bin: the reference that tests and benchmarks compare the merge with)
        self._keep, self._empty = _compression(d > 0 if merge_empty else np.ones(d.size, dtype=bool))
        self._nr = self._keep.size + (1 if self._empty.size else 0)
        self.components = (SIGNAL, *backgrounds)
        self.background_templates = {}  # component -> template as given
        fixed, morphed = {}, {}
        for z, t in backgrounds.items():
            t = np.asarray(t, dtype=float)
            if t.shape not in ((d.size,), (ng, d.size)) or not np.all(np.isfinite(t)) or np.any(t < 0):
                raise InputError(f"{name}: background '{z}' must be finite, >= 0, of shape ({d.size},) or "
                                 f"({ng}, {d.size})")
            (fixed if t.ndim == 1 else morphed)[z] = self.background_templates[z] = t
        # parameter order = components; the morphed ones (signal first) and the fixed ones are kept apart
        self._i_morphed = c_array([0] + [self.components.index(z) for z in morphed], np.int64)
        self._i_fixed = c_array([self.components.index(z) for z in fixed], np.int64)
        self._bkg_morphed_full = np.stack(list(morphed.values())) if morphed else np.zeros((0, ng, d.size))
        self._fixed_full = np.stack(list(fixed.values())) if fixed else np.zeros((0, d.size))
        self.shape_names = self.shape_params = tuple(shape_names)
        self.tol = tol
        self._init_parameters(sigmas, dict.fromkeys(self.shape_names, 1.0), centres)
        self._k_d = c_array(self._compress(d)[None])
        self._k_dlnd = c_array([dlnd(d)])
        self._k_bkg, self._k_fixed_bkg = self._backgrounds(self._keep, self._empty)
        # the backgrounds' total counts (morphed ones grid-averaged), for the cold start's excess
        self._bkg_totals = (float(self._k_bkg.mean(axis=1).sum()), float(self._k_fixed_bkg.sum()))
        self._k_nodes = (c_array(self.morph.x.nodes), c_array(self.morph.x._c), c_array(self.morph.y.nodes),
                         c_array(self.morph.y._c))
        self._pack()

    def _check_value(self, name: str, value: float) -> None:
        super()._check_value(name, value)
        if name.startswith("norm_") and value < -1.0:
            raise InputError(f"{self.name}: {name} is eta = a - 1 with a >= 0, cannot be fixed at {value}")
        axis = self.morph.x if name == self.shape_names[0] else self.morph.y
        if name in self.shape_names and not axis.nodes[0] <= value <= axis.nodes[-1]:
            raise InputError(f"{self.name}: {name} can be fixed within its grid [{axis.nodes[0]:g}, {axis.nodes[-1]:g}]"
                             f", not at {value}")

    def _pack(self) -> None:
        mask, value = self._fixed_values()
        self._free = c_array(~mask, np.bool_)
        self._p_fixed = value + self._norm_offset()  # the fixed parameters' values in factors a (Newton's units)
        self._k_inv_var = c_array(self._inv_var())
        self._k_centre = c_array((self._centre_values() + self._norm_offset())[None])

    def _scale_background(self, i: int, factor: float) -> None:
        z = self.components[i]
        self.background_templates = {**self.background_templates, z: factor * self.background_templates[z]}
        if i in self._i_morphed:
            self._bkg_morphed_full = self._bkg_morphed_full.copy()
            self._bkg_morphed_full[list(self._i_morphed).index(i) - 1] *= factor
        else:
            self._fixed_full = self._fixed_full.copy()
            self._fixed_full[list(self._i_fixed).index(i)] *= factor
        self._k_bkg, self._k_fixed_bkg = self._backgrounds(self._keep, self._empty)
        self._bkg_totals = (float(self._k_bkg.mean(axis=1).sum()), float(self._k_fixed_bkg.sum()))

    # ---- pieces --------------------------------------------------------------------------------------------
    def _compress(self, a: np.ndarray) -> np.ndarray:
        """(..., n_bins) -> (..., n_nonempty [+ 1]): the non-empty bins, then the sum over the empty ones."""
        return _compress(a, self._keep, self._empty)

    def _backgrounds(self, keep, empty) -> tuple[np.ndarray, np.ndarray]:
        """The morphed (n_morphed - 1, n_grid, bins') and fixed (n_fixed, bins') backgrounds on compressed bins."""
        return c_array(_compress(self._bkg_morphed_full, keep, empty)), c_array(_compress(self._fixed_full, keep, empty))

    def reduce(self, signal: np.ndarray) -> np.ndarray:
        """The signal template(s) (..., n_grid, n_bins) on the bins the chi^2 needs (..., n_grid, n_bins'): a linear
        map, so a template family N0 + g^2 N1 + g^4 N2 can be reduced once; ``cost(reduce(s)) == cost(s)``."""
        return self._compress(signal)

    def _reduced(self, signal) -> np.ndarray:
        """A batch (n, n_grid, n_bins'), from full or already reduced templates (one or a batch)."""
        s = np.asarray(signal, dtype=float)
        if s.shape[-2:] == (self.morph.n_grid, self._nr):  # already reduced (or nothing to reduce)
            return s.reshape(-1, self.morph.n_grid, self._nr)
        return self._compress(_as_batch(s, self.shape)[0])

    def counts(self, signal: np.ndarray, theta: np.ndarray) -> dict:
        """Per-bin counts of each component (all bins) at one full-bin signal (n_grid, n_bins) and parameters."""
        w = self.morph.weights(theta[-2], theta[-1])[0, 0]
        grid = np.concatenate([np.asarray(signal, float).reshape(1, *self.shape), self._bkg_morphed_full])
        per = np.empty((len(self.components), self.n_bins))
        per[self._i_morphed] = np.einsum("g,zgb->zb", w, grid)
        per[self._i_fixed] = self._fixed_full
        return {z: (1.0 + theta[i]) * per[i] for i, z in enumerate(self.components)}

    def sample(self, expected: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` replicated data sets (n, n_bins) of the counts this chi^2 assumes: D_b ~ Poisson(expected_b)."""
        return rng.poisson(np.asarray(expected, float), size=(n, self.n_bins)).astype(float)

    # ---- profile -------------------------------------------------------------------------------------------
    def _start(self, p0, signal_totals, n: int, d_tot) -> np.ndarray:
        """Newton's start (n, n_comp + 2): ``p0``, else the nominal parameters, except that a signal far above the
        data (``signal_totals()``: its grid-averaged total per row; ``d_tot``: the data's, per row or one) starts
        where its scaled total matches the observed excess; the fixed parameters at their values."""
        nc = len(self.components)
        if p0 is not None:
            p = np.array(p0, dtype=float).reshape(n, nc + 2)
        else:
            p = np.zeros((n, nc + 2))
            p[:, :nc] = 1.0
            s_tot = signal_totals()
            excess = np.maximum(d_tot - self._bkg_totals[0] - self._bkg_totals[1], 1.0)
            huge = (s_tot > 10.0 * d_tot) & self._free[0]
            p[huge, 0] = np.broadcast_to(excess, (n,))[huge] / s_tot[huge]
        p[:, ~self._free] = self._p_fixed[~self._free]
        return p

    def _run(self, p, sig=None, coef=None, basis=None, data=None) -> tuple[np.ndarray, np.ndarray]:
        """The kernel on signals ``sig`` (n, n_grid, bins') or coef (n, K) @ basis (K, n_grid, bins'), from the
        start p (n, n_comp + 2); ``data``: (d, dlnd, centre, morphed backgrounds, fixed backgrounds) on those bins,
        default the observed data's.  Returns (chi^2 (n,), parameters (n, n_comp + 2): factors a, then x, y)."""
        d, dl, centre, bkg, fixed = data or (self._k_d, self._k_dlnd, self._k_centre, self._k_bkg, self._k_fixed_bkg)
        if sig is None:
            sig = np.empty((0, *np.shape(basis)[1:]))
        else:
            coef, basis = np.empty((0, 1)), np.empty((1, *np.shape(sig)[1:]))
        p = c_array(p)
        chi = np.empty(p.shape[0])
        KERNELS.morphed_profile(c_array(sig), c_array(coef), c_array(basis), bkg, fixed, self._i_morphed,
                                   self._i_fixed, d, dl, centre, self._k_inv_var, self._free, *self._k_nodes[:2],
                                   *self._k_nodes[2:], float(self.tol), p, chi)
        return chi, p

    def profile(self, signal: np.ndarray, p0: np.ndarray | None = None, observed: np.ndarray | None = None,
                centres: np.ndarray | None = None):
        """(chi^2_min, parameters (n, n_comp + 2) = (a_z..., x, y), the batch's signals on the bins iterated) for a
        batch of signals (full or :meth:`reduce`-d), Newton started from ``p0`` (n, n_comp + 2) if given (a warm
        start).  ``observed`` (n, n_bins) and ``centres`` (n, parameters: shifts of the pull centres) replace the
        data and the centres row by row (replicas: full-bin signals)."""
        if observed is None:
            tpl = self._reduced(signal)
            n = tpl.shape[0]
            p = self._start(p0, lambda: tpl.mean(axis=1).sum(axis=1), n, self._k_d.sum())
            return (*self._run(p, sig=tpl), tpl)
        s = _as_batch(signal, self.shape)[0]
        data, keep, empty = self._replica_data(observed, centres, s.shape[0])
        tpl = _compress(s, keep, empty)
        p = self._start(p0, lambda: tpl.mean(axis=1).sum(axis=1), tpl.shape[0], data[0].sum(axis=1))
        return (*self._run(p, sig=tpl, data=data), tpl)

    def _replica_data(self, observed, centres, n: int):
        """(kernel data of ``_run``, kept bins, merged bins) of replicas (n, n_bins) with pull-centre shifts
        (n, parameters), compressed on the bins empty in every row."""
        d = np.asarray(observed, dtype=float).reshape(n, self.n_bins)
        keep, empty = _compression(np.any(d > 0, axis=0))
        centre = self._k_centre if centres is None else c_array(self._k_centre + centres)
        data = (c_array(_compress(d, keep, empty)), c_array(dlnd_rows(d)), centre, *self._backgrounds(keep, empty))
        return data, keep, empty

    def _profiled(self, signal: np.ndarray) -> tuple[float, np.ndarray]:
        chi, p, _ = self.profile(_as_batch(self._signal(signal), self.shape)[0][:1])
        return float(chi[0]), p[0] - self._norm_offset()  # eta = a - 1

    def profile_linear(self, coefficients: np.ndarray, basis: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """``profile_warm`` of the signals coefficients (n, K) @ basis (K, full or reduced template): each row's
        signal is formed inside the kernel, so that the batch (n x grid x bins, ~35 MB for a 1 650-point line) is
        never stored; the same numbers as ``profile_warm(linear_signals(...))``."""
        basis = self._reduced(basis)
        coefficients = np.asarray(coefficients, dtype=float)
        p = self._start(start, lambda: coefficients @ basis.mean(axis=1).sum(axis=1), coefficients.shape[0],
                        self._k_d.sum())
        return self._run(p, coef=coefficients, basis=basis)

    def _next_start(self, before, last):
        """A line's start extrapolated linearly from the fits of the two lines before it (neighbouring masses of a
        log-spaced scan, along which the fitted nuisances move smoothly): Newton then takes 1.2 steps per point
        instead of 1.5 (XENONnT, all models' planes; docs/validation/speed.md).  A factor that the extrapolation
        would more than halve keeps its last value (a factor is positive), the shape nuisances stay on the grid."""
        if before is None or last is None:
            return last
        guess = 2.0 * last - before
        nc = len(self.components)
        shrinks = guess[:, :nc] < 0.5 * last[:, :nc]
        guess[:, :nc][shrinks] = last[:, :nc][shrinks]
        for k, axis in ((nc, self.morph.x), (nc + 1, self.morph.y)):
            np.clip(guess[:, k], axis.nodes[0], axis.nodes[-1], out=guess[:, k])
        return guess

    def derivatives(self, signal: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(chi^2, gradient, Hessian) at parameters ``p`` = (a_z..., x, y) for one signal template (full or
        reduced), as Newton's step uses them: analytic, every parameter free, no grid edge, the Hessian's diagonal
        1e-12 larger (keeps a flat direction solvable)."""
        s = c_array(self._reduced(signal)[0])
        grad, hess = np.empty(len(self.parameters)), np.empty((len(self.parameters),) * 2)
        chi = KERNELS.morphed_point(s, self._k_bkg, self._k_fixed_bkg, self._i_morphed, self._i_fixed, self._k_d[0],
                                       float(self._k_dlnd[0]), self._k_centre[0], self._k_inv_var, *self._k_nodes,
                                       c_array(p), grad, hess)
        return chi, grad, hess

    def __call__(self, signal) -> np.ndarray | float:
        s = np.asarray(self._signal(signal), dtype=float)
        chi = self.profile(s)[0]
        return float(chi[0]) if s.ndim == 2 else chi

    def profile_warm(self, signal: np.ndarray, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chi^2 (n,), fitted parameters (n, n_comp + 2)) for a batch, started from the parameters ``start`` that
        a neighbouring batch returned (the next mass of a scan: Newton then needs a few iterations, not ~7)."""
        chi, p, _ = self.profile(signal, start)
        return chi, p

    # ---- replicas ------------------------------------------------------------------------------------------
    def linear_factors(self, basis: np.ndarray) -> dict:
        """The basis (K, n_grid, n_bins) and its grid-averaged totals (the cold start's), for ``replicas_linear``."""
        b = np.asarray(basis, dtype=float).reshape(-1, *self.shape)
        return {"basis": b, "totals": b.mean(axis=1).sum(axis=1)}

    def replicas_linear(self, coefficients: np.ndarray, basis: np.ndarray, observed: np.ndarray,
                        centres: np.ndarray | None = None, factors=None) -> np.ndarray:
        """``replicas`` of the signals coefficients (n, K) @ basis (K, n_grid, n_bins), formed in the kernel."""
        f = self.linear_factors(basis) if factors is None else factors
        c = np.asarray(coefficients, dtype=float)
        d, cen = self._replica_rows(c.shape[0], observed, centres)
        data, keep, empty = self._replica_data(d, cen, c.shape[0])
        p = self._start(None, lambda: c @ f["totals"], c.shape[0], data[0].sum(axis=1))
        return self._run(p, coef=c, basis=_compress(f["basis"], keep, empty), data=data)[0]

    def replicas_grid(self, signals: np.ndarray, observed: np.ndarray, centres: np.ndarray | None = None,
                      factors=None) -> np.ndarray:
        """Profiled chi^2 (n, k) of every replica at every full-bin template (k, n_grid, n_bins): the templates
        compressed once for the whole batch, then one kernel call per replica over the k templates (cold starts,
        as ``replicas`` of every pair)."""
        s = np.asarray(signals, dtype=float).reshape(-1, *self.shape)
        k, n = s.shape[0], np.asarray(observed).shape[0]
        d, cen = self._replica_rows(n, observed, centres)
        (d_c, dl, centre, bkg, fixed), keep, empty = self._replica_data(d, cen, n)
        tpl = c_array(_compress(s, keep, empty))
        totals = tpl.mean(axis=1).sum(axis=1)
        out = np.empty((n, k))
        for i in range(n):
            row = (d_c[i:i + 1], dl[i:i + 1], centre[i:i + 1] if centre.shape[0] > 1 else centre, bkg, fixed)
            p = self._start(None, lambda: totals, k, d_c[i].sum())
            out[i] = self._run(p, sig=tpl, data=row)[0]
        return out
