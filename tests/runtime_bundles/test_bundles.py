"""Code bundles (``runtime/bundles.py``): real zips built here with ``zipfile``, real pip and
npm runs that need no network (a local package with an in-tree build backend; an empty
``package.json``), and every way a zip can try to leave its directory."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import pathlib
import shutil
import stat
import sys
import textwrap
import time
import warnings
import zipfile

import pytest

from eventgateway.errors import ValidationError
from eventgateway.runtime.bundles import BundleStore, installer_environment, is_bundle_id

NOT_A_ZIP = "bundle is not a valid zip archive"


def make_zip(files: dict[str, bytes | str], **infos: zipfile.ZipInfo) -> bytes:
    """A zip of ``files`` (name → content); ``infos`` add entries with hand-made headers."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        for info in infos.values():
            archive.writestr(info, b"payload")
    return buffer.getvalue()


def entry(name: str, *, mode: int = 0o100644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the upper 16 bits of external_attr are st_mode
    info.external_attr = mode << 16
    return info


HANDLER = {"handler.py": "def handler(event, context):\n    return {'message': 'success'}\n"}


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "bundles"


@pytest.fixture
def store(root: pathlib.Path) -> BundleStore:
    return BundleStore(root)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip must never reach an index: a test that needed one would fail, not hang."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")


def left_behind(root: pathlib.Path) -> list[str]:
    return sorted(path.name for path in root.iterdir()) if root.exists() else []


# -- storing ----------------------------------------------------------------------------------


async def test_put_extracts_the_zip_under_its_sha256(store, root):
    data = make_zip({**HANDLER, "lib/util.py": "X = 1\n"})

    info = await store.put(data)

    assert info.bundle_id == hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert info.path == root / info.bundle_id
    assert (info.path / "handler.py").read_text() == HANDLER["handler.py"]
    assert (info.path / "lib" / "util.py").read_text() == "X = 1\n"
    assert store.get(info.bundle_id) == info
    assert store.exists(info.bundle_id)
    assert left_behind(root) == [info.bundle_id]  # no staging directory remains


async def test_the_same_zip_again_is_found_and_nothing_is_redone(store):
    data = make_zip(HANDLER)
    info, created = await store.add(data)
    marker = info.path / "touched-by-test"
    marker.write_text("still here")

    again, created_again = await store.add(data)

    assert (created, created_again) == (True, False)
    assert again == info
    assert marker.read_text() == "still here"  # not extracted a second time


async def test_concurrent_uploads_of_one_zip_create_it_once(store, root):
    data = make_zip(HANDLER)

    results = await asyncio.gather(*(store.add(data) for _ in range(5)))

    assert sorted(created for _, created in results) == [False, False, False, False, True]
    assert len({info for info, _ in results}) == 1
    assert len(left_behind(root)) == 1


async def test_another_store_on_the_same_directory_finds_the_bundle(store, root):
    info = await store.put(make_zip(HANDLER))

    assert BundleStore(root).get(info.bundle_id) == info


async def test_executable_files_stay_executable(store):
    data = make_zip({}, script=entry("bin/run.sh", mode=0o100755))

    info = await store.put(data)

    assert (info.path / "bin" / "run.sh").stat().st_mode & stat.S_IXUSR


async def test_directory_entries_and_dotted_names_are_fine(store):
    data = make_zip({"pkg/": b"", "./pkg/mod.py": "Y = 2\n", "a//b.txt": "b"})

    info = await store.put(data)

    assert (info.path / "pkg" / "mod.py").read_text() == "Y = 2\n"
    assert (info.path / "a" / "b.txt").read_text() == "b"


@pytest.mark.parametrize(
    "bundle_id",
    ["", "abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65, "../" + "0" * 61, "0" * 64 + "\n"],
)
def test_anything_but_64_lowercase_hex_is_not_a_bundle_id(store, bundle_id):
    assert not is_bundle_id(bundle_id)
    assert store.get(bundle_id) is None
    assert not store.exists(bundle_id)


def test_an_unknown_bundle_is_none(store):
    assert store.get("0" * 64) is None
    assert is_bundle_id("0123456789abcdef" * 4)


# -- refusing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + b"\x00" * 40])
async def test_something_that_is_not_a_zip_is_refused(store, root, data):
    with pytest.raises(ValidationError) as info:
        await store.put(data)

    assert info.value.message == NOT_A_ZIP
    assert info.value.status_code == 400
    assert left_behind(root) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil.py", "points outside the bundle"),
        ("a/../../evil.py", "points outside the bundle"),
        ("..\\evil.py", "points outside the bundle"),
        ("/etc/evil.py", "has an absolute path"),
        ("\\evil.py", "has an absolute path"),
        ("C:\\evil.py", "has an absolute path"),
        ("c:/evil.py", "has an absolute path"),
    ],
)
async def test_entries_that_leave_the_bundle_are_refused(store, root, tmp_path, name, problem):
    data = make_zip(HANDLER, evil=entry(name))

    with pytest.raises(ValidationError, match=problem) as info:
        await store.put(data)

    assert repr(name) in info.value.message
    assert left_behind(root) == []
    assert not (tmp_path / "evil.py").exists()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("a" * 256, id="a file name past 255 bytes"),
        pytest.param("é" * 128, id="255 bytes only counted as UTF-8"),
        pytest.param("/".join(["d"] * 600) + "/f.py", id="a path past 1024 bytes"),
    ],
)
async def test_entry_names_no_file_system_holds_are_a_client_error(store, root, name):
    # QA: they failed mid-extraction, a 500 naming the data dir's path, with a traceback.
    data = make_zip(HANDLER, long=entry(name))

    with pytest.raises(ValidationError, match="has too long a name") as info:
        await store.put(data)

    assert info.value.status_code == 400
    assert str(root) not in info.value.message
    assert left_behind(root) == []


