"""What a ``serverless.yml`` asks for, as the gateway's resources (pure, no I/O).

:mod:`eventgateway.deploy.manifest` reads a file into a :class:`ServiceSpec`;
:mod:`eventgateway.deploy.plan` compares it with what the gateway holds and
:mod:`eventgateway.deploy.apply` makes the difference real. Everything here is already
validated and resolved: variables substituted, defaults applied, subscription and CORS
paths prefixed with ``/<space>`` the way the original plugin stored them.
"""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_SPACE",
    "DEFAULT_STAGE",
    "RUNTIME_TYPES",
    "CorsSpec",
    "EventTypeSpec",
    "FunctionSpec",
    "GatewayTarget",
    "ServiceSpec",
    "SubscriptionSpec",
]

DEFAULT_STAGE: Final = "dev"
DEFAULT_SPACE: Final = "default"
# Function types whose code is a bundle uploaded from the service directory.
RUNTIME_TYPES: Final = frozenset({"python", "nodejs"})


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    """``custom.eventgateway``: where to deploy. ``None``: not set in the file."""

    url: str | None = None
    config_url: str | None = None
    space: str = DEFAULT_SPACE
    api_key: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One function of the service.

    ``provider`` is the body's ``provider`` object without ``bundle``: for a runtime type
    (``python``/``nodejs``) the deploy adds the uploaded bundle's id; for ``http`` it is
    ``{"url": …}`` and complete. ``options`` holds the extension fields of the function
    body, verbatim (``signingSecrets``, ``contentMode``).
    """

    key: str  # the key under `functions:`
    function_id: str
    type: str
    provider: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # where the function is declared, for messages

    @property
    def needs_bundle(self) -> bool:
        """Whether the function runs code uploaded from the service directory."""
        return self.type in RUNTIME_TYPES


@dataclass(frozen=True, slots=True)
class CorsSpec:
    """``cors:`` of a sync subscription: ``true`` (gateway defaults) or the object's fields."""

    allowed_origins: tuple[str, ...] | None = None
    allowed_methods: tuple[str, ...] | None = None
    allowed_headers: tuple[str, ...] | None = None
    allow_credentials: bool | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """One ``eventgateway`` event of a function.

    ``path`` is the full stored path (``/<space>`` + the declared path, default ``/``);
    ``method`` is upper-case. ``options`` holds the extension fields of the subscription
    body, verbatim (``delivery``, ``retryPolicy``, ``ordered``, ``filter``). ``where`` names the
    declaration (``functions.addUserToCRM.events[0]``) for messages.
    """

    function_id: str
    type: Literal["async", "sync"]
    event_type: str
    path: str
    method: str
    cors: CorsSpec | None = None
    options: dict[str, Any] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True, slots=True)
class EventTypeSpec:
    """An event type the service declares (``eventTypes``) or uses in a subscription."""

    name: str
    authorizer_id: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A whole ``serverless.yml``, resolved and validated."""

    name: str
    stage: str
    source: pathlib.Path  # the serverless.yml read
    gateway: GatewayTarget
    functions: tuple[FunctionSpec, ...] = ()
    subscriptions: tuple[SubscriptionSpec, ...] = ()
    event_types: tuple[EventTypeSpec, ...] = ()
    package_patterns: tuple[str, ...] = ()  # package.patterns, in order; "!" excludes
    warnings: tuple[str, ...] = ()  # "serverless.yml:7: unknown key …", shown by the CLI

    @property
    def directory(self) -> pathlib.Path:
        """The service directory: the one holding the serverless.yml."""
        return self.source.parent

    @property
    def metadata(self) -> dict[str, str]:
        """The metadata every resource of this service carries, and is found by."""
        return {"service": self.name, "stage": self.stage}

    def with_space(self, space: str) -> ServiceSpec:
        """This service deployed to ``space`` instead (``--space`` on the command line).

        Subscription paths move with it: ``/<old space>/x`` becomes ``/<space>/x``.
        """
        if space == self.gateway.space:
            return self
        old_prefix = f"/{self.gateway.space}"
        subscriptions = tuple(
            dataclasses.replace(item, path=f"/{space}{item.path.removeprefix(old_prefix)}")
            for item in self.subscriptions
        )
        gateway = dataclasses.replace(self.gateway, space=space)
        return dataclasses.replace(self, gateway=gateway, subscriptions=subscriptions)
