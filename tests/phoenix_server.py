"""Start a Phoenix server for the test suite, listening on loopback only.

Run as ``python tests/phoenix_server.py`` by :mod:`phoenix_fixture`, with the
server's settings in the environment (``PHOENIX_HOST=127.0.0.1``,
``PHOENIX_PORT``, ``PHOENIX_WORKING_DIR``, ``PHOENIX_SQL_DATABASE_URL``, ...).

Phoenix's HTTP server binds ``PHOENIX_HOST``, but its OTLP gRPC receiver binds
every interface (``[::]``) whatever the host. Experiments need no gRPC, so the
receiver is constructed disabled: nothing listens beyond loopback.
"""

from __future__ import annotations

import sys
from typing import Any


def _disable_grpc() -> None:
    import phoenix.server.app as app

    class _LoopbackOnly(app.GrpcServer):  # type: ignore[misc,name-defined]
        """Phoenix's gRPC receiver, always disabled (it would bind ``[::]``)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disabled"] = True
            super().__init__(*args, **kwargs)

    # create_app's lifespan looks the class up in its module when the server starts.
    app.GrpcServer = _LoopbackOnly  # type: ignore[attr-defined]


def main() -> None:
    _disable_grpc()
    from phoenix.server.main import main as phoenix_main

    sys.argv = ["phoenix", "serve"]
    phoenix_main()


if __name__ == "__main__":
    main()
