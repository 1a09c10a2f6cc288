"""``filter:`` on an eventgateway event in serverless.yml: read, planned, and redeployed.

The gateway is played by ``tests/deploy/test_plan.py``'s :class:`Space`, which stores each
written body through the server's own parsers.
"""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from eventgateway.deploy.manifest import load_service
from eventgateway.deploy.model import ServiceSpec
from eventgateway.deploy.plan import make_plan
from eventgateway.errors import ConfigError
from tests.deploy.test_plan import BUNDLE, Space

FILE = pathlib.Path("serverless.yml")


def service_file(event: str) -> str:
    return textwrap.dedent(
        """\
        service: crm-service
        provider:
          runtime: python3.11
        custom:
          eventgateway:
            space: acme-crm
        functions:
          addUserToCRM:
            handler: handler.handler
            events:
              - eventgateway:
        """
    ) + textwrap.indent(textwrap.dedent(event), " " * 10)


@pytest.fixture(autouse=True)
def in_service_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.chdir(tmp_path)


def load(event: str) -> ServiceSpec:
    FILE.write_text(service_file(event), encoding="utf-8")
    return load_service(FILE, environ={})


PRO = """\
type: async
eventType: user.created
filter:
  data:
    plan: [pro]
    seats: [{numeric: [">", 0]}]
"""


def test_a_filter_is_read_and_a_change_of_it_alone_updates_the_subscription():
    first = load(PRO)
    assert first.subscriptions[0].options == {
        "filter": {"data": {"plan": ["pro"], "seats": [{"numeric": [">", 0]}]}}
    }
    space = Space().apply(make_plan(first, Space().current(first), bundle_id=BUNDLE))
    assert make_plan(first, space.current(first), bundle_id=BUNDLE).empty

    changed = load(PRO.replace("[pro]", "[pro, team]"))
    plan = make_plan(changed, space.current(changed), bundle_id=BUNDLE)

    assert [action.describe() for action in plan.actions] == [
        "~ subscription  async user.created POST /acme-crm/ → addUserToCRM: "
        'filter.data.plan ["pro"] → ["pro", "team"]'
    ]
    assert make_plan(changed, space.apply(plan).current(changed), bundle_id=BUNDLE).empty


def test_removing_the_filter_updates_the_subscription():
    first = load(PRO)
    space = Space().apply(make_plan(first, Space().current(first), bundle_id=BUNDLE))
    plain = load("type: async\neventType: user.created\n")

    plan = make_plan(plain, space.current(plain), bundle_id=BUNDLE)

    assert [(action.op, action.kind) for action in plan.actions] == [("update", "subscription")]
    assert "filter.data.plan" in plan.actions[0].describe()


def test_a_filter_on_a_sync_event_is_refused_where_it_is_written():
    with pytest.raises(ConfigError, match=r"eventgateway\.filter: applies only to async"):
        load('type: sync\neventType: http.request\nfilter: {source: ["/x"]}\n')


AT = "functions.addUserToCRM.events[0].eventgateway.filter"


@pytest.mark.parametrize(
    ("event", "line", "message"),
    [
        ("type: async\neventType: user.created\nfilter: {data: {plan: pro}}\n", 14,
         f"{AT}.data.plan must be a list of values (e.g. [\"pro\"]) or an object, got string"),
        (PRO.replace('">", 0', '">", 18446744073709551616'), 14,
         f"{AT}.data.seats: integers must be between -2**63 and 2**63-1 (64 bits), got "
         "18446744073709551616"),
        (PRO.replace("plan: [pro]", "plan: [.nan]"), 14,
         f"{AT}.data.plan: numbers must be finite, got nan"),
        ("type: async\neventType: user.created\npath: /u\nfilter:\n  $or: [{a: [x]}, {b: []}]\n",
         15, f"{AT}.$or[1].b: needs at least one value"),
    ],
    ids=["shape", "big-int", "nan", "or"],
)  # fmt: skip
def test_an_invalid_filter_is_refused_at_the_line_of_filter(event: str, line: int, message: str):
    # The gateway's own rules and words, with the file, line and key path of the pattern.
    with pytest.raises(ConfigError) as caught:
        load(event)

    assert str(caught.value).startswith(f"serverless.yml:{line}: {message}")
