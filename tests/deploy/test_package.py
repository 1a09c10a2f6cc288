"""Code bundles for ``eg deploy``: which files go in, and a zip that is the same every time."""

from __future__ import annotations

import hashlib
import inspect
import io
import logging
import os
import pathlib
import time
import zipfile

import pytest

from eventgateway.deploy import package
from eventgateway.deploy.package import DEFAULT_EXCLUDES, build_bundle, select_files
from eventgateway.errors import ConfigError
from eventgateway.runtime.bundle_archive import extract
from eventgateway.runtime.bundles import BundleStore


def make(root: pathlib.Path, *paths: str, content: str = "x") -> pathlib.Path:
    """Create files (and their directories) under ``root``; returns ``root``."""
    for path in paths:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"{content}:{path}", encoding="utf-8")
    return root


@pytest.fixture
def service(tmp_path):
    return make(tmp_path / "svc", "serverless.yml", "handler.py", "lib/util.py", "lib/data/a.json")


# -- determinism -----------------------------------------------------------------------------


def test_building_twice_gives_the_same_bytes(service):
    first = build_bundle(service)
    second = build_bundle(service)

    assert first.data == second.data
    assert first.bundle_id == hashlib.sha256(first.data).hexdigest() == second.bundle_id
    assert first.size == len(first.data)


def test_timestamps_and_non_executable_permission_bits_do_not_change_the_hash(service):
    before = build_bundle(service).bundle_id
    os.utime(service / "handler.py", (time.time() + 3600, time.time() + 3600))
    (service / "lib" / "util.py").chmod(0o600)

    assert build_bundle(service).bundle_id == before


def test_content_and_executable_bit_change_the_hash(service):
    before = build_bundle(service).bundle_id
    (service / "handler.py").chmod(0o755)
    executable = build_bundle(service).bundle_id
    (service / "handler.py").write_text("changed", encoding="utf-8")

    assert len({before, executable, build_bundle(service).bundle_id}) == 3


def test_the_same_files_in_another_directory_give_the_same_hash(service, tmp_path):
    # Created in another order, so that directory listing order differs too.
    other = make(tmp_path / "other", "lib/data/a.json", "lib/util.py", "handler.py")
    (other / "serverless.yml").write_text("x:serverless.yml", encoding="utf-8")

    assert build_bundle(other).bundle_id == build_bundle(service).bundle_id


def test_the_services_own_config_file_is_left_out_so_editing_it_changes_no_bundle(service):
    # As Serverless packages: a config-only edit (a timeout) must not make every function
    # a new bundle, which would cold-start them all.
    (service / "other.yml").write_text("kept", encoding="utf-8")
    before = build_bundle(service, config_file="serverless.yml")
    (service / "serverless.yml").write_text("functions: {f: {timeout: 4}}", encoding="utf-8")
    after = build_bundle(service, config_file="serverless.yml")

    assert "serverless.yml" not in before.files
    assert "other.yml" in before.files
    assert after.bundle_id == before.bundle_id
    assert "serverless.yml" in build_bundle(service).files  # no config file named: kept
    # Only at the top, and a pattern may put it back (a handler that reads it).
    make(service, "conf/serverless.yml")
    assert "conf/serverless.yml" in select_files(service, config_file="serverless.yml")
    assert "serverless.yml" in select_files(
        service, ["serverless.yml"], config_file="serverless.yml"
    )
    # A -c file of another name is the one left out.
    assert "other.yml" not in select_files(service, config_file="other.yml")


def test_entries_are_sorted_files_with_fixed_metadata(service):
    (service / "handler.py").chmod(0o755)
    bundle = build_bundle(service)

    infos = zipfile.ZipFile(io.BytesIO(bundle.data)).infolist()

    assert [info.filename for info in infos] == list(bundle.files) == sorted(bundle.files)
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in infos)
    assert all(info.compress_type == zipfile.ZIP_DEFLATED and not info.extra for info in infos)
    modes = {info.filename: info.external_attr >> 16 for info in infos}
    assert modes["handler.py"] == 0o100755
    assert modes["lib/util.py"] == 0o100644
    assert bundle.unzipped_bytes == sum(info.file_size for info in infos)


# -- the server accepts it -------------------------------------------------------------------


def test_the_servers_extraction_accepts_the_zip(service, tmp_path):
    (service / "handler.py").chmod(0o755)
    bundle = build_bundle(service)

    extracted = extract(bundle.data, tmp_path / "out", max_unzipped_bytes=1024 * 1024)

    assert extracted.files == len(bundle.files)
    assert extracted.unzipped_bytes == bundle.unzipped_bytes
    assert (tmp_path / "out" / "lib" / "data" / "a.json").read_text() == "x:lib/data/a.json"
    assert os.access(tmp_path / "out" / "handler.py", os.X_OK)


async def test_the_bundle_store_names_it_by_the_bundle_id(service, tmp_path):
    bundle = build_bundle(service)

    info, created = await BundleStore(tmp_path / "bundles").add(bundle.data)

    assert created
    assert info.bundle_id == bundle.bundle_id
    assert (info.path / "handler.py").read_text() == "x:handler.py"


