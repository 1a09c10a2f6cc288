"""The disk reserve of bundle uploads (``runtime/bundle_reserve.py``): an upload that would
leave the file system with less free space than min(1 GiB, 5 %) is refused with 507 before
anything is extracted.

The disk is simulated: a ``disk_usage`` whose free space is a fixed capacity minus what the
bundle store really wrote under its temporary root.
"""

from __future__ import annotations

import pathlib

import pytest

from eventgateway.errors import InsufficientStorageError
from eventgateway.runtime.bundle_reserve import GIB, check_reserve, reserve_bytes
from eventgateway.runtime.bundles import BundleStore
from tests.runtime_bundles.test_bundles import left_behind, make_zip

MIB = 1024 * 1024


class Disk:
    """A file system of ``total`` bytes with ``room`` bytes free before the bundle store
    wrote anything; records the paths it was asked about."""

    def __init__(self, root: pathlib.Path, *, total: int, room: int) -> None:
        self.root = root
        self.total = total
        self.room = room
        self.asked: list[pathlib.Path] = []

    def __call__(self, path: pathlib.Path) -> tuple[int, int, int]:
        self.asked.append(path)
        written = 0
        if self.root.exists():
            written = sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())
        free = self.room - written
        return self.total, self.total - free, free


@pytest.mark.parametrize(
    ("total", "reserve"),
    [(10 * GIB, 512 * MIB), (20 * GIB, GIB), (4 * 1024 * GIB, GIB), (100 * MIB, 5 * MIB)],
)
def test_the_reserve_is_5_percent_of_the_file_system_and_at_most_1_gib(total, reserve):
    assert reserve_bytes(total) == reserve


async def test_uploads_stop_before_they_eat_into_the_reserve(tmp_path):
    # QA's case in small: zips of a few KiB that unzip to 4 MiB each, on a disk with room
    # for two of them above the reserve.
    root = tmp_path / "bundles"
    disk = Disk(root, total=100 * GIB, room=GIB + 9 * MIB)
    store = BundleStore(root, disk_usage=disk)
    zips = [make_zip({"blob.bin": bytes([n]) * (4 * MIB)}) for n in range(3)]
    assert all(len(data) < 64 * 1024 for data in zips)

    kept = [await store.put(data) for data in zips[:2]]
    with pytest.raises(InsufficientStorageError) as refused:
        await store.put(zips[2])

    assert refused.value.status_code == 507
    message = refused.value.message
    assert message.startswith("Not enough disk space for this bundle: it unzips to 4.0 MiB")
    assert "but keeps 1.0 GiB free for events (5 % of the disk, at most 1 GiB)" in message
    assert left_behind(root) == sorted(info.bundle_id for info in kept)  # nothing extracted


async def test_an_upload_that_leaves_exactly_the_reserve_is_accepted(tmp_path):
    root = tmp_path / "bundles"
    data = make_zip({"blob.bin": b"\0" * MIB})
    disk = Disk(root, total=10 * GIB, room=512 * MIB + MIB + len(data))
    store = BundleStore(root, disk_usage=disk)

    info = await store.put(data)

    assert (info.path / "blob.bin").stat().st_size == MIB
    with pytest.raises(InsufficientStorageError):
        check_reserve(root, 1, zip_bytes=len(data), disk_usage=disk)  # now one byte short


async def test_the_disk_of_a_root_not_created_yet_is_asked_about(tmp_path):
    root = tmp_path / "data" / "bundles"
    disk = Disk(root, total=100 * GIB, room=GIB)  # no room above the reserve

    with pytest.raises(InsufficientStorageError):
        await BundleStore(root, disk_usage=disk).put(make_zip({"handler.py": "x = 1\n"}))

    assert disk.asked == [tmp_path]  # the nearest directory that exists
    assert not root.exists()
