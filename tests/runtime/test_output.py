"""OutputPump: bytes to entries (marked records joined), long ones cut, the sentinel swallowed."""

from __future__ import annotations

import asyncio

from eventgateway.runtime import output
from eventgateway.runtime.base import LogLine
from eventgateway.runtime.output import MAX_LINE_BYTES, OutputPump
from tests.runtime.conftest import RecordingSink, wait_until

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


# -- records: lines ending in CONTINUED are joined into one entry ----------------------------


async def test_continued_lines_are_one_entry_without_the_marker():
    sink = RecordingSink()
    reader, pump = make_pump(sink)

    await run(pump, reader, b"Saving user to CRM:\xff\n{'a': 1}\nnext\n")

    assert [line.message for line in sink.lines] == ["Saving user to CRM:\n{'a': 1}", "next"]


async def test_blank_lines_and_carriage_returns_inside_a_record():
    sink = RecordingSink()
    reader, pump = make_pump(sink)

    await run(pump, reader, b"a\r\xff\n\xff\n\xff\nb\r\n\n")

    assert [line.message for line in sink.lines] == ["a\n\n\nb", ""]


async def test_a_finished_line_is_emitted_at_once_an_open_record_is_not():
    sink = RecordingSink()
    reader, pump = make_pump(sink)
    task = asyncio.create_task(pump.run())

    reader.feed_data(b"single\nfirst\xff\n")
    await wait_until(lambda: len(sink.lines) == 1)
    assert sink.lines[0].message == "single"
    reader.feed_data(b"sec")
    await asyncio.sleep(0.01)
    assert len(sink.lines) == 1
    reader.feed_data(b"ond\xff\nthird\n")  # a later read continues the record

    await wait_until(lambda: len(sink.lines) == 2)
    assert sink.lines[1].message == "first\nsecond\nthird"
    reader.feed_eof()
    await task


async def test_an_open_record_waits_only_briefly(monkeypatch):
    monkeypatch.setattr(output, "PENDING_ENTRY_S", 0.05)
    sink = RecordingSink()
    reader, pump = make_pump(sink)
    task = asyncio.create_task(pump.run())

    reader.feed_data(b"promised\xff\n")
    await wait_until(lambda: len(sink.lines) == 1, timeout_s=2)
    reader.feed_data(b"late\n")
    await wait_until(lambda: len(sink.lines) == 2)

    assert [line.message for line in sink.lines] == ["promised", "late"]
    reader.feed_eof()
    await task


async def test_the_sentinel_ends_an_open_record():
    sink = RecordingSink()
    reader, pump = make_pump(sink)
    task = asyncio.create_task(pump.run())
    waiter = asyncio.create_task(pump.wait_for(1))

    reader.feed_data(b"a\xff\nb" + f"{TOKEN}:1\n".encode())
    await asyncio.wait_for(waiter, 5)

    assert [line.message for line in sink.lines] == ["a\nb"]
    reader.feed_eof()
    await task


async def test_end_of_stream_ends_an_open_record():
    sink = RecordingSink()
    reader, pump = make_pump(sink)

    await run(pump, reader, b"a\xff\n", b"b\xff\n")

    assert [line.message for line in sink.lines] == ["a\nb"]


async def test_a_record_over_the_entry_limit_is_cut_at_line_ends():
    sink = RecordingSink()
    reader, pump = make_pump(sink)
    lines = [f"{index:07d}".encode() + b"y" * 1000 for index in range(700)]  # ~2.7 entries

    # Fed in pieces that split lines and markers, as pipe reads do.
    data = b"\xff\n".join(lines) + b"\n"
    await run(pump, reader, *(data[at : at + 7001] for at in range(0, len(data), 7001)))

    messages = [line.message for line in sink.lines]
    assert len(messages) == 3
    assert all(len(message) <= MAX_LINE_BYTES for message in messages)
    assert "\n".join(messages) == b"\n".join(lines).decode()


async def test_a_token_without_a_sequence_number_is_an_ordinary_line():
    sink = RecordingSink()
    reader, pump = make_pump(sink)

    await run(pump, reader, f"say {TOKEN}:x\n".encode())

    assert [line.message for line in sink.lines] == [f"say {TOKEN}:x"]


async def test_a_marker_is_never_stored_even_at_a_cut_or_at_the_end():
    sink = RecordingSink()
    reader, pump = make_pump(sink)
    long_line = b"z" * (MAX_LINE_BYTES - 1)  # its marker falls on the cut

    await run(pump, reader, long_line + b"\xff\nnext\nkilled mid-record\xff")

    messages = [line.message for line in sink.lines]
    assert messages == ["z" * (MAX_LINE_BYTES - 1), "\nnext", "killed mid-record"]


async def test_a_sentinel_across_the_entry_limit_is_still_recognised():
    sentinel = f"{TOKEN}:12\n".encode()
    for before in range(MAX_LINE_BYTES - len(sentinel) - 2, MAX_LINE_BYTES + 1):
        output_ = b"x" * before
        for chunks in (
            [output_ + sentinel],
            [(output_ + sentinel)[:MAX_LINE_BYTES], (output_ + sentinel)[MAX_LINE_BYTES:]],
        ):
            sink = RecordingSink()
            reader, pump = make_pump(sink)

            await run(pump, reader, *chunks)

            messages = [line.message for line in sink.lines]
            assert "".join(messages) == "x" * before, (before, messages[-1][-30:])
