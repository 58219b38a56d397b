"""Who is writing a record, and whether that process is still there.

When the :class:`~evalwire.store.records.Recorder` starts an experiment's
row, or reopens one for ``--resume``, it notes its own process in the row's
``writer`` column (JSON): the host name and pid, and on Linux the process's
start time (``/proc/PID/stat`` field 22, clock ticks since boot) and the boot
it counts from (``/proc/sys/kernel/random/boot_id``), so a pid the kernel
has since handed to another process is not mistaken for the writer.

A record whose status is ``running`` but whose writer is gone was
interrupted: the process was killed (``kill -9``, a CI timeout, the OOM
killer) before it could write the final status. Readers show such a record
as :data:`INTERRUPTED`; the writer is gone when, on the same host,

- the machine has rebooted since (another boot id),
- no process has the pid, or it is a zombie,
- or the process with the pid started at another time (the pid was reused).

Elsewhere than Linux only the pid is checked (best effort: a reused pid
looks alive), and on Windows nothing is (so the record stays ``running``).
A writer on another host cannot be checked from here, nor can a record
written before writers were noted: both stay ``running``.

Readers only *display* ``interrupted``; nothing writes it back. The
commands that read a store must not write to it (it may be read-only, or a
copy), whether a writer is alive depends on the host asking, and a write
would race with a ``--resume`` reopening the record. The row keeps what is
known (``running``, and who was writing), and every reader derives the rest
the same way, through :func:`shown_status`.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

#: What readers show for a ``running`` record whose writer is gone.
INTERRUPTED = "interrupted"
RUNNING = "running"

_PROC = Path("/proc")
_BOOT_ID = _PROC / "sys" / "kernel" / "random" / "boot_id"
#: Process states of a process that has exited (``man 5 proc``).
_DEAD_STATES = frozenset("ZXx")


@dataclass(frozen=True)
class Writer:
    """The process that writes a record: its host and pid, and on Linux when it started."""

    host: str
    pid: int
    #: Start time in clock ticks after boot (``/proc/PID/stat`` field 22), Linux only.
    started: int | None = None
    #: The boot ``started`` counts from, Linux only.
    boot: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"host": self.host, "pid": self.pid}
        if self.started is not None:
            data["started"] = self.started
        if self.boot is not None:
            data["boot"] = self.boot
        return data

    @classmethod
    def from_json(cls, text: str | None) -> Writer | None:
        """The writer noted in a row, or ``None`` when none (or nothing readable) was."""
        if not text:
            return None
        try:
            data = json.loads(text)
            host, pid = data["host"], data["pid"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(host, str) or not isinstance(pid, int) or isinstance(pid, bool):
            return None
        started = data.get("started")
        boot = data.get("boot")
        return cls(
            host,
            pid,
            started if isinstance(started, int) and not isinstance(started, bool) else None,
            boot if isinstance(boot, str) else None,
        )

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def this_process() -> Writer:
    """This process, as a record's writer."""
    # Looked up by pid: a forked child that records is a writer of its own.
    return _process(os.getpid())


@lru_cache(maxsize=4)
def _process(pid: int) -> Writer:
    stat = _stat(pid)
    return Writer(_host(), pid, stat[1] if stat else None, _boot() if stat else None)


def alive(writer: Writer | None) -> bool | None:
    """Whether ``writer`` is still running: ``None`` when this host cannot tell."""
    if writer is None or writer.host != _host():
        return None
    if writer.boot is not None and _boot() not in (None, writer.boot):
        return False  # the machine rebooted: every process of that boot is gone
    stat = _stat(writer.pid)
    if stat is not None:
        state, started = stat
        if state in _DEAD_STATES:
            return False
        return writer.started is None or started == writer.started
    return _signal_zero(writer.pid)


def shown_status(status: str, writer: Writer | None) -> str:
    """The status readers show: ``running`` with a writer known to be gone is ``interrupted``."""
    if status == RUNNING and alive(writer) is False:
        return INTERRUPTED
    return status


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def _boot() -> str | None:
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeError):
        return None


def _stat(pid: int) -> tuple[str, int] | None:
    """The state and start time of process ``pid`` from ``/proc``, or ``None``."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # Field 2, the command name, is in parentheses and may hold spaces and
    # parentheses itself: the fields after it start after the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[19])  # fields 3 (state) and 22 (starttime)
    except (IndexError, ValueError):
        return None


def _signal_zero(pid: int) -> bool | None:
    """Whether a process ``pid`` exists, asked of the kernel without signalling it."""
    if sys.platform == "win32":
        return None  # os.kill(pid, 0) would send CTRL_C_EVENT there
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, and belongs to someone else
    except OSError:
        return None
    return True
