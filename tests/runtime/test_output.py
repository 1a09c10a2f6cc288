"""OutputPump: bytes to lines, long lines cut, the sentinel swallowed and reported."""

from __future__ import annotations

import asyncio

from eventgateway.runtime.base import LogLine
from eventgateway.runtime.output import MAX_LINE_BYTES, OutputPump
from tests.runtime.conftest import RecordingSink

TOKEN = "\x1eeg-test"


def make_pump(sink: RecordingSink) -> tuple[asyncio.StreamReader, OutputPump]:
    reader = asyncio.StreamReader()

    def line(stream, text):
        return LogLine("s", "f", "rid", 1.0, stream, text)

    return reader, OutputPump(reader, "stdout", sink, line, TOKEN)


async def run(pump: OutputPump, reader: asyncio.StreamReader, *chunks: bytes) -> None:
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    await pump.run()


async def test_lines_are_split_across_reads_and_carriage_returns_dropped():
    sink = RecordingSink()
    reader, pump = make_pump(sink)

    await run(pump, reader, b"one\ntw", b"o\r\nthree")

    assert [line.message for line in sink.lines] == ["one", "two", "three"]
    assert pump.eof


async def test_a_line_longer_than_the_limit_is_cut():
    sink = RecordingSink()
    reader, pump = make_pump(sink)

    await run(pump, reader, b"x" * (MAX_LINE_BYTES * 2 + 10) + b"\n")

    assert [len(line.message) for line in sink.lines] == [MAX_LINE_BYTES, MAX_LINE_BYTES, 10]


async def test_the_sentinel_is_not_logged_and_releases_waiters():
    sink = RecordingSink()
    reader, pump = make_pump(sink)
    task = asyncio.create_task(pump.run())
    waiter = asyncio.create_task(pump.wait_for(1))

    reader.feed_data(b"before\npartial" + f"{TOKEN}:1\n".encode())
    await asyncio.wait_for(waiter, 5)

    assert [line.message for line in sink.lines] == ["before", "partial"]
    reader.feed_eof()
    await task


async def test_an_older_sentinel_does_not_release_a_newer_wait():
    sink = RecordingSink()
    reader, pump = make_pump(sink)
    task = asyncio.create_task(pump.run())
    waiter = asyncio.create_task(pump.wait_for(2))

    reader.feed_data(f"{TOKEN}:1\n".encode())
    await asyncio.sleep(0)
    assert not waiter.done()
    reader.feed_data(f"{TOKEN}:2\n".encode())
    await asyncio.wait_for(waiter, 5)
    reader.feed_eof()
    await task


async def test_end_of_stream_releases_waiters():
    sink = RecordingSink()
    reader, pump = make_pump(sink)
    waiter = asyncio.create_task(pump.wait_for(7))

    await run(pump, reader, b"last words")

    await asyncio.wait_for(waiter, 5)
    assert [line.message for line in sink.lines] == ["last words"]


async def test_out_of_memory_messages_are_noticed():
    sink = RecordingSink()
    reader, pump = make_pump(sink)

    await run(pump, reader, b"FATAL ERROR: Reached heap limit - JavaScript heap out of memory\n")

    assert pump.oom_hint


async def test_a_failing_sink_does_not_stop_the_pump(caplog):
    class Broken:
        def append(self, lines):
            raise RuntimeError("disk full")

    reader = asyncio.StreamReader()
    pump = OutputPump(
        reader, "stderr", Broken(), lambda s, t: LogLine("s", "f", "r", 1, s, t), TOKEN
    )

    await run(pump, reader, b"a\nb\n")

    assert pump.eof
    assert "log sink failed" in caplog.text
