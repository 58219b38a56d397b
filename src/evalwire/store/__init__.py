"""The embedded store: every experiment, run and evaluation, in one SQLite file.

``db`` opens a store (checking that the file really is one, and migrating
its schema), ``records`` writes to it as runs complete, ``queries`` reads it
back, ``compare`` holds the statistics behind ``evalwire compare``, and
``commands`` is the command line (``history``, ``show``, ``compare``,
``export``); ``writer`` notes which process writes a record, so that one
whose process was killed reads as ``interrupted``. The plugin that wires them into a session is
:mod:`evalwire.builtin.store`.

Nothing here is imported until a store is used, so ``evalwire --help``
stays fast.
"""

from __future__ import annotations

DEFAULT_FOLDER = ".evalwire"
DEFAULT_FILE = "evalwire.db"

__all__ = ["DEFAULT_FILE", "DEFAULT_FOLDER"]