def test_the_limits_are_the_bundle_stores_defaults():
    defaults = inspect.signature(BundleStore).parameters

    ours = (package.MAX_ZIP_BYTES, package.MAX_UNZIPPED_BYTES)

    assert ours == (defaults["max_zip_bytes"].default, defaults["max_unzipped_bytes"].default)


# -- patterns --------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    return make(
        tmp_path / "tree",
        "serverless.yml",
        "handler.js",
        "README.md",
        ".env",
        "docs/guide.md",
        "src/app.js",
        "src/deep/nested/mod.js",
        "tests/test_app.js",
        "node_modules/left-pad/index.js",
        "node_modules/left-pad/README.md",
    )


def test_without_patterns_every_file_goes_in_dotfiles_too(tree):
    assert select_files(tree) == [
        ".env",
        "README.md",
        "docs/guide.md",
        "handler.js",
        "node_modules/left-pad/README.md",
        "node_modules/left-pad/index.js",
        "serverless.yml",
        "src/app.js",
        "src/deep/nested/mod.js",
        "tests/test_app.js",
    ]


def test_a_star_stays_within_one_segment_and_a_globstar_crosses_them(tree):
    top_level = select_files(tree, ["!*.md"])
    everywhere = select_files(tree, ["!**/*.md"])

    assert "README.md" not in top_level
    assert "docs/guide.md" in top_level
    assert [path for path in everywhere if path.endswith(".md")] == []


def test_a_later_pattern_re_includes_what_an_earlier_one_left_out(tree):
    assert select_files(tree, ["!./**", "handler.js", "src/**"]) == [
        "handler.js",
        "src/app.js",
        "src/deep/nested/mod.js",
    ]


def test_pattern_order_decides(tree):
    excluded_last = select_files(tree, ["src/**", "!src/**"])
    included_last = select_files(tree, ["!src/**", "src/**"])

    assert not any(path.startswith("src/") for path in excluded_last)
    assert "src/deep/nested/mod.js" in included_last


def test_dotfiles_are_matched_by_explicit_patterns_and_by_wildcards(tree):
    assert ".env" not in select_files(tree, ["!.env"])
    assert ".env" not in select_files(tree, ["!.*"])
    assert ".env" not in select_files(tree, ["!*"])


def test_excluding_a_directory_by_name_leaves_out_everything_under_it(tree):
    files = select_files(tree, ["!tests", "!node_modules/"])

    assert not any(path.startswith(("tests/", "node_modules/")) for path in files)
    assert "src/app.js" in files


def test_braces_and_a_file_inside_an_excluded_directory(tree):
    files = select_files(tree, ["!{docs,tests}/**", "!node_modules/**", "node_modules/*/index.js"])

    assert "node_modules/left-pad/index.js" in files
    assert "node_modules/left-pad/README.md" not in files
    assert not any(path.startswith(("docs/", "tests/")) for path in files)


@pytest.mark.parametrize("pattern", ["", "!", "./", "!./"])
def test_an_empty_pattern_is_refused(tree, pattern):
    with pytest.raises(ConfigError, match="empty pattern"):
        select_files(tree, [pattern])


# -- default exclusions ----------------------------------------------------------------------


def test_default_exclusions_leave_out_vcs_caches_and_environments(tmp_path):
    root = make(
        tmp_path / "svc",
        "handler.py",
        ".git/HEAD",
        ".git/objects/ab/cdef",
        ".gitignore",
        ".DS_Store",
        "npm-debug.log",
        ".serverless/state.json",
        ".serverless_plugins/p.js",
        ".eventgateway/events.db",
        "pkg/__pycache__/mod.cpython-311.pyc",
        "pkg/mod.py",
        "pkg/old.pyc",
        ".venv/bin/python",
        "venv/lib/site.py",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/0.5/x",
        "node_modules/.cache/babel/x.json",
        "node_modules/dep/index.js",
    )

    assert select_files(root) == ["handler.py", "node_modules/dep/index.js", "pkg/mod.py"]


def test_a_pattern_can_re_include_a_default_exclusion(tmp_path):
    root = make(tmp_path / "svc", "handler.py", ".venv/lib/dep.py", ".venv/bin/python")

    assert select_files(root, [".venv/lib/**"]) == [".venv/lib/dep.py", "handler.py"]


def test_excluded_directories_are_not_read(tmp_path, monkeypatch):
    root = make(tmp_path / "svc", "handler.py", ".git/HEAD", "node_modules/.cache/x", "a/b.py")
    scanned: list[str] = []
    real_scandir = os.scandir

    def spy(path):
        scanned.append(pathlib.Path(path).relative_to(root).as_posix())
        return real_scandir(path)

    monkeypatch.setattr(package.os, "scandir", spy)

    select_files(root, ["!a/**", "handler.*"])

    assert sorted(scanned) == [".", "node_modules"]


