"""Neutrino sources: the :class:`~.base.Source` protocol and its registered kinds (imported here, so that every
kind registers itself when the package is imported)."""

from . import pion_dar, reactor, sun  # noqa: F401  (registration)
from .base import SOURCES, Source, make_source, register_source

__all__ = ["SOURCES", "Source", "make_source", "register_source"]
