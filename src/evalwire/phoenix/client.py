"""Whether Phoenix is on, and the client evalwire talks to it through.

Phoenix is on for ``evalwire run`` when the command line says ``--phoenix URL``,
the config file says ``[phoenix] url``, or the environment names a server the
way the Phoenix client reads it (``PHOENIX_ENDPOINT``,
``PHOENIX_COLLECTOR_ENDPOINT`` or ``PHOENIX_BASE_URL``); ``--no-phoenix`` or
``[phoenix] enabled = false`` turns it off. A client handed to the Python API
(``ExperimentRunner(..., phoenix_client=client)``) is used as it is.

The API key is ``PHOENIX_API_KEY`` (the client's own variable, also read from
``.env.phoenix``), or the variable ``[phoenix] api_key_env`` names. It goes
into the ``Authorization`` header and nowhere else: every message evalwire
makes from a Phoenix error passes through :meth:`Connection.redact`.

``phoenix.client`` is imported here, in :func:`connect`, and only once Phoenix
is on and first needed: it is slow to import, and ``evalwire --help`` and local
runs must not pay for it.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from evalwire.errors import DatasetError, UsageError

if TYPE_CHECKING:
    from evalwire.config import Config
    from evalwire.models import Dataset
    from evalwire.phoenix.loader import RemoteDataset
    from evalwire.phoenix.recorder import Recorder

__all__ = ["Connection", "Phoenix", "Target", "connect", "describe", "is_transient", "target"]

#: Environment variables that name a Phoenix server and so turn Phoenix on.
ADDRESS_VARIABLES = ("PHOENIX_ENDPOINT", "PHOENIX_COLLECTOR_ENDPOINT", "PHOENIX_BASE_URL")
KEY_VARIABLE = "PHOENIX_API_KEY"
_SECTION_TYPES: dict[str, tuple[type, ...]] = {
    "url": (str,),
    "enabled": (bool,),
    "api_key_env": (str,),
    "splits": (list, str),
    "dataset_version": (str,),
    "timeout": (int, float),
    "workers": (int,),
    "attempts": (int,),
    "backoff": (int, float),
    "drain_timeout": (int, float),
    "traces": (bool,),
    "trace_wait": (int, float),
}
_MIN_SECRET = 6  # shorter header values are not worth hiding (and would mangle messages)
#: Default ``[phoenix] workers``. The server, not the client, bounds the rate: on a
#: loopback server more requests at once only queue there (benchmarks/README.md).
DEFAULT_WORKERS = 8


@dataclass(frozen=True)
class Target:
    """Where Phoenix is, as the settings say; nothing is connected yet.

    ``url`` is ``None`` when the Phoenix client resolves the address itself
    (from its environment variables); ``source`` says where the setting came
    from; ``client`` is a ready client given through the Python API.
    """

    url: str | None
    source: str
    client: Any = None
    api_key_env: str | None = None
    timeout: float = 60.0
    #: Requests at once (``[phoenix] workers``): the connection pool keeps that many alive.
    workers: int = DEFAULT_WORKERS


def section(config: Config) -> dict[str, Any]:
    """The ``[phoenix]`` table, checked: a wrong type is a :class:`UsageError`."""
    table = config.section("phoenix")
    where = f"{config.config_path or 'config'}: [phoenix]"
    for key, value in table.items():
        types = _SECTION_TYPES.get(key)
        if types is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(t.__name__ for t in types)
            raise UsageError(f"{where} {key} must be {wanted}, not {value!r}")
    return table


def target(config: Config, *, required: bool = False) -> Target | None:
    """Where Phoenix is for this session, or ``None`` when Phoenix is off.

    With ``required`` (``evalwire upload``) Phoenix is never off: with nothing
    configured, the Phoenix client's defaults apply (``http://localhost:6006``).
    """
    table = section(config)
    api_key_env = table.get("api_key_env")
    timeout = float(table.get("timeout", 60.0))
    if config.getoption("no_phoenix") and not required:
        return None
    found = _target(config, table, required, api_key_env, timeout)
    if found is not None:
        found = replace(found, workers=max(1, int(table.get("workers", DEFAULT_WORKERS))))
    if found is not None and found.client is None and api_key_env:
        if not os.environ.get(api_key_env, "").strip():
            raise UsageError(
                f"[phoenix] api_key_env names the environment variable {api_key_env}, "
                "which is not set"
            )
    return found


def _target(
    config: Config,
    table: dict[str, Any],
    required: bool,
    api_key_env: str | None,
    timeout: float,
) -> Target | None:
    client = config.getoption("phoenix_client")
    if client is not None:
        return Target(None, "the client given to evalwire", client, api_key_env, timeout)
    url = config.getoption("phoenix_url")
    if url:
        return Target(check_url(url, "--phoenix"), "--phoenix", None, api_key_env, timeout)
    if table.get("enabled") is False and not required:
        return None
    if table.get("url"):
        url = check_url(table["url"], f"{config.config_path}: [phoenix] url")
        return Target(url, "[phoenix] url", None, api_key_env, timeout)
    for variable in ADDRESS_VARIABLES:
        if os.environ.get(variable, "").strip():
            return Target(None, variable, None, api_key_env, timeout)
    if required:
        return Target(None, "the Phoenix client's defaults", None, api_key_env, timeout)
    return None


def check_url(url: str, where: str) -> str:
    """``url`` with a scheme (``localhost:6006`` → ``http://localhost:6006``), or a UsageError."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    match = re.fullmatch(r"https?://[^/?#\s]+\S*", text, re.IGNORECASE)
    if not match:
        raise UsageError(f"{where} expects a URL like http://localhost:6006, not {url!r}")
    return text.rstrip("/")


class Connection:
    """A Phoenix client and what evalwire needs around it.

    ``client`` is a ``phoenix.client.Client``; ``url`` is the server's base URL
    for messages and links; ``http`` is the ``httpx.Client`` under ``client``
    when evalwire built it (``None`` for a client it was given), for the few
    REST calls the client has no method for.
    """

    def __init__(
        self,
        client: Any,
        url: str,
        http: Any = None,
        secrets: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.url = url
        self.http = http
        self.headers = headers or {}  # sent with every request: credentials, never printed
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len))[::-1]

    def redact(self, text: str) -> str:
        """``text`` with every credential replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        """Close the HTTP client evalwire built (a client it was given stays open)."""
        if self.http is not None:
            self.http.close()


def connect(target: Target) -> Connection:
    """Build the client for ``target`` (importing ``phoenix.client``); no request is made."""
    if target.client is not None:
        given = target.client
        return Connection(given, _url_of(given), None, _secrets(target), _headers_of(given))
    import httpx
    from phoenix.client import Client
    from phoenix.client.utils.config import get_base_url, get_env_client_headers

    headers = dict(get_env_client_headers())
    if target.api_key_env:
        key = os.environ.get(target.api_key_env, "").strip()
        if not key:
            raise UsageError(
                f"[phoenix] api_key_env names the environment variable {target.api_key_env}, "
                "which is not set"
            )
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        headers["Authorization"] = f"Bearer {key}"
    url = target.url or str(get_base_url()).rstrip("/")
    # One client for every request of the session: its pool keeps a connection
    # alive per worker, so no request pays for a new connection (httpx's default
    # keeps 20, fewer than a [phoenix] workers above that would use). The cap on
    # connections stays httpx's: dataset loads in experiment threads share it.
    http = httpx.Client(
        base_url=url,
        headers=headers,
        timeout=httpx.Timeout(target.timeout, connect=10.0),
        limits=httpx.Limits(
            max_connections=max(target.workers, 100),
            max_keepalive_connections=max(target.workers, 20),
        ),
    )
    secrets = (*_secrets(target), *headers.values())
    return Connection(Client(http_client=http), url, http, secrets, headers)


def _url_of(client: Any) -> str:
    # The client has no public accessor for its address; it is only for messages.
    http = getattr(client, "_client", None)
    base = getattr(http, "base_url", None)
    return str(base).rstrip("/") if base else "the Phoenix server"


def _headers_of(client: Any) -> dict[str, str]:
    # Likewise: a given client's headers (its credentials) for the span exporter.
    headers = getattr(getattr(client, "_client", None), "headers", None)
    return dict(headers) if headers else {}


def _secrets(target: Target) -> tuple[str, ...]:
    names = [KEY_VARIABLE, *([target.api_key_env] if target.api_key_env else [])]
    return tuple(os.environ[n] for n in names if os.environ.get(n))


# -- errors -------------------------------------------------------------------

_DETAIL_LIMIT = 300


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an ``httpx.HTTPStatusError``, else ``None``."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may help: no connection, a timeout, a 5xx or a 429."""
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    status = status_of(exc)
    return status is not None and (status >= 500 or status == 429)


