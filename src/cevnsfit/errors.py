"""Exceptions that the command line turns into one clear line and a non-zero exit, and the check of a number."""

import math


class CevnsfitError(Exception):
    """Base class for user-facing errors (bad input, missing or malformed data).

    ``exit_code``: what the command line exits with (README, "Faults": 2 bad input or data, including an output
    path refused before anything is written; 1 an output that could not be written once writing began)."""

    exit_code = 2


class DataError(CevnsfitError):
    """A data file is missing, truncated or malformed."""


class InputError(CevnsfitError):
    """A user argument is invalid (unknown name, non-finite or out-of-range number)."""


class OutputError(CevnsfitError):
    """An output could not be written while it was being written (a full disk, a quota, an I/O error): the
    environment, not the input -- exit 1, like an ``OSError`` while writing a file."""

    exit_code = 1


def finite_float(value, what: str) -> float:
    """``value`` as a finite float; :class:`InputError` naming ``what`` otherwise (booleans are not numbers)."""
    if isinstance(value, bool):
        raise InputError(f"{what} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise InputError(f"{what} must be finite, got {value!r}")
    return out
