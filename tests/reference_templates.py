"""The direct path of the mediator templates, kept in the tests as the reference that templates.py is checked against.

For one (M, g) the weak charge Q_SM + g^2 C(|q|)/(|q|^2 + M^2) (vector) or the scalar strength g^4 S/(|q|^2 + M^2)^2
is built on the recoil grids and folded with the experiment's kernel -- no basis decomposition, no mass blocks, no
reuse across models: what templates.TemplateBasis must equal.
"""

import numpy as np

from cevnsfit.physics.cross_section import scalar_coherence_squared
from cevnsfit.physics.models import ScalarModel, vector_shift_numerator


def propagator(q_mev: np.ndarray, mass_mev: float) -> np.ndarray:
    """1/(|q|^2 + M^2); 1 in the contact limit M = inf (per (g/M)^2); 0 where both vanish (T' = 0, no light)."""
    if np.isinf(mass_mev):
        return np.ones_like(q_mev)
    denom = q_mev * q_mev + mass_mev * mass_mev
    return np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)


def direct_counts(experiment, model, mass_mev: float, g: float, params=None) -> np.ndarray:
    """The experiment's signal template at coupling ``g`` and mass ``mass_mev`` (MeV) of ``model``."""
    kernel = experiment.kernel
    params = params or experiment.params
    charge_sq, scalar = {}, {}
    for x, tg in kernel.detector.targets.items():
        q, fz, fn = kernel.form_factors[x]
        prop = propagator(q, mass_mev)
        for f in kernel.flavours:
            q_sm = kernel.sm_charge[(f, x)]
            if isinstance(model, ScalarModel):
                charge_sq[(f, x)] = q_sm**2
                coh2 = scalar_coherence_squared(tg.nucleus, kernel.detector.recoil_mev[x], experiment.options.form_factor,
                                                params)
                scalar[(f, x)] = g**4 * coh2 * prop**2
            else:
                c = vector_shift_numerator(model, f, q, tg.nucleus.Z, tg.nucleus.N, fz, fn, params)
                charge_sq[(f, x)] = (q_sm + g * g * c * prop) ** 2
    return experiment.signal(kernel.counts(charge_sq, scalar if scalar else None))
