"""Arize Phoenix for evalwire: datasets from it, experiments recorded in it, testsets uploaded.

The ``phoenix`` plugin (:mod:`evalwire.builtin.phoenix`) holds the hooks and
commands; the work is here:

- :mod:`~evalwire.phoenix.client`: whether Phoenix is on, and the client;
- :mod:`~evalwire.phoenix.loader`: datasets by name, splits, versions;
- :mod:`~evalwire.phoenix.posting`: creating experiments and posting runs and evaluations,
  with retries (shared by the recorder and sync);
- :mod:`~evalwire.phoenix.recorder`: experiments, runs, evaluations, posted as they complete;
- :mod:`~evalwire.phoenix.sync`: ``evalwire sync``, posting from the store what Phoenix lacks;
- :mod:`~evalwire.phoenix.testset`: reading a CSV or JSONL testset, with its problems;
- :mod:`~evalwire.phoenix.upload`: ``evalwire upload`` and ``evalwire validate``.

Nothing here imports ``phoenix.client`` at import time.
"""
