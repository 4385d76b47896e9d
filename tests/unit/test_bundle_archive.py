"""Hostile, malformed and oversized bundles: each is refused with an error naming the entry, before
anything is read from it, and nothing is ever written to disk."""

import io
import os
import tarfile
from pathlib import Path

import pytest

from aiops.bundles import archive, reader
from aiops.bundles.archive import BundleError, Limits

DUMP_FILE = b'{"kind": "PodList", "apiVersion": "v1", "items": null}'


def tarball(path: Path, *members: tuple[tarfile.TarInfo, bytes | None], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, type_: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    return info


def refused(path: Path, limits: Limits = archive.DEFAULT_LIMITS) -> str:
    with pytest.raises(BundleError) as err:
        reader.load(path, limits)
    return str(err.value)


@pytest.mark.parametrize("name", ["../x/pods.json", "dump/../../etc/passwd", "/etc/passwd", "dump/a/../pods.json"])
def test_a_member_that_climbs_out_or_is_absolute_is_refused(tmp_path, name):
    path = tarball(tmp_path / "b.tar.gz", (member("dump/nodes.json"), DUMP_FILE), (member(name), b"x"))
    message = refused(path)
    assert f"member {name!r} points outside the bundle" in message and str(path) in message


@pytest.mark.parametrize(
    "type_, link, what",
    [
        (tarfile.SYMTYPE, "../../../etc/shadow", "symbolic link to ../../../etc/shadow"),
        (tarfile.SYMTYPE, "/etc/shadow", "symbolic link to /etc/shadow"),
        (tarfile.LNKTYPE, "../outside", "hard link to ../outside"),
        (tarfile.LNKTYPE, "/etc/passwd", "hard link to /etc/passwd"),
    ],
)
def test_a_link_out_of_the_archive_is_refused(tmp_path, type_, link, what):
    path = tarball(
        tmp_path / "b.tar.gz", (member("dump/nodes.json"), DUMP_FILE), (member("dump/ns/pods.json", type_, link), None)
    )
    assert f"dump/ns/pods.json is a {what}, outside the bundle: refused" in refused(path)


def test_a_link_inside_the_archive_is_skipped_not_followed(tmp_path):
    path = tarball(
        tmp_path / "b.tar.gz",
        (member("dump/nodes.json"), DUMP_FILE),
        (member("dump/ns/pods.json", tarfile.SYMTYPE, "../nodes.json"), None),
    )
    snap = reader.load(path)
    assert snap.layout == reader.CLUSTER_INFO_DUMP and snap.files_read == 1


@pytest.mark.parametrize(
    "type_, what", [(tarfile.CHRTYPE, "device file"), (tarfile.BLKTYPE, "device file"), (tarfile.FIFOTYPE, "FIFO")]
)
def test_device_files_and_fifos_in_an_archive_are_refused(tmp_path, type_, what):
    path = tarball(tmp_path / "b.tar.gz", (member("dump/nodes.json"), DUMP_FILE), (member("dump/ns/null", type_), None))
    assert f"dump/ns/null is a {what}, not a regular file: refused" in refused(path)


def test_a_member_declaring_2gb_is_refused_from_its_header(tmp_path):
    huge = member("dump/ns/pods.json")
    huge.size = 2 << 30
    path = tmp_path / "b.tar"
    with path.open("wb") as f:  # the header alone, then the archive ends: the 2 GB were never there
        f.write(huge.tobuf(format=tarfile.PAX_FORMAT))
    message = refused(path)
    assert "dump/ns/pods.json is 2048 MiB, over the 256 MiB a bundle file may be" in message


def test_a_2gb_sparse_file_in_a_folder_is_refused_without_reading_it(tmp_path):
    (tmp_path / "ns").mkdir()
    (tmp_path / "nodes.json").write_bytes(DUMP_FILE)
    with (tmp_path / "ns" / "pods.json").open("wb") as f:
        f.truncate(2 << 30)  # sparse: no disk used
    assert "ns/pods.json is 2048 MiB, over the 256 MiB a bundle file may be" in refused(tmp_path)


def test_the_total_and_the_entry_count_are_capped(tmp_path):
    (tmp_path / "ns").mkdir()
    (tmp_path / "nodes.json").write_bytes(DUMP_FILE)
    (tmp_path / "ns" / "pods.json").write_bytes(DUMP_FILE)
    total = refused(tmp_path, Limits(max_total_bytes=len(DUMP_FILE) + 10))
    assert "the files read reach" in total and f"over the {len(DUMP_FILE) + 10} bytes a bundle may hold" in total
    assert "more than 2 entries" in refused(tmp_path, Limits(max_entries=2))
    tar = tarball(tmp_path / "b.tar.gz", *[(member(f"dump/ns{i}/pods.json"), DUMP_FILE) for i in range(5)])
    assert "more than 3 entries" in refused(tar, Limits(max_entries=3))


def test_a_symlink_out_of_a_folder_is_refused_and_one_inside_is_skipped(tmp_path):
    (tmp_path / "nodes.json").write_bytes(DUMP_FILE)
    (tmp_path / "inside.json").symlink_to(tmp_path / "nodes.json")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert reader.load(tmp_path).files_read == 1
    (tmp_path / "ns").mkdir()
    (tmp_path / "ns" / "pods.json").symlink_to("/etc/passwd")
    assert "ns/pods.json is a symbolic link to /etc/passwd, outside the bundle: refused" in refused(tmp_path)


def test_a_fifo_in_a_folder_is_refused(tmp_path):
    (tmp_path / "nodes.json").write_bytes(DUMP_FILE)
    os.mkfifo(tmp_path / "pipe")
    assert "pipe is a FIFO, not a regular file: refused" in refused(tmp_path)


def test_a_truncated_archive_names_where_it_broke(tmp_path):
    whole = tarball(tmp_path / "whole.tar.gz", *[(member(f"dump/ns{i}/pods.json"), os.urandom(4096)) for i in range(8)])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    message = refused(cut)
    assert str(cut) in message and "the archive is truncated or corrupt after dump/ns" in message


def test_gzip_that_is_not_a_tar_is_refused(tmp_path):
    import gzip

    path = tmp_path / "b.tar.gz"
    path.write_bytes(gzip.compress(b"not a tar at all"))
    assert "the archive is truncated or corrupt at its start (is it a tar archive?)" in refused(path)


def test_an_empty_folder_and_an_unknown_layout_say_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "the bundle holds no files; expected a `kubectl cluster-info dump` or a must-gather" in refused(
        tmp_path / "empty"
    )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "README.txt").write_text("hello")
    message = refused(tmp_path / "other")
    assert "unknown layout (found README.txt)" in message and "namespaces/<namespace>/core/pods.yaml" in message
    assert "no such file or directory" in refused(tmp_path / "absent")


def test_only_wanted_files_are_kept(tmp_path):
    path = tarball(
        tmp_path / "b.tar.gz",
        (member("dump/nodes.json"), DUMP_FILE),
        (member("dump/ns/secrets.json"), b"{}"),
        (member("dump/ns/p/logs.txt"), b""),
    )
    files = archive.read(path, reader.wanted)
    assert sorted(files.data) == ["dump/nodes.json", "dump/ns/p/logs.txt"] and files.entries == 3
