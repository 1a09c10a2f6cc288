"""The work budget of one event's filters (routing/filter_budget.py), and data that holds a
number beyond a float's range."""

from __future__ import annotations

from typing import Any

from eventgateway.events.structured import parse_structured
from eventgateway.routing.filter_budget import MAX_FILTER_STEPS
from eventgateway.routing.filters import EventView, compile_filter

HUNDRED_PREFIXES = {"data": {"tags": [{"prefix": f"p{i}"} for i in range(100)]}}


def event(data: Any) -> EventView:
    body = (
        b'{"specversion":"1.0","id":"1","source":"/s","type":"t",'
        b'"datacontenttype":"application/json","data":' + data + b"}"
    )
    return EventView(parse_structured(body))


def strings(count: int, last: str = "a") -> bytes:
    return b"[" + b'"a",' * (count - 1) + f'"{last}"'.encode() + b"]"


def test_an_array_within_the_budget_is_matched_as_usual() -> None:
    fits = MAX_FILTER_STEPS // 100  # 100 checks per element
    view = event(b'{"tags":' + strings(fits, last="p7x") + b"}")

    assert compile_filter(HUNDRED_PREFIXES).matches(view) is True
    assert view.budget.exceeded is False


def test_an_array_past_the_budget_fails_closed_before_any_check() -> None:
    view = event(b'{"tags":' + strings(400_000, last="p7x") + b"}")  # 40 million checks

    assert compile_filter(HUNDRED_PREFIXES).matches(view) is False
    assert view.budget.exceeded is True
    assert view.budget.left < 0  # charged up front: nothing was checked


def test_the_budget_is_shared_by_the_filters_of_one_event() -> None:
    half = MAX_FILTER_STEPS // 100 // 2 + 1  # each filter alone fits; two do not
    view = event(b'{"tags":' + strings(half, last="p7x") + b"}")
    first, second = compile_filter(HUNDRED_PREFIXES), compile_filter(HUNDRED_PREFIXES)

    assert first.matches(view) is True
    assert second.matches(view) is False
    assert view.budget.exceeded is True
    assert compile_filter(HUNDRED_PREFIXES).matches_event(view.event) is True  # a new event


def test_arrays_of_objects_count_their_elements_too() -> None:
    pattern = {"data": {"items": {"sku": [{"prefix": "x"}]}}}
    many = b"[" + b'{"sku":"a"},' * (MAX_FILTER_STEPS + 10) + b'{"sku":"xa"}]'
    view = event(b'{"items":' + many + b"}")

    assert compile_filter(pattern).matches(view) is False
    assert view.budget.exceeded is True


def test_a_number_beyond_a_float_in_data_leaves_the_rest_of_data_to_filters() -> None:
    view = event(b'{"plan":"pro","x":1e400}')

    assert compile_filter({"data": {"plan": ["pro"]}}).matches(view) is True
    assert compile_filter({"data": {"plan": [{"exists": False}]}}).matches(view) is False
    assert compile_filter({"data": {"x": [{"numeric": [">", 1e300]}]}}).matches(view) is True
