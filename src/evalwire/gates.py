"""Quality gates: thresholds an experiment's scores must meet for the session to pass.

A gate says "the mean of evaluator E must be at least T". Gates come from
three places, and for one (experiment, evaluator) the first of these that
names the evaluator wins:

1. the command line, ``--fail-under EVALUATOR=VALUE`` (repeatable),
2. the experiment's own table, ``[experiments.NAME] fail_under = {accuracy = 0.8}``,
3. the config file's top level, ``fail_under = {accuracy = 0.8}``.

A gate from (1) or (3) applies to every experiment that has the evaluator,
and fails as *missing* when no experiment has it; a gate from (2) names its
experiment, so it fails as missing when that experiment has no such evaluator.

A *regression* gate says "the mean of evaluator E may be at most DELTA below
the baseline's": ``--max-regression EVALUATOR=DELTA`` (repeatable), or
``max_regression = {accuracy = 0.02}`` in the same two tables, with the same
precedence. The baseline is a record of the embedded store, chosen by
``--baseline`` (repeatable), else ``baseline = ...`` in the experiment's
table, else at the top level, else ``last``:

* ``last``: the experiment's own most recent finished record from before the
  session (see :mod:`evalwire.store.baseline`);
* an id (or unique prefix): that record, for the experiment of the record's
  name; an experiment no given record is named after is compared with
  ``last`` if it is given too, else with the one record given, if only one is
  (``--baseline 1a2b3c`` compares every experiment with one record).

An experiment that has no baseline fails the gate as *missing* ("no
baseline"), so CI notices a baseline that is not there instead of passing in
silence; run once without ``--max-regression`` (or with the gate off) to
record the first one.

Each gate checked becomes a :class:`GateResult`, a plain record other
reporters (JUnit, markdown) read from ``config.stash["gates"]``. The
``gates`` plugin (:mod:`evalwire.builtin.gates`) wires this to the hooks.

The work is done in :mod:`evalwire.gating` (the records, reading the gates,
checking them); this module is the place to import it from.
"""

from evalwire.gating.checking import check, choose_baseline, declared_evaluators, unmatched
from evalwire.gating.names import BASELINE, FAIL_UNDER, LAST, MAX_REGRESSION, MINUS, STASH_KEY
from evalwire.gating.reading import plan
from evalwire.gating.records import TOLERANCE, Gate, GatePlan, GateResult, format_number

__all__ = [
    "BASELINE",
    "FAIL_UNDER",
    "LAST",
    "MAX_REGRESSION",
    "MINUS",
    "STASH_KEY",
    "TOLERANCE",
    "Gate",
    "GatePlan",
    "GateResult",
    "check",
    "choose_baseline",
    "declared_evaluators",
    "format_number",
    "plan",
    "unmatched",
]
