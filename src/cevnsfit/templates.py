"""Template engine for light mediators (physics specification section 12.4).

For a vector mediator of mass M the weak charge is Q = Q_SM + g^2 C(|q|) / (|q|^2 + M^2), so the counts in every
bin are exactly ``N0 + g^2 N1(M) + g^4 N2(M)`` with

    N1 = K @ [2 Q_SM C / (|q|^2 + M^2)],   N2 = K @ [C^2 / (|q|^2 + M^2)^2]

pushed through the experiment's response kernel K per flavour and nucleus (the response is linear in
dsigma/dT').  For the light scalar (added incoherently) ``N = N0 + g^4 N2(M)``.  All masses of a grid are one matrix
product.  Two limits are exact: ``M = 0`` (light mediator, the bound is on g) and ``M = inf`` (contact
interaction: the templates multiply (g/M)^2 and (g/M)^4 with g/M in MeV^-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .physics.cross_section import scalar_coherence_squared
from .physics.models import SHIFT_BASES, ScalarModel, VectorModel, vector_shift_basis, vector_shift_weights


@dataclass
class Templates:
    """N(g) = n0 + g^2 n1[m] + g^4 n2[m] for masses ``masses_mev`` (inf = contact limit, coupling g/M in MeV^-1)."""

    experiment: str
    model: object
    masses_mev: np.ndarray  # (n_M,)
    n0: np.ndarray  # (n_E, n_t)
    n1: np.ndarray  # (n_M, n_E, n_t)
    n2: np.ndarray  # (n_M, n_E, n_t)

    def counts(self, g: np.ndarray | float, mass_index: int) -> np.ndarray:
        """Signal counts for couplings ``g`` (scalar -> (n_E, n_t); array -> (n_g, n_E, n_t)) at one mass."""
        g2 = np.asarray(g, dtype=float) ** 2
        if g2.ndim == 0:
            return self.n0 + g2 * self.n1[mass_index] + g2 * g2 * self.n2[mass_index]
        # one (n_g, 3) @ (3, n_E n_t) product: [1, g^2, g^4] against the stacked templates of this mass
        basis = self.basis(mass_index)
        return (self.coefficients(g) @ basis.reshape(3, -1)).reshape(g2.size, *self.n0.shape)

    def basis(self, mass_index: int) -> np.ndarray:
        """(N0, N1, N2) at one mass, (3, n_E, n_t): the counts are ``coefficients(g) @ basis``, linear in it."""
        i = range(self.n1.shape[0])[mass_index]  # a negative index counts from the end; out of range: IndexError
        return self.bases(i, i + 1)[0]

    def bases(self, first: int, last: int) -> np.ndarray:
        """The bases of mass rows first..last-1 at once, (last - first, 3, n_E, n_t)."""
        n0 = np.broadcast_to(self.n0, (last - first, *self.n0.shape))
        return np.stack((n0, self.n1[first:last], self.n2[first:last]), axis=1)

    @staticmethod
    def coefficients(g: np.ndarray) -> np.ndarray:
        """(1, g^2, g^4) per coupling, (n_g, 3) (g in the templates' units: 1, or MeV^-1 for g/M at M = inf)."""
        g2 = np.atleast_1d(np.asarray(g, dtype=float)) ** 2
        return np.stack((np.ones_like(g2), g2, g2 * g2), axis=1)

    def mapped(self, f) -> "Templates":
        """The templates with a linear map ``f`` applied to N0, N1, N2 (exact: counts(g) is linear in them), e.g. a
        cost's :meth:`~cevnsfit.stats.chi2.BinnedCost.reduce` to the bins its chi^2 reads."""
        return Templates(self.experiment, self.model, self.masses_mev, f(self.n0), f(self.n1), f(self.n2))


BLOCK_ELEMENTS = 1 << 22  # propagator values (recoil nodes x masses) per block: 32 MB of float64


def _propagators(q2: np.ndarray, masses_mev: np.ndarray) -> np.ndarray:
    """1/(|q|^2 + M^2), (n_recoil, n_M); the contact limit M = inf gives 1 (per (g/M)^2)."""
    m = np.asarray(masses_mev, dtype=float)
    finite = np.isfinite(m)
    denom = q2[:, None] + m[finite][None, :] ** 2
    with np.errstate(divide="ignore"):
        inv = np.reciprocal(denom)  # (3x faster than a masked np.divide, the same numbers)
    # M = 0 at the T' = 0 grid node: the detector response vanishes there (no light), so drop the 1/0
    inv[denom == 0] = 0.0
    if finite.all():
        return inv
    out = np.ones((q2.size, m.size))
    out[:, finite] = inv
    return out


def coupling_unit(mass_mev: float) -> str:
    """Unit of the coupling variable at mediator mass ``mass_mev`` (MeV): "MeV^-1" in the contact limit M = inf,
    where the templates are per (g/M)^2, else "1" (g)."""
    return "MeV^-1" if np.isinf(mass_mev) else "1"


def check_masses(masses_mev) -> np.ndarray:
    m = np.atleast_1d(np.asarray(masses_mev, dtype=float))
    if m.ndim != 1 or np.any(np.isnan(m)) or np.any(m < 0):
        raise InputError("mediator masses must be non-negative numbers (MeV); inf means the contact limit")
    return m


class TemplateBasis:
    """The model-independent part of the templates of one experiment, kept for reuse across models.

    Every vector model's shift numerator is C = sum_b w_b B_b(|q|) with model- and flavour-dependent weights w_b
    (:func:`~cevnsfit.physics.models.vector_shift_weights`), so per flavour::

        N1 = sum_b w_b  K @ [2 Q_SM B_b / (|q|^2 + M^2)]
        N2 = sum_b w_b^2 K @ [B_b^2 / (|q|^2 + M^2)^2] + 2 sum_{b < b'} w_b w_b' K @ [B_b B_b' / (|q|^2 + M^2)^2]

    exactly; the folded terms (and the scalar's) are computed at first use for a set of masses and kept (the
    :data:`KEPT_MASS_SETS` last sets), so that the 11 registered models cost one fold per term instead of one per
    model.  Summing the terms instead of folding C^2 changes the counts by rounding only: relative to the scale of
    the largest term (a model whose proton and neutron terms cancel on a nucleus keeps an absolute error ~1e-16 of
    the uncancelled terms).  Masses in MeV (inf = the contact limit, per (g/M)^2 in MeV^-2).
    """

    def __init__(self, experiment, params=None):
        self.experiment = experiment
        self.params = params or experiment.params
        self._start()

    def _start(self) -> None:
        self.kernel = self.experiment.kernel
        self._left = _common_left(self.kernel)
        self._bases: dict = {}  # (nucleus, basis) -> B_b on the recoil grid (MeV^2)
        self._folded: dict = {}  # masses (bytes) -> {term: (n_flavour, rows, n_M)}
        self._n0 = None

    @property
    def _rows(self) -> int:
        """Rows of a folded term: the energy bins, or the nodes of the shared left factor."""
        return self.experiment.shape[0] if self._left is None else self._left.shape[1]

    def _basis(self, x: str, b: str) -> np.ndarray:
        if (x, b) not in self._bases:
            q, fz, fn = self.kernel.form_factors[x]
            nuc = self.kernel.detector.targets[x].nucleus
            if b == "scalar":  # S per g^4 = (sigma/m)^2 [Z F_Z + N F_N]^2 (the propagator squared is applied later)
                self._bases[(x, b)] = scalar_coherence_squared(nuc, self.kernel.detector.recoil_mev[x],
                                                               self.experiment.options.form_factor, self.params)
            else:
                self._bases[(x, b)] = vector_shift_basis(b, q, nuc.Z, nuc.N, fz, fn, self.params)
        return self._bases[(x, b)]

    def _fold(self, masses: np.ndarray, terms: list) -> dict:
        """Fold ``terms`` ((1, b): linear in B_b; (2, b, b'): B_b B_b'; (2, "scalar")) with the kernel at every mass:
        {term: (n_flavour, rows, n_M)}."""
        k = self.kernel
        flavours = k.flavours
        out = {t: np.zeros((len(flavours), self._rows, masses.size)) for t in terms}
        for x in k.nuclei:
            q, _, _ = k.form_factors[x]
            q2 = q * q
            scaled = []  # (term, [per flavour: the response with the term's factor on the recoil grid])
            for t in terms:
                if t[0] == 1:
                    a = [2.0 * k.sm_charge[(f, x)] * self._basis(x, t[1]) for f in flavours]
                elif t[1] == "scalar":
                    a = [self._basis(x, "scalar")] * len(flavours)
                else:
                    a = [self._basis(x, t[1]) * self._basis(x, t[2])] * len(flavours)
                table = k.scalar if t[1] == "scalar" else k.vector
                # (K * a) @ prop == K @ (a[:, None] * prop) up to rounding, scaling n_E rows instead of n_M columns
                scaled.append((t, [table[(f, x)] * a_f for f, a_f in zip(flavours, a)]))
            # the (recoil x mass) propagators are built a block of masses at a time: a 1e4-mass scan would
            # otherwise hold several (15 000 x 1e4) arrays, ~1.2 GB each (benchmarks/bench_memory.py)
            step = max(1, BLOCK_ELEMENTS // q2.size)
            for lo in range(0, masses.size, step):
                cols = slice(lo, lo + step)
                prop = _propagators(q2, masses[cols])
                prop2 = prop * prop
                for t, mats in scaled:
                    p = prop if t[0] == 1 else prop2
                    for i, m in enumerate(mats):
                        out[t][i, :, cols] += m @ p if self._left is None else m.right_product(p)
        return out

    def folded(self, masses: np.ndarray, terms: list) -> dict:
        """The folded ``terms`` at ``masses`` (computed once per mass set, see the class docstring)."""
        key = masses.tobytes()
        have = self._folded.pop(key, {})
        missing = [t for t in terms if t not in have]
        if missing:
            have.update(self._fold(masses, missing))
        self._folded[key] = have  # most recently used last
        while len(self._folded) > KEPT_MASS_SETS:
            del self._folded[next(iter(self._folded))]
        return {t: have[t] for t in terms}

    def _with_time(self, per_flavour: np.ndarray) -> np.ndarray:
        """(n_flavour, n_rows, n_M) counts per energy row -> (n_M, n_E, n_t) with each flavour's time fractions (and
        the common left factor, applied once per time bin to the flavours' sum)."""
        time = np.stack([self.kernel.detector.time[f] for f in self.kernel.flavours])
        if self._left is None:
            return np.einsum("fem,ft->met", per_flavour, time)
        nodes = np.einsum("fnm,ft->tnm", per_flavour, time)
        return np.ascontiguousarray((self._left @ nodes).transpose(2, 1, 0))

    def templates(self, model, masses_mev) -> Templates:
        """Templates of ``model`` (a VectorModel or the ScalarModel) at the given masses (MeV)."""
        masses = check_masses(masses_mev)
        if self.experiment.kernel is not self.kernel:  # a rebuilt kernel (other options): start again
            self._start()
        k = self.kernel
        flavours = k.flavours
        n1_e = np.zeros((len(flavours), self._rows, masses.size))
        if isinstance(model, ScalarModel):
            n2_e = self.folded(masses, [(2, "scalar")])[(2, "scalar")]
        elif isinstance(model, VectorModel):
            weights = [vector_shift_weights(model, f) for f in flavours]
            used = [b for b in SHIFT_BASES if any(b in w for w in weights)]
            pairs = [(b, c) for i, b in enumerate(used) for c in used[i:]]
            folded = self.folded(masses, [(1, b) for b in used] + [(2, b, c) for b, c in pairs])
            n2_e = np.zeros_like(n1_e)
            for i, w in enumerate(weights):
                for b, wb in w.items():
                    n1_e[i] += wb * folded[(1, b)][i]
                for b, c in pairs:
                    if b in w and c in w:
                        n2_e[i] += (1.0 if b == c else 2.0) * w[b] * w[c] * folded[(2, b, c)][i]
        else:
            raise InputError(f"no templates for model {model!r}")
        n1, n2 = self._with_time(n1_e), self._with_time(n2_e)
        if self._n0 is None:
            self._n0 = k.sm_counts()
        # the experiment's analysis template is linear in the computed counts (identity, or LAr release ratio)
        sig = self.experiment.signal
        return Templates(self.experiment.name, model, masses, sig(self._n0.copy()), sig(n1),
                         sig(n2) if np.any(n2) else n2)


def _common_left(kernel):
    """The left factor that every response of ``kernel`` shares when they are kept factorised as left @ right
    diag(d) (XENONnT's :class:`~cevnsfit.responses.mono.FoldedMatrix`: 11 907 rows, 46 nodes), else None.
    With one, the terms are folded into the nodes and the left factor is applied to each model's sum over
    flavours: a folded term holds 3 x 46 x n_M values instead of 3 x 11 907 x n_M (35 MB for the 121-mass plane)."""
    responses = [*kernel.vector.values(), *kernel.scalar.values()]
    left = getattr(responses[0], "left", None)
    if left is None or any(getattr(m, "left", None) is not left for m in responses):
        return None
    return left


KEPT_MASS_SETS = 4  # mass sets whose folded terms a TemplateBasis keeps (a plane and its two asymptotic lines)


def build_templates(experiment, model, masses_mev, params=None) -> Templates:
    """Templates of ``model`` (a VectorModel or the ScalarModel) for ``experiment`` at the given masses (MeV).
    (To build several models' templates, keep a :class:`TemplateBasis` of the experiment: it shares the work.)"""
    return TemplateBasis(experiment, params).templates(model, masses_mev)
