"""One print, console.log or logging record is one log entry, however many lines it has.

The walkthrough's ``print("Saving user to CRM:", user, sep="\\n")`` shows in ``eg logs`` as
one entry whose message holds a newline, the way ``sls logs`` shows a Node.js
``console.log`` of a multi-line object. Output written by other means stays per line.
"""

from __future__ import annotations

import json
import re

import pytest

from eventgateway.runtime.output import MAX_LINE_BYTES
from eventgateway.runtime.protocol import CONTINUED
from tests.runtime.conftest import USER, RecordingSink, event, make_spec, requires_node


def output(sink: RecordingSink, request_id: str, stream: str = "stdout") -> list[str]:
    return [line.message for line in sink.of(request_id) if line.stream == stream]


def assert_clean(sink: RecordingSink) -> None:
    """No marker byte (nor its replacement character) ever reaches a stored message."""
    for line in sink.lines:
        assert CONTINUED.decode("latin-1") not in line.message
        assert "\ufffd" not in line.message


@pytest.mark.parametrize("handler", ["records.two_line_text", "records.sep_newline"])
async def test_one_print_of_two_lines_is_one_entry(runtime, sink, handler):
    result = await runtime.invoke(make_spec(handler), event())

    assert result.ok
    assert output(sink, result.request_id) == [f"Saving user to CRM:\n{USER}"]
    assert_clean(sink)


async def test_two_prints_are_two_entries(runtime, sink):
    result = await runtime.invoke(make_spec("records.two_prints"), event())

    assert output(sink, result.request_id) == ["first print", "second print"]


async def test_blank_lines_inside_a_record_are_kept_and_none_ends_one(runtime, sink):
    result = await runtime.invoke(make_spec("records.blank_lines"), event())

    assert output(sink, result.request_id) == [
        "inside\n\nblank",
        "trailing",
        "",
        "to be continued\nhere",
    ]
    assert_clean(sink)


async def test_logging_exception_is_one_entry_with_its_traceback(runtime, sink):
    result = await runtime.invoke(make_spec("records.logged_exception"), event())

    rid = result.request_id
    (entry,) = output(sink, rid, "stderr")
    head, *rest = entry.split("\n")
    assert re.fullmatch(rf"\[ERROR\]\t\S+Z\t{rid}\tlookup failed", head)
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "KeyError: 'missing'"
    assert any("in logged_exception" in line for line in rest)


async def test_other_writes_to_the_handlers_streams_are_records_too(runtime, sink):
    result = await runtime.invoke(make_spec("records.other_writes"), event())

    rid = result.request_id
    assert output(sink, rid) == [
        "one write\nof two lines",
        "context.log\ntoo",
        "into\na buffer",
        "bytes via .buffer",
    ]
    assert output(sink, rid, "stderr") == ["to stderr\nas one"]


async def test_raw_writes_and_child_processes_stay_one_entry_per_line(runtime, sink):
    result = await runtime.invoke(make_spec("records.raw_writes"), event())

    assert output(sink, result.request_id) == [
        "raw one",
        "raw two",
        "child one",
        "child two",
        "dunder one",
        "dunder two",
    ]


async def test_a_record_larger_than_a_pipe_read_arrives_whole(runtime, sink):
    lines = [f"{index:06d} " + "x" * 96 for index in range(2000)]  # 206,000 bytes

    result = await runtime.invoke(make_spec("records.big_record"), event({"lines": 2000}))

    assert output(sink, result.request_id) == ["\n".join(lines), "after"]
    assert_clean(sink)


async def test_a_record_larger_than_an_entry_is_cut_at_line_ends(runtime, sink):
    count = 3 * MAX_LINE_BYTES // 103 + 5  # ~3 entries' worth
    lines = [f"{index:06d} " + "x" * 96 for index in range(count)]

    result = await runtime.invoke(make_spec("records.big_record"), event({"lines": count}))

    entries = output(sink, result.request_id)
    assert entries[-1] == "after"
    assert len(entries) - 1 >= 3
    assert all(len(entry.encode()) <= MAX_LINE_BYTES for entry in entries)
    assert "\n".join(entries[:-1]) == "\n".join(lines)
    assert_clean(sink)


async def test_threads_printing_at_once_keep_their_records_whole(runtime, sink):
    result = await runtime.invoke(make_spec("records.threads"), event())

    entries = output(sink, result.request_id)
    assert len(entries) == 800
    for entry in entries:
        first, second = entry.split("\n")
        assert second == f"{first} continued"


# -- Node.js ---------------------------------------------------------------------------------


async def test_node_console_log_of_a_multi_line_object_is_one_entry(runtime, sink):
    requires_node()
    spec = make_spec("records.multiLineObject", language="nodejs", bundle="node")

    result = await runtime.invoke(spec, event())

    assert result.ok
    printed = json.loads(result.payload)  # what util.format made of the arguments
    assert printed.count("\n") >= 2
    rid = result.request_id
    assert output(sink, rid) == [printed, "single"]
    assert output(sink, rid, "stderr") == ["an error\nover two lines"]
    assert_clean(sink)


async def test_node_buffers_and_other_encodings_stay_per_line(runtime, sink):
    requires_node()
    spec = make_spec("records.rawWrites", language="nodejs", bundle="node")

    result = await runtime.invoke(spec, event())

    assert output(sink, result.request_id) == ["raw one", "raw two", "string one", "string two"]


async def test_node_a_record_larger_than_a_pipe_read_arrives_whole(runtime, sink):
    requires_node()
    spec = make_spec("records.bigRecord", language="nodejs", bundle="node")
    lines = [f"{index:06d} " + "x" * 96 for index in range(2000)]

    result = await runtime.invoke(spec, event({"lines": 2000}))

    assert output(sink, result.request_id) == ["\n".join(lines), "after"]
    assert_clean(sink)
