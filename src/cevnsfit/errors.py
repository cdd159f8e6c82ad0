"""Exceptions that the command line turns into one clear line and a non-zero exit."""


class CevnsfitError(Exception):
    """Base class for user-facing errors (bad input, missing or malformed data)."""


class DataError(CevnsfitError):
    """A data file is missing, truncated or malformed."""


class InputError(CevnsfitError):
    """A user argument is invalid (unknown name, non-finite or out-of-range number)."""
