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
from .physics.models import ScalarModel, VectorModel, vector_shift_numerator


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
        return np.stack((self.n0, self.n1[mass_index], self.n2[mass_index]))

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
    out = np.ones((q2.size, m.size))
    denom = q2[:, None] + m[finite][None, :] ** 2
    # M = 0 at the T' = 0 grid node: the detector response vanishes there (no light), so drop the 1/0
    out[:, finite] = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
    return out


def check_masses(masses_mev) -> np.ndarray:
    m = np.atleast_1d(np.asarray(masses_mev, dtype=float))
    if m.ndim != 1 or np.any(np.isnan(m)) or np.any(m < 0):
        raise InputError("mediator masses must be non-negative numbers (MeV); inf means the contact limit")
    return m


def build_templates(experiment, model, masses_mev, params=None) -> Templates:
    """Templates of ``model`` (a VectorModel or the ScalarModel) for ``experiment`` at the given masses (MeV)."""
    masses = check_masses(masses_mev)
    kernel = experiment.kernel
    params = params or experiment.params
    n_e, n_t = experiment.shape
    n1_e = {f: np.zeros((n_e, masses.size)) for f in kernel.flavours}
    n2_e = {f: np.zeros((n_e, masses.size)) for f in kernel.flavours}
    for x, tg in kernel.detector.targets.items():
        q, fz, fn = kernel.form_factors[x]
        q2 = q * q
        # per flavour: (response matrix, factor of the g^2 propagator, factor of the g^4 propagator squared)
        if isinstance(model, ScalarModel):
            # S per g^4 = (sigma/m)^2 [Z F_Z + N F_N]^2 / (|q|^2 + M^2)^2
            coh2 = scalar_coherence_squared(tg.nucleus, kernel.detector.recoil_mev[x], experiment.options.form_factor, params)
            terms = [(f, kernel.scalar[(f, x)], None, coh2) for f in kernel.flavours]
        elif isinstance(model, VectorModel):
            terms = []
            for f in kernel.flavours:
                c = vector_shift_numerator(model, f, q, tg.nucleus.Z, tg.nucleus.N, fz, fn, params)
                if np.any(c):
                    terms.append((f, kernel.vector[(f, x)], 2.0 * kernel.sm_charge[(f, x)] * c, c * c))
        else:
            raise InputError(f"no templates for model {model!r}")
        # the (recoil x mass) propagators are built a block of masses at a time: a 1e4-mass scan would otherwise
        # hold several (15 000 x 1e4) arrays, ~1.2 GB each (benchmarks/bench_memory.py)
        step = max(1, BLOCK_ELEMENTS // q2.size)
        for lo in range(0, masses.size, step):
            cols = slice(lo, lo + step)
            prop = _propagators(q2, masses[cols])
            prop2 = prop * prop
            for f, resp, a1, a2 in terms:
                if a1 is not None:
                    n1_e[f][:, cols] += resp @ (a1[:, None] * prop)
                n2_e[f][:, cols] += resp @ (a2[:, None] * prop2)
    time = kernel.detector.time
    n1 = sum(np.einsum("em,t->met", n1_e[f], time[f]) for f in kernel.flavours)
    n2 = sum(np.einsum("em,t->met", n2_e[f], time[f]) for f in kernel.flavours)
    n0 = kernel.sm_counts()
    # the experiment's analysis template is linear in the computed counts (identity, or LAr release ratio)
    sig = experiment.signal
    return Templates(experiment.name, model, masses, sig(n0), sig(np.asarray(n1)), sig(np.asarray(n2)) if np.any(n2) else np.asarray(n2))


def direct_counts(experiment, model, mass_mev: float, g: float, params=None) -> np.ndarray:
    """Reference path: build Q^2 (and S) on the recoil grids for one (M, g) and fold with the kernel."""
    kernel = experiment.kernel
    params = params or experiment.params
    charge_sq, scalar = {}, {}
    for x, tg in kernel.detector.targets.items():
        q, fz, fn = kernel.form_factors[x]
        prop = _propagators(q * q, np.array([mass_mev]))[:, 0]
        for f in kernel.flavours:
            q_sm = kernel.sm_charge[(f, x)]
            if isinstance(model, ScalarModel):
                charge_sq[(f, x)] = q_sm**2
                coh2 = scalar_coherence_squared(tg.nucleus, kernel.detector.recoil_mev[x], experiment.options.form_factor, params)
                scalar[(f, x)] = g**4 * coh2 * prop**2
            else:
                c = vector_shift_numerator(model, f, q, tg.nucleus.Z, tg.nucleus.N, fz, fn, params)
                charge_sq[(f, x)] = (q_sm + g * g * c * prop) ** 2
    return experiment.signal(kernel.counts(charge_sq, scalar if scalar else None))