def detail_of(exc: BaseException) -> str:
    """What the server said about a failed request (its ``detail``), clipped."""
    response = getattr(exc, "response", None)
    if response is None:
        return ""
    try:
        detail = response.json().get("detail", "")
    except Exception:
        detail = getattr(response, "text", "")
    text = " ".join(str(detail).split())
    return text[:_DETAIL_LIMIT] + ("..." if len(text) > _DETAIL_LIMIT else "")


def describe(exc: BaseException, connection: Connection | None = None) -> str:
    """One line for a failed Phoenix call, credentials removed."""
    import httpx

    url = connection.url if connection is not None else "the Phoenix server"
    status = status_of(exc)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        reason = str(exc) or type(exc).__name__
        text = f"cannot reach Phoenix at {url} ({reason}); is the server running?"
    elif isinstance(exc, httpx.TimeoutException):
        text = f"Phoenix at {url} did not answer in time ({type(exc).__name__})"
    elif isinstance(exc, httpx.TransportError):
        text = f"lost the connection to Phoenix at {url} ({type(exc).__name__}: {exc})"
    elif status in (401, 403):
        text = (
            f"Phoenix at {url} refused the request ({status}): set {KEY_VARIABLE} "
            "(or [phoenix] api_key_env) to a valid API key"
        )
    elif status is not None:
        detail = detail_of(exc)
        text = f"Phoenix at {url} answered {status}" + (f": {detail}" if detail else "")
    else:
        text = f"{type(exc).__name__}: {exc}"
    return connection.redact(text) if connection is not None else text


