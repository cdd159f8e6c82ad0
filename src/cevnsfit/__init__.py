"""cevnsfit: fits of public COHERENT CEvNS data for Standard-Model and light-mediator physics.

Internal units: energies, masses and momenta in MeV; lengths in fm (form factors) or m/cm where the name says so;
times in ns (flux, decay constants) or us (analysis axes), always stated in names and docstrings.
"""

__version__ = "0.1.0"
