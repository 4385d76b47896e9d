"""A support bundle's files, read without trusting it: a directory, a tar archive (.tar.gz, .tgz, plain
.tar) or a single file (`kubectl cluster-info dump` to stdout), never extracted to disk.

Bundles come from clusters we cannot reach and from people we do not know, so every entry is checked
before anything is read: an archive member's name must stay inside the bundle (no absolute path, no
`..`), a link must point inside it (links are never followed: the files they name are read under their
own names), device files and FIFOs are refused, and sizes are capped per file, in total and by entry
count (`Limits`). Tar sizes are checked from the member's header before its data is read, so a header
that declares 2 GB fails at once. Only the files the layout needs (`wanted`) are kept, in memory.
Every refusal is a `BundleError` that names the bundle and the entry, and says what to do.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"


class BundleError(Exception):
    """The bundle cannot be read; the message names the bundle and the entry, and what to do."""


@dataclass(frozen=True)
class Limits:
    """Caps on what a bundle may make us read: per file, in total, and in entries seen."""

    max_file_bytes: int = 256 << 20  # a pods.json of a large namespace, a long log; any member of an archive
    max_total_bytes: int = 2 << 30  # of the files read (directory), of every member (archive: streamed whole)
    max_entries: int = 200_000  # files, folders and links


DEFAULT_LIMITS = Limits()


@dataclass
class Files:
    """The files of a bundle that the layout wants, by their path inside it (POSIX, no leading `./`)."""

    source: str  # the bundle as the user named it
    data: dict[str, bytes] = field(default_factory=dict)
    entries: int = 0  # every entry of the bundle seen, wanted or not
    names: list[str] = field(default_factory=list)  # every regular file's path, for layout detection


def read(path: str | Path, wanted: Callable[[str], bool], limits: Limits = DEFAULT_LIMITS) -> Files:
    """The wanted files of the bundle at `path` (a directory, a tar archive, or one file)."""
    p = Path(path)
    if p.is_dir():
        return _read_directory(p, wanted, limits)
    if not p.exists():
        raise BundleError(f"{path}: no such file or directory")
    if not p.is_file():
        raise BundleError(f"{path}: not a directory, an archive or a regular file")
    with p.open("rb") as f:
        head = f.read(len(GZIP_MAGIC))
    if head == GZIP_MAGIC or tarfile.is_tarfile(p):
        with p.open("rb") as f:
            return read_archive(f, str(path), wanted, limits)
    return _read_single(p, limits)


def read_archive(fileobj: io.BufferedIOBase, source: str, wanted: Callable[[str], bool], limits: Limits) -> Files:
    """The wanted members of a tar archive (compressed or not), read in one pass, in memory."""
    files = Files(source)
    total = 0
    last = ""
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            for member in tar:
                files.entries += 1
                if files.entries > limits.max_entries:
                    raise BundleError(
                        f"{source}: more than {limits.max_entries} entries: not a support bundle this tool reads "
                        "whole; unpack the part you need and analyse that folder"
                    )
                name = _member_name(source, member.name)
                last = name
                if member.issym() or member.islnk():
                    _check_link(source, name, member.linkname, hard=member.islnk())
                    continue
                if member.isdir():
                    continue
                if not member.isreg():
                    raise BundleError(f"{source}: {name} is a {_tar_type(member)}, not a regular file: refused")
                total += member.size
                _check_size(source, name, member.size, total, limits)
                files.names.append(name)
                if wanted(name):
                    extracted = tar.extractfile(member)
                    assert extracted is not None  # a regular member always has data
                    files.data[name] = extracted.read()
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        where = f"after {last}" if last else "at its start (is it a tar archive?)"
        raise BundleError(
            f"{source}: the archive is truncated or corrupt {where} ({type(exc).__name__}: {exc}); "
            "fetch it again or pack it again with `tar czf`"
        ) from None
    return _non_empty(files)


def _read_directory(root: Path, wanted: Callable[[str], bool], limits: Limits) -> Files:
    files = Files(str(root))
    total = 0
    real_root = root.resolve()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise BundleError(f"{root}: cannot list {folder}: {exc.strerror}") from None
        for entry in entries:
            files.entries += 1
            if files.entries > limits.max_entries:
                raise BundleError(
                    f"{root}: more than {limits.max_entries} entries: point aiops analyze at a smaller part of it"
                )
            name = Path(entry.path).relative_to(root).as_posix()
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                target = Path(os.path.realpath(entry.path))  # a link loop resolves as far as it goes
                if not target.is_relative_to(real_root):
                    raise BundleError(
                        f"{root}: {name} is a symbolic link to {os.readlink(entry.path)}, outside the bundle: refused"
                    )
                continue  # inside: the file it names is read under its own name
            if stat.S_ISDIR(mode):
                stack.append(Path(entry.path))
                continue
            if not stat.S_ISREG(mode):
                raise BundleError(f"{root}: {name} is a {_file_type(mode)}, not a regular file: refused")
            files.names.append(name)
            if wanted(name):
                size = entry.stat(follow_symlinks=False).st_size
                total += size
                _check_size(str(root), name, size, total, limits)
                files.data[name] = _read_capped(Path(entry.path), str(root), name, limits)
    return _non_empty(files)


def _read_single(path: Path, limits: Limits) -> Files:
    size = path.stat().st_size
    _check_size(str(path), path.name, size, size, limits)
    files = Files(str(path), entries=1, names=[path.name])
    files.data[path.name] = _read_capped(path, str(path), path.name, limits)
    return _non_empty(files)


def _read_capped(path: Path, source: str, name: str, limits: Limits) -> bytes:
    """The file's bytes, refusing one that grew past the cap since it was measured."""
    with path.open("rb") as f:
        data = f.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        _check_size(source, name, len(data), len(data), limits)
    return data


def _check_size(source: str, name: str, size: int, total: int, limits: Limits) -> None:
    if size > limits.max_file_bytes:
        raise BundleError(
            f"{source}: {name} is {_mib(size)}, over the {_mib(limits.max_file_bytes)} a bundle file may be: "
            "leave it out of the bundle (or cut the log) and try again"
        )
    if total > limits.max_total_bytes:
        raise BundleError(
            f"{source}: the files read reach {_mib(total)} at {name}, over the {_mib(limits.max_total_bytes)} "
            "a bundle may hold: gather fewer namespaces, or analyse a part of it"
        )


def _member_name(source: str, raw: str) -> str:
    """The member's path inside the bundle; an absolute path or one that climbs out is refused."""
    parts = raw.split("/")
    if raw.startswith("/") or ".." in parts or "\x00" in raw:
        raise BundleError(f"{source}: member {raw!r} points outside the bundle (absolute or `..`): refused")
    return posixpath.normpath(raw).removeprefix("./")


def _check_link(source: str, name: str, link: str, hard: bool) -> None:
    """A link inside the archive is skipped; one whose target leaves it is refused."""
    # A hard link names another member from the archive's root; a symbolic link is relative to its folder.
    target = link if hard else posixpath.join(posixpath.dirname(name), link)
    if link.startswith("/") or posixpath.normpath(target).split("/")[0] == "..":
        kind = "hard link" if hard else "symbolic link"
        raise BundleError(f"{source}: {name} is a {kind} to {link}, outside the bundle: refused")


def _tar_type(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO"
    return f"member of tar type {member.type!r}"


def _file_type(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n} bytes"


def _non_empty(files: Files) -> Files:
    if not files.names:
        raise BundleError(
            f"{files.source}: the bundle holds no files; expected a `kubectl cluster-info dump` or a must-gather"
        )
    return files
