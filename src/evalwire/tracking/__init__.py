"""A tracker for code that evaluates on its own and only wants the results kept.

::

    from evalwire.tracking import SimpleExperimentTracker

    tracker = SimpleExperimentTracker("qa-bot", score_key="metrics.accuracy")
    for row in my_eval_loop():
        tracker.log({"input": ..., "output": ..., "expected": ..., "metrics": {"accuracy": 0.9}})
    tracker.close()  # or `with SimpleExperimentTracker(...) as tracker:`

Everything goes where ``evalwire run`` puts it, through the same code: the
project is an experiment name in the store ``OUTPUT_DIR/evalwire.db``
(``output_dir`` defaults to ``.evalwire``, the folder ``evalwire run`` uses),
each *run* of the tracker is one experiment record, and each logged result is
one run of it with one evaluation, the score. ``evalwire history --store
OUTPUT_DIR/evalwire.db --name PROJECT`` lists the tracker's runs, and
``evalwire show`` / ``compare`` / ``export`` read them like any other record.
The CSV files the ``--csv`` reporter writes are appended to as well:
``OUTPUT_DIR/experiment_results.csv`` as results are logged, and
``OUTPUT_DIR/leaderboard.csv`` when a run is finished (``csv=False`` turns
both off).

The score is found in each result with ``score_key``: a dotted path
(``"metrics.accuracy"``) or a list of keys (``["generation", "score"]``, for
keys that contain dots; an integer picks from a list). A result without a
number there is recorded with an evaluation *error* saying what was missing,
never as a zero and never by raising (see :func:`extract_score`).

Runs are written by the store's writer thread (committed within about 50 ms
of :meth:`~SimpleExperimentTracker.log`); :meth:`~SimpleExperimentTracker.close`
(also called at interpreter exit) finishes every open run and commits the rest.
"""

from __future__ import annotations

from evalwire.tracking.scores import ScoreError, ScorePath, extract_score, score_path
from evalwire.tracking.tracker import SimpleExperimentTracker

__all__ = ["ScoreError", "ScorePath", "SimpleExperimentTracker", "extract_score", "score_path"]