async def test_the_longest_names_allowed_are_extracted(store):
    deep = "/".join(["d" * 100] * 9) + "/" + "f" * 100  # 1,000 bytes in all
    data = make_zip(HANDLER, wide=entry("w" * 255), deep=entry(deep))

    info = await store.put(data)

    assert (info.path / ("w" * 255)).exists()
    assert (info.path / deep).exists()


async def test_symbolic_links_are_refused(store, root):
    data = make_zip(HANDLER, link=entry("secrets", mode=stat.S_IFLNK | 0o777))

    with pytest.raises(ValidationError, match=r"'secrets' is a symbolic link"):
        await store.put(data)
    assert left_behind(root) == []


async def test_encrypted_entries_are_refused(store):
    data = bytearray(make_zip({"locked.py": "secret"}))
    # zipfile cannot write encrypted entries: set the flag bit (central directory, +8).
    central = data.rindex(b"PK\x01\x02")
    data[central + 8] |= 0x1
    data = bytes(data)

    with pytest.raises(ValidationError, match=r"'locked.py' is encrypted"):
        await store.put(data)


async def test_the_metadata_name_is_reserved(store):
    with pytest.raises(ValidationError, match="reserved by eventgateway"):
        await store.put(make_zip({".eg-bundle.json": '{"size": 1}'}))


async def test_two_entries_of_one_path_are_refused(store, root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        data = make_zip({}, first=entry("a.py"), second=entry("a.py"))

    with pytest.raises(ValidationError, match=r"'a.py' clashes with another entry"):
        await store.put(data)
    assert left_behind(root) == []


async def test_a_zip_over_the_size_limit_is_refused_with_413(root):
    store = BundleStore(root, max_zip_bytes=1024 * 1024)
    data = make_zip({"random.bin": os.urandom(1024 * 1024)})

    with pytest.raises(ValidationError) as info:
        await store.put(data)

    assert info.value.status_code == 413
    assert f"bundle is {len(data)} bytes, over the 1 MiB limit for a zip" in info.value.message


async def test_a_zip_that_unzips_over_the_limit_is_refused_with_413(root):
    store = BundleStore(root, max_unzipped_bytes=1024 * 1024)
    data = make_zip({"zeros.bin": bytes(600_000), "more.bin": bytes(600_000)})
    assert len(data) < 10_000  # small on the wire: a little zip bomb

    with pytest.raises(ValidationError) as info:
        await store.put(data)

    assert info.value.status_code == 413
    assert "bundle unzips to more than the 1 MiB limit" in info.value.message
    assert left_behind(root) == []


async def test_a_zip_that_understates_its_sizes_is_caught_while_extracting(store, root):
    data = bytearray(make_zip({"zeros.bin": bytes(100_000)}))
    # Patch the declared size (central directory, offset 24) down to 10 bytes.
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")

    with pytest.raises(ValidationError, match=NOT_A_ZIP):
        await store.put(bytes(data))
    assert left_behind(root) == []


# -- dependencies ------------------------------------------------------------------------------

# A PEP 517 backend inside the package itself ("backend-path"), with no build requirements:
# pip builds the wheel with nothing from an index.
BACKEND = textwrap.dedent(
    """
    import base64, hashlib, zipfile

    NAME, VERSION = "tinypkg", "1.0"
    FILES = {"tinypkg/__init__.py": b"VALUE = 42\\n"}
    DIST = f"{NAME}-{VERSION}.dist-info"

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        files = dict(FILES)
        metadata = f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"
        files[f"{DIST}/METADATA"] = metadata.encode()
        files[f"{DIST}/WHEEL"] = (
            b"Wheel-Version: 1.0\\nGenerator: test\\n"
            b"Root-Is-Purelib: true\\nTag: py3-none-any\\n"
        )
        record = []
        for name, data in files.items():
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{DIST}/RECORD,,")
        files[f"{DIST}/RECORD"] = ("\\n".join(record) + "\\n").encode()
        wheel = f"{NAME}-{VERSION}-py3-none-any.whl"
        with zipfile.ZipFile(f"{wheel_directory}/{wheel}", "w") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return wheel
    """
)
PYPROJECT = textwrap.dedent(
    """
    [build-system]
    requires = []
    build-backend = "backend"
    backend-path = ["."]
    """
)


@pytest.fixture
def local_package(tmp_path: pathlib.Path) -> pathlib.Path:
    package = tmp_path / "tinypkg"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "backend.py").write_text(BACKEND)
    return package


