"""The bundles API and the disk (``api/runtime.py``): an upload that would leave the disk
below its reserve is answered 507 with the usual error body (``runtime/bundle_reserve.py``;
the disk is simulated), and a bundle looked up counts as used for garbage collection
(``runtime/bundles_local.py``; the clock is injected)."""

from __future__ import annotations

import pathlib
import time

import httpx

from eventgateway.api.runtime import create_runtime_app
from eventgateway.runtime.bundles import BundleStore
from eventgateway.runtime.bundles_local import LocalBundleStore
from eventgateway.runtime.logs import MemoryLogStore
from tests.runtime_api.test_runtime_api import BASE, SPACE, make_zip

GIB = 1024 * 1024 * 1024
GRACE_S = 3600.0


async def test_an_upload_over_the_disk_reserve_is_507_and_stores_nothing(tmp_path: pathlib.Path):
    def nearly_full(path: pathlib.Path) -> tuple[int, int, int]:
        return 100 * GIB, 100 * GIB - (GIB + 1024), GIB + 1024  # 1 KiB above the reserve

    root = tmp_path / "bundles"
    app = create_runtime_app(BundleStore(root, disk_usage=nearly_full), MemoryLogStore())
    data = make_zip({"handler.py": "x = 1\n" * 1000})  # unzips to 6,000 bytes

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        response = await c.post(
            f"/v1/spaces/{SPACE}/bundles",
            content=data,
            headers={"content-type": "application/zip"},
        )

    assert response.status_code == 507
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["message"].startswith(
        "Not enough disk space for this bundle: it unzips to 5.9 KiB (the zip is "
    )
    assert "has 1.0 GiB free of 100.0 GiB, but keeps 1.0 GiB free" in error["message"]
    assert not root.exists() or not any(root.iterdir())


async def test_a_bundle_looked_up_is_kept_for_another_grace(tmp_path: pathlib.Path):
    shift_s = [0.0]

    async def no_function_names_any() -> set[str]:
        return set()

    bundles = LocalBundleStore(
        tmp_path / "bundles",
        named=no_function_names_any,
        gc_grace_s=GRACE_S,
        gc_interval_s=None,
        clock=lambda: time.time() + shift_s[0],
    )
    app = create_runtime_app(bundles, MemoryLogStore())
    info = await bundles.put(make_zip({"handler.py": "x = 1\n"}))
    shift_s[0] = GRACE_S + 1  # unused for longer than the grace

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        # What `eg deploy` asks before it skips the upload and writes the function.
        response = await c.head(f"/v1/spaces/{SPACE}/bundles/{info.bundle_id}")

    assert response.status_code == 200
    assert await bundles.collect_garbage() == []
    shift_s[0] = 2 * (GRACE_S + 1)
    assert await bundles.collect_garbage() == [info.bundle_id]
