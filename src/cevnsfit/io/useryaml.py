"""YAML files that users write and pass on the command line (detector files): bounded and alias-free.

* The file is read up to :data:`MAX_BYTES` (1 MB; a detector file is a few kB): a larger file, ``/dev/zero`` or a
  pipe that never ends is refused before anything is parsed.
* Aliases and anchors (``&a`` / ``*a``) are refused outright, before any node is built: nested aliases expand
  exponentially ("billion laughs": a few hundred bytes that stand for 10^9 strings), and no user file needs them.
* The safe loader (plain data: mappings, lists, strings, numbers) builds the document; a document nested too deeply
  or holding a number Python refuses (an integer of thousands of digits) is refused too.

Every refusal is an :class:`~cevnsfit.errors.InputError` naming the file (exit 2 on the command line).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import InputError

MAX_BYTES = 1_000_000


class AliasRefused(yaml.YAMLError):
    """An anchor or an alias in a user file (see the module docstring)."""

    def __init__(self, mark):
        super().__init__("YAML aliases/anchors are not allowed")
        self.mark = mark


class NoAliasSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses every anchor and alias while composing (before any node is built)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise AliasRefused(event.start_mark)
        return super().compose_node(parent, index)


def read_user_text(path: str | Path, what: str = "file") -> str:
    """The text of ``path``, at most :data:`MAX_BYTES`; :class:`InputError` when it is larger or not UTF-8.
    ``OSError`` (missing, unreadable) is left to the caller, which knows what to say."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InputError(f"{path}: {what} larger than {MAX_BYTES // 1_000_000} MB (refused before parsing)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: {what} is not UTF-8 text") from None


def load_user_yaml(text: str, where: str):
    """The document of ``text`` (safe loader, no aliases); ``where`` names the file in the error."""
    if len(text) > MAX_BYTES:
        raise InputError(f"{where}: larger than {MAX_BYTES // 1_000_000} MB (refused before parsing)")
    try:
        return yaml.load(text, Loader=NoAliasSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except AliasRefused as exc:
        raise InputError(f"{where}: YAML aliases/anchors are not allowed (line {exc.mark.line + 1})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise InputError(f"{where}: not valid YAML (nested too deeply)") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer beyond Python's digit limit
        raise InputError(f"{where}: not valid YAML ({str(exc).split(':')[0].splitlines()[0][:120]})") from None
