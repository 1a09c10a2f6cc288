"""Keys at rest and in logs: the SQLite files hold hashes only; no secret is ever logged."""

from __future__ import annotations

import logging
import pathlib
import sqlite3

import pytest

from eventgateway.auth.operator import OPERATOR_KEY_FILE
from tests.auth.authkit import OPERATOR_KEY, auth_gateway, bearer


def secret_of(token: str) -> str:
    return token.rsplit("_", 1)[1]


async def test_the_store_files_hold_no_key_and_no_secret(tmp_path: pathlib.Path):
    data_dir = tmp_path / "data"
    async with auth_gateway(data_dir) as gw:
        claimed = await gw.claim("acme")
        tokens = [claimed["apiKey"], await gw.key("acme", "emit"), await gw.key("acme", "read")]
        revoked = await gw.key("acme", "read")
        await gw.config.delete(f"/v1/spaces/acme/keys/{revoked.split('_')[1]}", headers=gw.operator)
        tokens.append(revoked)

        # While running: the WAL may still hold the newest pages, so read every file.
        files = {path.name: path.read_bytes() for path in data_dir.rglob("*") if path.is_file()}
    files.update({path.name: path.read_bytes() for path in data_dir.rglob("*") if path.is_file()})

    assert "gateway.db" in files
    for name, content in files.items():
        if name == OPERATOR_KEY_FILE:
            continue
        for token in tokens:
            assert token.encode() not in content, name
            assert secret_of(token).encode() not in content, name
        assert OPERATOR_KEY.encode() not in content, name
    with sqlite3.connect(data_dir / "gateway.db") as db:
        stored = [row[0] for row in db.execute("SELECT value FROM entries WHERE kind = 'keys'")]
    assert len(stored) == 3
    assert all(b'"secretHash":"sha256:' in bytes(value) for value in stored)


async def test_no_key_reaches_the_log(caplog: pytest.LogCaptureFixture, tmp_path: pathlib.Path):
    caplog.set_level(logging.DEBUG)
    async with auth_gateway(tmp_path / "data") as gw:
        claimed = await gw.claim("acme")
        issued = await gw.key("acme", "read")
        wrong = claimed["apiKey"][:-1] + ("0" if claimed["apiKey"][-1] != "0" else "1")
        await gw.config.get("/v1/spaces/acme/functions", headers=bearer(wrong))
        await gw.config.get("/v1/spaces/globex/functions", headers=bearer(issued))
        await gw.config.post("/v1/spaces/acme/functions", json={}, headers=bearer(issued))
        metrics = (await gw.config.get("/v1/metrics", headers=gw.operator)).text

    for token in (claimed["apiKey"], issued, wrong, OPERATOR_KEY):
        assert secret_of(token) not in caplog.text
        assert secret_of(token) not in metrics
