"""How long `eg deploy` takes to package a service: 1,000 small files beside a skipped .venv.

    python -m bench.bundle_probe

The floor beside it is reading the same files without zipping them.
"""

from __future__ import annotations

import pathlib
import statistics
import tempfile
import time

from eventgateway.deploy.package import build_bundle

FILES = 1000
SKIPPED = 5000
RUNS = 5


def make_service(root: pathlib.Path) -> None:
    for index in range(FILES):
        path = root / f"pkg{index % 20}" / "sub" / f"mod{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("y" * 300)
    for index in range(SKIPPED):
        path = root / ".venv" / "lib" / f"m{index % 50}" / f"f{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def read_all(root: pathlib.Path) -> int:
    return sum(len(path.read_bytes()) for path in root.glob("pkg*/**/*.py"))


def timed(run: object) -> float:
    started = time.perf_counter()
    run()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        make_service(root)
        floor = [timed(lambda: read_all(root)) for _ in range(RUNS)]
        bundle = [timed(lambda: build_bundle(root)) for _ in range(RUNS)]
        size = build_bundle(root).size
    print(f"{FILES} files of 300 B beside a {SKIPPED}-file .venv; median of {RUNS} runs")
    print("| step | ms | floor (read the files) ms |")
    print("|---|---:|---:|")
    print(
        f"| build_bundle ({size // 1024} KiB zip) | {statistics.median(bundle):.1f} "
        f"| {statistics.median(floor):.1f} |"
    )


if __name__ == "__main__":
    main()
