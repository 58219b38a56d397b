"""The names quality gates go by: options, config-file keys, the stash key.

Kept apart from the records so the ``gates`` plugin can declare its options
(``evalwire --help``) without importing the gating logic.
"""

#: The key of ``config.stash`` holding the list of :class:`~evalwire.gates.GateResult` records.
STASH_KEY = "gates"
#: The option (``config.options``) and config-file key of ``--fail-under``.
FAIL_UNDER = "fail_under"
#: The option and config-file key of ``--max-regression``.
MAX_REGRESSION = "max_regression"
#: The option and config-file key of ``--baseline``.
BASELINE = "baseline"
#: The baseline that means "this experiment's most recent finished record".
LAST = "last"
#: The minus sign of a regression threshold (``baseline 0.82 − 0.02``).
MINUS = "\u2212"
