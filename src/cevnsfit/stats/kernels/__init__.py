"""The compiled kernels of the profiles (numba): see :mod:`cevnsfit.stats.compiled`.  Importing a module
here imports numba."""
