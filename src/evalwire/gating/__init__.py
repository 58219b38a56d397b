"""The workings of quality gates; :mod:`evalwire.gates` is their public face.

- :mod:`~evalwire.gating.names`: option, config-file and stash names (cheap to import);
- :mod:`~evalwire.gating.records`: :class:`Gate`, :class:`GatePlan`, :class:`GateResult`;
- :mod:`~evalwire.gating.reading`: the gates from the command line and the config file;
- :mod:`~evalwire.gating.checking`: each experiment's gates checked, and its baseline chosen.
"""
