"""Writing artefacts like a serious tool: atomically, into places checked before the long work starts.

Every producer of a file (checkpoints, metrics, .bnn models, Verilog, manifests, reports) writes through `write_text`,
`write_bytes`, `write_json` or the `atomic` context manager: the data goes to a temporary file in the same folder and
replaces the target with `os.replace` only once it is complete, so a full disk or a crash never leaves a truncated
file under the real name. An existing target that is not a regular file (`/dev/null`, `/dev/full`, a FIFO) is written
in place instead: replacing a device node would be wrong.

`writable_dir` and `writable_file` check an output location before minutes of training, simulation or synthesis:
they create the folder, write and remove a probe file (permission bits do not stop root, a read-only mount or an
immutable folder does) and can require some free space. Every failure is a BnnError of one line that names the path,
the reason and the fix. Numpy-free: the CLI hub and every spoke can use it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bnn_hw.errors import BnnError

_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted (read-only or immutable)",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "the folder does not exist",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EEXIST: "it already exists",
    errno.EFBIG: "the file is too large for the file system",
    errno.EIO: "input/output error",
}


def reason(exc: OSError) -> str:
    """A short, human reason for an OSError (the errno's meaning, without Python's `[Errno N]` prefix)."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return exc.strerror or type(exc).__name__


def io_error(path: str | Path, exc: OSError, action: str = "cannot write") -> BnnError:
    """The one-line BnnError for an OSError while writing `path`."""
    fix = {
        errno.ENOSPC: "free some space or choose another -o/--out",
        errno.EDQUOT: "free some space or choose another -o/--out",
        errno.EROFS: "choose a writable -o/--out",
        errno.EACCES: "choose a writable -o/--out",
        errno.EPERM: "choose a writable -o/--out",
        errno.EISDIR: "name a file, not a folder",
        errno.ENOTDIR: "choose a path whose folders are folders",
    }.get(exc.errno)
    return BnnError(f"{action} {path}: {reason(exc)}" + (f"; {fix}" if fix else ""))


def _check_target(path: Path) -> bool:
    """Raise for targets that cannot be a file; True when the target is a special file to write in place."""
    if path.is_dir():
        raise BnnError(f"cannot write {path}: it is a directory; name a file, not a folder")
    if path.exists() and not path.is_file():
        return True
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise BnnError(f"cannot write {path}: {parent} is a file, not a folder; choose another path")
    return False


@contextlib.contextmanager
def atomic(path: str | Path, *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on any error it is removed.

    For writers that want a file name (torch.save, matplotlib's savefig, subprocesses). Keep the suffix: some writers
    choose the format from it.
    """
    path = Path(path)
    special = _check_target(path)
    if special:  # /dev/null, /dev/full, a FIFO: write in place through a name the writer can open
        try:
            yield path
        except OSError as exc:
            raise io_error(path, exc) from None
        return
    try:
        if mkdir:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
    except OSError as exc:
        raise io_error(path, exc) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise io_error(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes, *, mkdir: bool = True) -> Path:
    """Write `data` to `path` atomically (see the module docstring); returns the path."""
    path = Path(path)
    with atomic(path, mkdir=mkdir) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            if tmp != path:
                os.fsync(handle.fileno())
    return path


def write_text(path: str | Path, text: str, *, mkdir: bool = True) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"), mkdir=mkdir)


def write_json(path: str | Path, data: Any, *, indent: int = 2, **dumps: Any) -> Path:
    """Write `data` as JSON (with a final newline) atomically; returns the path."""
    return write_text(path, json.dumps(data, indent=indent, **dumps) + "\n")


def writable_dir(path: str | Path, *, what: str = "-o/--out", need_bytes: int = 0) -> Path:
    """Make sure `path` is (or can be made) a folder this process can write files into, with `need_bytes` free.

    Call it before long work, so that a read-only or full output location fails in a second, not after training.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BnnError(f"{what} {path}: exists and is a file, not a folder; choose a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BnnError(f"{what} {path}: a part of the path is a file, not a folder; choose another folder") from None
    except OSError as exc:
        fix = "choose another folder" if exc.errno == errno.ENOTDIR else "choose a writable folder"
        raise BnnError(f"{what} {path}: cannot create the folder: {reason(exc)}; {fix}") from None
    _probe(path, what, need_bytes)
    return path


def writable_file(path: str | Path, *, what: str = "-o/--out", need_bytes: int = 0) -> Path:
    """Make sure `path` can be written as a file (its folder writable, not a folder itself) before long work."""
    path = Path(path)
    if path.is_dir():
        raise BnnError(f"{what} {path}: is a folder; name a file")
    if path.exists() and not path.is_file():  # a device or FIFO: written in place, nothing to probe
        return path
    writable_dir(path.parent, what=what, need_bytes=need_bytes)
    return path


def _probe(folder: Path, what: str, need_bytes: int) -> None:
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".bnn-hw-probe.", suffix=".tmp")
    except OSError as exc:
        raise BnnError(f"{what} {folder}: cannot write there: {reason(exc)}; choose a writable folder") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"\0" * 4096)  # a full file system refuses the first block, an empty file may still pass
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise BnnError(
            f"{what} {folder}: cannot write there: {reason(exc)}; free some space or choose another folder"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    if need_bytes > 0:
        free = shutil.disk_usage(folder).free
        if free < need_bytes:
            raise BnnError(
                f"{what} {folder}: only {_size(free)} free, this run writes about {_size(need_bytes)}; "
                "free some space or choose another folder"
            )


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # unreachable
