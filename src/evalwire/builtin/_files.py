"""The files reporters write: where an option points, writing one whole or not at
all, and the one line a reporter prints when it cannot.

A reporter that writes its file when the session ends resolves the path with
:func:`target`, writes through :func:`atomic_file` (a temporary file in the
same folder, flushed to disk, then renamed over the target, so a reader never
sees half a file) and, when anything goes wrong, returns :func:`cannot_write`'s
exit status 1 instead of raising: the session's results stand, its exit status
says a report is missing. :func:`write_report` does all three.
"""

from __future__ import annotations

import os
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from evalwire.config import Config


def target(config: Config, option: str) -> Path | None:
    """The absolute path ``option`` names, or ``None`` when it is not set.

    A path given on the command line is relative to the current folder; one
    from the config file is relative to the project root.
    """
    given = config.options.get(option)
    if given is not None:
        return Path(os.fspath(given)).expanduser().absolute()
    setting = config.getoption(option)
    if setting is None:
        return None
    return config.resolve(os.fspath(setting)).absolute()


def write_report(
    config: Config, option: str, what: str, write: Callable[[Path], object]
) -> int | None:
    """Call ``write(path)`` with the path ``option`` names (it must be set).

    Whatever goes wrong, from a path that cannot be resolved to a document
    that cannot be built or written, is said in one line on stderr
    (:func:`cannot_write`) and returned as exit status 1, never raised.
    """
    path: Any = config.getoption(option)
    try:
        path = target(config, option)
        assert path is not None
        write(path)
    except Exception as exc:  # never raise from a reporter: say so, and fail the session
        return cannot_write(what, path, exc)
    return None


@contextmanager
def atomic_file(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """A new file (UTF-8 text, or bytes) that becomes ``path`` when the block ends.

    Missing folders are created. If the block raises, ``path`` is left as it
    was and the temporary file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        # "x" creates the file with the usual permissions (0o666 less the umask).
        with open(tmp, "xb") if binary else open(tmp, "x", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def reason(exc: BaseException) -> str:
    """Why a file could not be written, in a few words: the OS's own for an
    ``OSError`` ("Permission denied"), else the exception's type and message."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def cannot_write(what: str, path: object, problem: BaseException | str) -> int:
    """Say on stderr that ``what`` (e.g. "JUnit XML") could not be written to
    ``path`` and why; return the exit status a reporter gives for it, 1."""
    why = problem if isinstance(problem, str) else reason(problem)
    try:
        sys.stderr.write(f"evalwire: cannot write {what} to {path}: {why}\n")
    except Exception:  # a closed stderr must not turn a report into a traceback
        pass
    return 1
