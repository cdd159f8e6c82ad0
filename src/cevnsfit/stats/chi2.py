"""Profiled chi^2 costs (physics specification sections 8.7, 9.6, 12.1): the public names of :mod:`cevnsfit.stats`.

A cost is a small object: ``cost(signal)`` returns the chi^2 minimised over its nuisance parameters for a
predicted signal (CEvNS) template; costs add (``csi_cost + lar_cost``) into a :class:`SumCost`.  Every
``__call__`` accepts one signal array (n_energy, n_time) or a batch (n, n_energy, n_time) and returns a float or
an (n,) array, so that scans evaluate a whole row of couplings at once.  Statistics never knows what a neutrino
is: it sees observed counts, component templates, pull widths and shape deltas.

* :class:`PoissonChi2` (stats/poisson.py) -- 2 sum[N - D + D ln(D/N)] + sum_z (eta_z/sigma_z)^2, N = sum_z (1 +
  eta_z) N_z; convex in eta, profiled by projected Newton with analytic gradient and Hessian (Newton decrement
  < 1e-9 at exit).
* :class:`GaussianChi2` (stats/gaussian.py) -- sum[(D - sum_z (1 + eta_z + sum_l eta^sys_zl) N_z)/sigma]^2 + sum
  (eta/sigma_z)^2 + sum eps_l^2 with eta^sys_zl = eps_l Delta^+ (eps >= 0) or |eps_l| Delta^- (eps < 0):
  piecewise quadratic, so profiled *exactly* by solving the normal equations on every sign branch.
* :class:`~cevnsfit.stats.morphing.MorphedPoissonChi2` -- the Poisson chi^2 with templates morphed on a grid of
  two shape nuisances (XENONnT's tly, tqy).

Every profile runs in compiled kernels (:mod:`cevnsfit.stats.compiled`).

**Named parameters** (the costs add like iminuit's: a sum's parameters are the union of its costs').  A cost has
``parameters`` (names in its order) and ``priors`` (name -> (centre, sigma); sigma None: free, no prior term; 0:
fixed at the centre, no prior term).  A component normalisation is ``norm_<component>`` (``norm_cevns``,
``norm_brn``), valued eta = a - 1 (centre 0); a GaussianChi2 shape systematic is ``shape_<systematic>``
(``shape_cevns_f90``) and the morph nuisances are named by their ``shape_names`` (``tly``, ``tqy``), all in units
of their unit-width prior.  ``FitResult.nuisances`` is keyed by these names.

``cost.fix({name: value})`` is a new cost of the same kind with those parameters fixed (held exactly: the
Poisson and morphed Newton hold the parameter, the Gaussian normal equations lose its column); its chi^2 keeps
their prior terms at the fixed values, so a scan of a fixed parameter is its profile likelihood with the
constraint.  Unknown names raise :class:`~cevnsfit.errors.InputError` naming the known ones.

A :class:`SumCost` names its costs' parameters ``<cost>.<parameter>`` (``csi.norm_cevns``, ``lar.shape_cevns_f90``);
``fix`` routes such names to the costs.  By default the costs' nuisances are independent (AC22): the chi^2 is the
sum of theirs.  Opt in to a shared normalisation with :class:`SharedFactor`: one factor (1 + theta) on a named
component of each member, one prior (theta/sigma)^2, profiled jointly with the members' own nuisances:
chi^2 = min_{theta > -1} [sum_e chi^2_e(component scaled by 1 + theta) + (theta/sigma)^2]; its name (unprefixed)
is a parameter of the sum, and ``fix`` accepts it.  For example::

    from cevnsfit.stats.chi2 import SharedFactor, SumCost

    total = SumCost([csi.cost(), lar.cost()],
                    shared=[SharedFactor("sns_flux", 0.10, {"csi": "cevns", "lar": "cevns"})])
    total.parameters[:2]                 # ('csi.norm_cevns', 'csi.norm_brn')
    total({"csi": s_csi, "lar": s_lar})  # the flux profiled with both experiments' nuisances
    total.fix({"sns_flux": 0.05, "csi.norm_brn": 0.0})({"csi": s_csi, "lar": s_lar})

**Replicas** (toys, :mod:`cevnsfit.stats.toys`) use the same objects, through the replica half of the contract
(:class:`ReplicaCost`, which every cost here implements): ``sample`` draws data as the chi^2 assumes them,
``replicas`` profiles a batch whose rows carry their own data and pull-centre shifts (the pull terms become
((eta - eta_0)/sigma)^2), ``expected`` gives the counts at the nuisances profiled for a signal.
"""

from __future__ import annotations

from .cost import SIGNAL, BinnedCost, Cost, FitResult, ReplicaCost, linear_signals
from .gaussian import GaussianChi2
from .poisson import PoissonChi2
from .sum import SharedFactor, SumCost

__all__ = ["SIGNAL", "BinnedCost", "Cost", "FitResult", "GaussianChi2", "PoissonChi2", "ReplicaCost", "SharedFactor",
           "SumCost", "linear_signals"]
