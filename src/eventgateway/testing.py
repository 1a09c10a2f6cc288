"""Test a service's functions and subscriptions without a server: the user test kit.

:class:`LocalGateway` runs a real gateway inside the test process (an
:class:`~eventgateway.embedded.EmbeddedGateway` on free ports, SQLite in a temporary
directory, no API keys), deploys a ``serverless.yml`` service into it, and offers helpers
to emit events, call routes and functions, and wait for and inspect invocations::

    def test_crm(eventgateway):
        eventgateway.emit("user.created", data={"username": "ada"})
        invocation = eventgateway.wait_for_invocation("addUserToCRM")
        assert invocation.ok and "Saving user to CRM:" in invocation.output

Installed as a pytest plugin (entry point ``pytest11``), this module provides the
``eventgateway`` fixture: the service whose ``serverless.yml`` is nearest above the test
file, deployed into a fresh gateway. ``docs/testing.md`` is the guide. Importing this
module is cheap: the gateway is imported only when one is started.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from eventgateway._testing_invocations import Invocation, InvocationRecorder, invocation

if TYPE_CHECKING:
    import httpx

    from eventgateway._testing_invocations import Record
    from eventgateway.deploy.apply import DeployResult
    from eventgateway.deploy.model import ServiceSpec
    from eventgateway.embedded import EmbeddedGateway
    from eventgateway.sdk import EmitResult, EventGateway

__all__ = ["Invocation", "LocalGateway", "find_service"]

logger = logging.getLogger(__name__)

SERVICE_FILES: Final = ("serverless.yml", "serverless.yaml")


def find_service(start: pathlib.Path, stop_at: pathlib.Path | None = None) -> pathlib.Path:
    """The ``serverless.yml`` nearest to ``start``: in its folder, else in the ones above.

    Args:
        start: a file (a test module) or a folder to search from.
        stop_at: the last folder to look in (pytest's rootdir), when ``start`` is in it.

    Raises:
        FileNotFoundError: no ``serverless.yml`` (or ``.yaml``) there or above.

    .. versionadded:: 0.1.0
    """
    folder = start if start.is_dir() else start.parent
    folder = folder.resolve()
    last = stop_at.resolve() if stop_at is not None else None
    searched = []
    for candidate in (folder, *folder.parents):
        searched.append(candidate)
        for name in SERVICE_FILES:
            if (candidate / name).is_file():
                return candidate / name
        if candidate == last:
            break
    raise FileNotFoundError(
        f"no serverless.yml in {folder} or the folders above it up to {searched[-1]}; put the "
        "test in the service's folder, or name the file with "
        '@pytest.mark.eventgateway(service="path/to/serverless.yml")'
    )


class LocalGateway:
    """A gateway in this process with a service deployed: emit, then assert what ran.

    Args:
        service_file: the service's ``serverless.yml`` (or its folder); ``None`` starts
            an empty gateway in space ``default``.
        stage: the stage to deploy (``${sls:stage}``), default ``dev``.
        options: ``${opt:…}`` values, as ``--name value`` on the command line.
        environ: ``${env:…}`` values (default: this process's environment).
        data_dir: where the gateway keeps its files; default a temporary folder,
            removed by :meth:`stop`.

    The methods block; the gateway runs on a thread of its own, so they may be called
    from any thread (in an async test, ``await asyncio.to_thread(…)`` keeps its loop
    free). Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        service_file: str | os.PathLike[str] | None = None,
        *,
        stage: str | None = None,
        options: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        path = None if service_file is None else pathlib.Path(service_file)
        if path is not None and path.is_dir():
            path = find_service(path, path)
        self.service_file = path
        self.stage = stage
        self.options = dict(options or {})
        self.environ = environ
        self._data_dir = None if data_dir is None else pathlib.Path(data_dir)
        self._temporary: pathlib.Path | None = None
        self._embedded: EmbeddedGateway | None = None
        self._client: EventGateway | None = None
        self._http: httpx.Client | None = None
        self._recorder = InvocationRecorder()
        self.service: ServiceSpec | None = None
        """The deployed service, resolved (``None`` without a service file)."""
        self.deployed: DeployResult | None = None
        """What the deploy did."""

    def __enter__(self) -> LocalGateway:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the gateway and deploy the service into it.

        Raises:
            ConfigError: the ``serverless.yml`` is invalid, or the deploy was refused.
            RuntimeError: it is running already.
        """
        if self._embedded is not None:
            raise RuntimeError("the local gateway is running already")
        import httpx

        from eventgateway.deploy.manifest import load_service
        from eventgateway.embedded import EmbeddedGateway
        from eventgateway.sdk import EventGateway
        from eventgateway.settings import Durability, Settings

        # Read the service first: a broken serverless.yml fails before anything starts.
        if self.service_file is not None:
            self.service = load_service(
                self.service_file, stage=self.stage, options=self.options, environ=self.environ
            )
            for warning in self.service.warnings:
                logger.warning("%s", warning)
        data_dir = self._data_dir
        if data_dir is None:
            data_dir = self._temporary = pathlib.Path(tempfile.mkdtemp(prefix="eg-test-"))
        settings = Settings(
            host="127.0.0.1",
            events_port=0,
            config_port=0,
            data_dir=data_dir,
            dispatch="inline",  # no delivery worker process to start for every test
            shutdown_timeout_s=5.0,
            log_level="warning",
            durability=Durability(synchronous="NORMAL"),  # a test needs no power-loss safety
        )
        self._embedded = EmbeddedGateway(settings)
        try:
            self._embedded.start(timeout_s)
            self._recorder.attach(self._embedded.gateway.runtime.functions)
            self._client = EventGateway(
                self._embedded.events_url, config_url=self._embedded.config_url, space=self.space
            )
            self._http = httpx.Client(base_url=self._embedded.events_url, timeout=30.0)
            if self.service is not None:
                self._deploy(self.service)
        except BaseException:
            self.stop()
            raise

    def _deploy(self, service: ServiceSpec) -> None:
        from eventgateway.deploy.apply import deploy
        from eventgateway.deploy.package import build_bundle

        bundle = None
        if any(function.needs_bundle for function in service.functions):
            bundle = build_bundle(
                service.directory, service.package_patterns, config_file=service.source.name
            )
        self.deployed = deploy(self.client, service, bundle=bundle)

    def stop(self) -> None:
        """Stop the gateway (gracefully) and remove its temporary data; idempotent."""
        for closable in (self._client, self._http):
            if closable is not None:
                closable.close()
        self._client = self._http = None
        if self._embedded is not None:
            self._embedded.stop(timeout_s=30.0)  # a drain may take two shutdown timeouts
            self._embedded = None
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    # -- where things are ----------------------------------------------------------------------

    @property
    def space(self) -> str:
        """The service's space (``custom.eventgateway.space``), else ``default``."""
        return "default" if self.service is None else self.service.gateway.space

    @property
    def events_url(self) -> str:
        """The Events API's base URL, ``http://127.0.0.1:<port>``."""
        return self._running().events_url

    @property
    def config_url(self) -> str:
        """The Configuration API's base URL, ``http://127.0.0.1:<port>``."""
        return self._running().config_url

    @property
    def client(self) -> EventGateway:
        """An SDK client of this gateway and space, for everything the helpers lack."""
        self._running()
        assert self._client is not None
        return self._client

    def _running(self) -> EmbeddedGateway:
        if self._embedded is None:
            raise RuntimeError("the local gateway is not running; call start() first")
        return self._embedded

    # -- acting --------------------------------------------------------------------------------

    def emit(self, event: str, data: Any = None, **options: Any) -> EmitResult:
        """Emit ``event`` with ``data`` to the service's space (path ``/<space>/``).

        ``options`` are :meth:`eventgateway.EventGateway.emit`'s (``path``, ``id``,
        ``source``, ``headers``, ``mode``…).
        """
        return self.client.emit(event, data, **options)

    def request(self, method: str, path: str = "/", **options: Any) -> httpx.Response:
        """Call an HTTP route of the service, as its clients would.

        Args:
            method: ``GET``, ``POST``…
            path: relative to the space: ``/users/1`` requests ``/<space>/users/1``.
            options: for :meth:`httpx.Client.request` (``json``, ``content``,
                ``headers``, ``params``).
        """
        self._running()
        assert self._http is not None
        url = f"/{self.space}/{path.lstrip('/')}"
        return self._http.request(method, url, **options)

    def invoke(self, function_id: str, data: Any = None, *, event: str | None = None) -> Invocation:
        """Call a function once, now, with an event carrying ``data``; wait for its answer.

        The event's type is ``event``, else that of the function's first subscription.
        The invocation is not offered again by :meth:`wait_for_invocation`.
        """
        answer = self.client.invoke(function_id, data, event=event)
        request_id = answer.get("requestId") or ""
        record = self._recorder.take(request_id)
        if record is not None:
            return self._invocation(record)
        return Invocation(  # an http function: nothing ran here
            function_id=function_id,
            request_id=request_id,
            ok=bool(answer.get("ok")),
            result=answer.get("result"),
            error=answer.get("error"),
            duration_ms=float(answer.get("durationMs") or 0.0),
        )

    # -- observing -----------------------------------------------------------------------------

    def wait_for_invocation(self, function_id: str, *, timeout_s: float = 10.0) -> Invocation:
        """The next invocation of ``function_id`` not returned before; waits for it.

        Invocations are offered in the order they finished, each once (see :meth:`reset`).

        Raises:
            TimeoutError: none within ``timeout_s``; the message lists what did run.
        """
        self._running()
        record = self._recorder.next(function_id, timeout_s)
        if record is None:
            ran = ", ".join(self._recorder.function_ids()) or "none"
            raise TimeoutError(
                f"function {function_id!r} was not invoked within {timeout_s} s (functions "
                f"invoked so far: {ran}); check that an event reached a subscription of it: "
                f"{self._recent_events()}"
            )
        return self._invocation(record)

    def invocations(self, function_id: str | None = None) -> list[Invocation]:
        """Every invocation so far (of ``function_id``, if given), offered or not."""
        return [self._invocation(record) for record in self._recorder.all(function_id)]

    def reset(self) -> None:
        """Forget the invocations so far: :meth:`wait_for_invocation` waits for new ones."""
        self._recorder.reset()

    def logs(
        self, function_id: str, *, since: str | float | None = None, filter: str | None = None
    ) -> list[dict[str, Any]]:
        """A function's log lines: ``{"timestamp", "requestId", "stream", "message"}``."""
        return self.client.logs(function_id, since=since, filter=filter, limit=10_000)

    def _invocation(self, record: Record) -> Invocation:
        # Every line of the invocation reached the log store before the invocation ended.
        since = record.started_s - 1.0
        entries = self.client.logs(record.spec.function_id, since=since, limit=10_000)
        return invocation(record, entries)

    def _recent_events(self) -> str:
        from eventgateway.sdk import GatewayError

        try:
            events = self.client.list_events(limit=5)
        except GatewayError as exc:
            return f"the delivery log could not be read ({exc})"
        if not events:
            return f"no event was accepted in space {self.space!r}"
        shown = [f"{item.get('type')} ({item.get('state')})" for item in events]
        return f"recent events in space {self.space!r}: {', '.join(shown)}"


# -- the pytest plugin -------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - LocalGateway works without pytest
    pass
else:

    def pytest_addoption(parser: pytest.Parser) -> None:
        """The ``eventgateway_scope`` ini option."""
        parser.addini(
            "eventgateway_scope",
            "How long an `eventgateway` fixture's gateway lives: function (default, a fresh "
            "gateway per test) or module (one per test module, invocations reset per test).",
            default="function",
        )

    _SCOPES = ("function", "module")

    def pytest_configure(config: pytest.Config) -> None:
        """Register the ``eventgateway`` marker; check ``eventgateway_scope``."""
        config.addinivalue_line(
            "markers",
            "eventgateway(service=..., stage=None, options=None, environ=None): what the "
            "`eventgateway` fixture deploys; service=None starts an empty gateway.",
        )
        scope = config.getini("eventgateway_scope")
        if scope not in _SCOPES:
            raise pytest.UsageError(f"eventgateway_scope is {scope!r}: use function or module")

    def _scope(fixture_name: str, config: pytest.Config) -> Any:
        return config.getini("eventgateway_scope")

    @pytest.fixture(scope=_scope)
    def _eventgateway_shared(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[LocalGateway]:
        marker = request.node.get_closest_marker("eventgateway")
        kwargs = dict(marker.kwargs) if marker is not None else {}
        service = kwargs.pop("service", ...)
        if service is ...:
            service = find_service(request.path, request.config.rootpath)
        elif service is not None:
            service = request.path.parent / service  # relative to the test module
        with LocalGateway(
            service, data_dir=tmp_path_factory.mktemp("eventgateway"), **kwargs
        ) as gateway:
            yield gateway

    @pytest.fixture
    def eventgateway(_eventgateway_shared: LocalGateway) -> LocalGateway:
        """A :class:`LocalGateway` with the test's service deployed.

        The service is the ``serverless.yml`` nearest above the test file, or the one
        ``@pytest.mark.eventgateway(service=…)`` names (with ``stage``, ``options``,
        ``environ``).
        """
        _eventgateway_shared.reset()
        return _eventgateway_shared
