"""`eg subscriptions get` shows a subscription's filter (against a real gateway)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest

from tests.cli.kit import VARIABLES
from tests.cli.test_resources import Space, add_function
from tests.support.process import GatewayProcess

PATTERN = {"data": {"plan": ["pro"]}, "source": [{"prefix": "/users"}]}


@pytest.fixture
def space(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> Iterator[Space]:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    process = GatewayProcess(tmp_path / "data").start()
    try:
        yield Space(process, "filters")
    finally:
        process.stop()


def test_subscriptions_get_shows_the_filter(space: Space):
    add_function(space)
    space.create("eventtypes", {"name": "user.created"})
    body = {"type": "async", "eventType": "user.created", "functionId": "crm", "path": "/x"}
    subscription = space.create("subscriptions", {**body, "filter": PATTERN})
    subscription_id = subscription["subscriptionId"]

    fields = {row[0]: row[1:] for row in space.rows("subscriptions", "get", subscription_id)}
    shown = json.loads(space.ok("subscriptions", "get", subscription_id, "-o", "json"))

    assert fields["filter"] == [json.dumps(PATTERN, separators=(",", ":"))]
    assert shown["filter"] == PATTERN