async def test_requirements_are_installed_into_deps(store, local_package, offline):
    data = make_zip({**HANDLER, "requirements.txt": f"{local_package}\n"})

    info = await store.put(data)

    assert (info.path / ".deps" / "tinypkg" / "__init__.py").read_text() == "VALUE = 42\n"
    assert (info.path / "requirements.txt").is_file()


async def test_a_failing_requirement_is_a_clear_error_and_nothing_is_kept(store, root, offline):
    data = make_zip({**HANDLER, "requirements.txt": "./no-such-package-dir\n"})

    with pytest.raises(ValidationError) as info:
        await store.put(data)

    message = info.value.message
    assert message.startswith("installing dependencies from requirements.txt failed: ")
    assert "no-such-package-dir" in message
    assert info.value.status_code == 400
    assert left_behind(root) == []


async def test_only_the_last_lines_of_the_installer_output_are_reported(root):
    noisy = "import sys\nfor i in range(100): print(f'line {i}')\nsys.exit(1)"
    store = BundleStore(root, pip=[sys.executable, "-c", noisy])

    with pytest.raises(ValidationError) as info:
        await store.put(make_zip({"requirements.txt": "anything\n"}))

    reported = info.value.message.split(": ", 1)[1].splitlines()
    assert reported == [f"line {i}" for i in range(85, 100)]


async def test_an_installer_that_cannot_be_run_is_named(root):
    store = BundleStore(root, pip=["/nonexistent/pip"])

    with pytest.raises(ValidationError, match=r"cannot run '/nonexistent/pip'"):
        await store.put(make_zip({"requirements.txt": "anything\n"}))
    assert left_behind(root) == []


async def test_an_installer_that_takes_too_long_is_stopped(root):
    slow = "import time; print('resolving', flush=True); time.sleep(60)"
    store = BundleStore(root, pip=[sys.executable, "-c", slow], install_timeout_s=0.5)

    with pytest.raises(ValidationError) as info:
        await store.put(make_zip({"requirements.txt": "anything\n"}))

    assert info.value.message == (
        "installing dependencies from requirements.txt failed: it took longer than 0.5 s\nresolving"
    )
    assert left_behind(root) == []


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
async def test_a_package_json_without_dependencies_installs_offline(store):
    package = {"name": "crm-service", "version": "1.0.0", "private": True}
    data = make_zip(
        {"index.js": "module.exports.handler = () => 1;\n", "package.json": json.dumps(package)}
    )

    info = await store.put(data)

    assert (info.path / "package-lock.json").is_file()


async def test_staging_directories_left_by_a_crash_are_removed(store, root):
    info = await store.put(make_zip(HANDLER))
    old, fresh = root / f".tmp-{'0' * 64}-dead", root / f".tmp-{'1' * 64}-busy"
    old.mkdir()
    fresh.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))

    assert store.remove_stale(older_than_s=3600) == 1
    assert left_behind(root) == sorted([fresh.name, info.bundle_id])
    assert BundleStore(root / "missing").remove_stale() == 0


async def test_installers_get_none_of_the_gateways_secrets(root, monkeypatch):
    # An install runs the tenant's code (a build backend, a package.json script).
    monkeypatch.setenv("EG_OPERATOR_KEY", "ego_secret")
    monkeypatch.setenv("NATS_PASSWORD", "nats-secret")
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.example/simple")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    show_env = "import os, sys; print(*sorted(os.environ), sep=chr(10)); sys.exit(1)"
    store = BundleStore(root, pip=[sys.executable, "-c", show_env])

    with pytest.raises(ValidationError) as info:
        await store.put(make_zip({"requirements.txt": "anything\n"}))

    names = set(info.value.message.split(": ", 1)[1].splitlines())
    assert {"PATH", "PIP_INDEX_URL", "HTTPS_PROXY"} <= names
    assert not names & {"EG_OPERATOR_KEY", "NATS_PASSWORD"}


def test_the_installer_environment_keeps_proxies_cas_and_installer_settings():
    source = {
        "PATH": "/bin",
        "HOME": "/home/eg",
        "https_proxy": "http://proxy:3128",
        "SSL_CERT_FILE": "/etc/ca.pem",
        "PIP_NO_INDEX": "1",
        "npm_config_registry": "http://registry.local/",
        "EG_OPERATOR_KEY": "ego_secret",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }

    env = installer_environment(source)

    assert env == {
        "PATH": "/bin",
        "HOME": "/home/eg",
        "LANG": "C.UTF-8",
        "https_proxy": "http://proxy:3128",
        "SSL_CERT_FILE": "/etc/ca.pem",
        "PIP_NO_INDEX": "1",
        "npm_config_registry": "http://registry.local/",
        "npm_config_update_notifier": "false",
    }
