"""evalwire's performance harness: ``python -m benchmarks [--quick] [--only NAME]``.

One module per scenario; each exposes ``run(...) -> dict`` taking its sizes as
keyword arguments (so the smoke test can call it tiny) and returning a result
with ``name``, ``title``, ``params``, ``rows``, ``checks`` and ``notes``.
See ``benchmarks/README.md`` for what each scenario measures and why.
"""

from __future__ import annotations

SCENARIOS = ("schedule", "overhead", "memory", "startup", "phoenix_recording")