def test_every_default_exclusion_is_a_valid_pattern(tmp_path):
    assert select_files(make(tmp_path / "svc", "x"), DEFAULT_EXCLUDES) == ["x"]


# -- symbolic links and special files --------------------------------------------------------


def test_a_link_to_a_file_inside_is_stored_as_a_regular_file(service, tmp_path):
    os.symlink("lib/util.py", service / "util_link.py")

    bundle = build_bundle(service)

    archive = zipfile.ZipFile(io.BytesIO(bundle.data))
    assert archive.read("util_link.py") == b"x:lib/util.py"
    assert (archive.getinfo("util_link.py").external_attr >> 16) == 0o100644
    assert bundle.warnings == ()
    extract(bundle.data, tmp_path / "out", max_unzipped_bytes=1024 * 1024)


def test_links_outside_to_directories_or_to_nothing_are_skipped_with_a_warning(
    service, tmp_path, caplog
):
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    os.symlink(tmp_path / "secret.txt", service / "outside.txt")
    os.symlink("lib", service / "lib_link")
    os.symlink("missing.py", service / "dangling.py")
    os.symlink("loop", service / "loop")

    bundle = build_bundle(service)
    with caplog.at_level(logging.WARNING, logger="eventgateway.deploy.package"):
        files = select_files(service)

    assert files == list(bundle.files)
    assert not {"outside.txt", "lib_link", "dangling.py", "loop"} & set(files)
    assert len(bundle.warnings) == 4
    assert any("outside" in warning and "outside.txt" in warning for warning in bundle.warnings)
    assert any("lib_link" in warning and "directory" in warning for warning in bundle.warnings)
    assert len(caplog.records) == 4


def test_an_excluded_link_is_skipped_silently(service, tmp_path):
    os.symlink(tmp_path, service / "up")
    os.symlink("/etc/hostname", service / "host")

    assert build_bundle(service, ["!up", "!host"]).warnings == ()


def test_a_fifo_is_skipped_with_a_warning(service):
    os.mkfifo(service / "pipe")

    bundle = build_bundle(service)

    assert "pipe" not in bundle.files
    assert bundle.warnings == ("skipped pipe: not a regular file",)


# -- refusals --------------------------------------------------------------------------------


def test_nothing_selected_is_refused(tmp_path, service):
    with pytest.raises(ConfigError, match="leave out every file"):
        build_bundle(service, ["!**"])
    with pytest.raises(ConfigError, match="no files"):
        build_bundle(make(tmp_path / "empty", ".git/HEAD"))


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        build_bundle(tmp_path / "nope")


def test_a_directory_that_cannot_be_listed_is_refused(service, monkeypatch):
    def broken(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(package.os, "scandir", broken)

    with pytest.raises(ConfigError, match=r"cannot read .*svc: Permission denied"):
        select_files(service)


def test_a_name_that_is_not_utf8_is_refused(service):
    os.close(os.open(os.fsencode(service) + b"/caf\xe9.py", os.O_CREAT | os.O_WRONLY))

    with pytest.raises(ConfigError, match="not valid UTF-8"):
        build_bundle(service)


def test_a_file_that_cannot_be_read_is_refused(service, monkeypatch):
    def broken(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pathlib.Path, "read_bytes", broken)

    with pytest.raises(ConfigError, match=r"cannot read .*: Permission denied"):
        build_bundle(service)


def test_the_reserved_metadata_name_is_refused(service):
    (service / ".eg-bundle.json").write_text("{}", encoding="utf-8")

    with pytest.raises(ConfigError, match="reserves"):
        build_bundle(service)
    assert build_bundle(service, ["!.eg-bundle.json"]).files


def test_over_the_unzipped_limit_names_the_biggest_parts(tmp_path, monkeypatch):
    root = make(tmp_path / "svc", "handler.py")
    make(root, "assets/a.bin", "assets/b.bin", content="a" * 3000)
    make(root, "big.bin", content="b" * 2000)
    make(root, "lib/x.py", content="c" * 500)
    monkeypatch.setattr(package, "MAX_UNZIPPED_BYTES", 4000)

    with pytest.raises(ConfigError) as caught:
        build_bundle(root)

    message = str(caught.value)
    assert "unzipped" in message
    assert "8.4 KiB unzipped, over the gateway's limit of 3.9 KiB unzipped" in message
    assert "assets/ (5.9 KiB), big.bin (2.0 KiB), lib/ (509 bytes)" in message
    assert "'!assets/**'" in message
    assert "package.patterns" in message


def test_over_the_zip_limit_is_refused(tmp_path, monkeypatch):
    root = make(tmp_path / "svc", "handler.py")
    (root / "random.bin").write_bytes(os.urandom(4096))  # does not compress
    monkeypatch.setattr(package, "MAX_ZIP_BYTES", 2048)

    with pytest.raises(
        ConfigError, match=r"zipped, over the gateway's limit of 2 KiB zipped.*random\.bin"
    ):
        build_bundle(root)
    assert build_bundle(root, ["!random.bin"]).files == ("handler.py",)
