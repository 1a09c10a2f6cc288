"""The benchmark's load generators post events with random ids, as producers do.

Our SDKs and ``eg emit`` send ``uuid4()`` ids; a counter would keep the gateway's
de-duplication index growing at its end and hide what random ids cost it.
"""

from __future__ import annotations

import http.server
import json
import pathlib
import re
import shutil
import subprocess
import threading
from typing import ClassVar

import pytest
from bench.loadgen import body_maker

UUID_SHAPED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LUA = pathlib.Path(__file__).parents[2] / "bench" / "event.lua"


def test_the_asyncio_generator_gives_every_event_a_random_uuid_shaped_id() -> None:
    _, make = body_maker("event", 1)
    ids = [json.loads(make(0))["id"] for _ in range(2000)]  # the same seq: ids do not use it
    assert all(UUID_SHAPED.fullmatch(event_id) for event_id in ids), ids[:3]
    assert len(set(ids)) == len(ids)

    _, make_batch = body_maker("batch", 50)
    batch_ids = [event["id"] for event in json.loads(make_batch(0))]
    assert len(set(batch_ids)) == 50


class _Collecting(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    ids: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.ids.append(json.loads(body)["id"])
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.timeout(60)
def test_wrk_posts_a_random_uuid_shaped_id_per_request() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        subprocess.run(
            ["wrk", "-t1", "-c2", "-d1s", "-s", str(LUA), url],
            capture_output=True,
            timeout=30,
            check=True,
        )
    finally:
        server.shutdown()
        server.server_close()
    ids = _Collecting.ids
    assert len(ids) > 100
    assert all(UUID_SHAPED.fullmatch(event_id) for event_id in ids), ids[:3]
    assert len(set(ids)) == len(ids)