# -- one session's Phoenix ----------------------------------------------------


class Phoenix:
    """Phoenix for one session: the target, the connection once made, what was loaded.

    Kept in ``config.stash["phoenix"]``. Datasets are loaded in experiment
    threads, so the connection is made under a lock, and the datasets that came
    from Phoenix are remembered (by object identity) for the recorder.
    """

    def __init__(self, target: Target, config: Config) -> None:
        self.target = target
        self.config = config
        self.recorder: Recorder | None = None
        self._connection: Connection | None = None
        self._lock = threading.Lock()
        self._remote: dict[int, tuple[Dataset, RemoteDataset]] = {}

    def connection(self) -> Connection:
        """The connection, made on first use; a bad setting is a :class:`DatasetError`."""
        with self._lock:
            if self._connection is None:
                try:
                    self._connection = connect(self.target)
                except ImportError as exc:
                    raise DatasetError(
                        f"Phoenix is on ({self.target.source}) but the Phoenix client cannot "
                        f"be imported ({exc}); install arize-phoenix-client or use --no-phoenix"
                    ) from None
            return self._connection

    def remember(self, dataset: Dataset, remote: RemoteDataset) -> None:
        with self._lock:
            self._remote[id(dataset)] = (dataset, remote)

    def recall(self, dataset: Dataset) -> RemoteDataset | None:
        """The Phoenix side of a dataset this plugin loaded (forgotten once recalled)."""
        with self._lock:
            entry = self._remote.pop(id(dataset), None)
        if entry is not None and entry[0] is dataset:
            return entry[1]
        # A Phoenix dataset handed to evalwire.run_experiment arrives converted,
        # marked by its source ``phoenix:ID`` (see evalwire.api.as_dataset).
        source = dataset.source or ""
        if source.startswith("phoenix:") and dataset.version:
            from evalwire.phoenix.loader import RemoteDataset

            node_ids = {example.id: example.id for example in dataset}
            return RemoteDataset(
                source.split(":", 1)[1], dataset.name, dataset.version, (), node_ids
            )
        return None

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            self._remote.clear()
        if connection is not None:
            connection.close()
