"""Files and directories are written whole or not at all: under a temporary name beside the target, then renamed.

What is written gets the permissions the user's umask gives a new file (a temporary file or directory is private
to its owner until it is renamed into place), and a full disk ends in one line that names the file and says that
what was there before is intact.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# Writers in other languages report a full disk in their own words (safetensors: "... os error 28 ...").
NO_SPACE_WORDS = ("No space left on device", "Disk quota exceeded", "os error 28", "os error 122")


class DiskFull(OSError):
    """The disk (or the user's quota) filled up while a file was written; the message names it and what survived."""


def is_disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in NO_SPACE:
        return True
    return any(words in str(error) for words in NO_SPACE_WORDS)


def umask() -> int:
    """The process's umask, read without changing it where /proc says it (Linux); else set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def open_as_umask_allows(path: Path) -> None:
    """A file or a directory tree gets the mode a new one would (0666 / 0777 less the umask), not the 0600 / 0700
    of a temporary name (tempfile) or of a writer that keeps its files private (safetensors)."""
    mask = umask()
    for root, directories, files in os.walk(path) if path.is_dir() else [(path.parent, [], [path.name])]:
        for name in files:
            os.chmod(Path(root) / name, 0o666 & ~mask)
        for name in directories:
            os.chmod(Path(root) / name, 0o777 & ~mask)
    if path.is_dir():
        os.chmod(path, 0o777 & ~mask)


def disk_full(path: Path, whole: Path, error: BaseException) -> DiskFull:
    """The error for a full disk while `path` was written as part of `whole` (the file itself, or its directory)."""
    kept = f"the earlier {whole} is intact" if whole.exists() else f"no {whole} was written"
    return DiskFull(error.errno if isinstance(error, OSError) and error.errno else errno.ENOSPC,
                    f"no space left on the device writing {path}: {kept}, and nothing half-written is left "
                    "(free some space and run again)")


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write` fills a temporary file next to `path`, which is then renamed: the file is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        open_as_umask_allows(Path(temporary))
        os.replace(temporary, path)
    except BaseException as error:
        os.unlink(temporary)
        if is_disk_full(error):
            raise disk_full(path, path, error) from error
        raise


Writer = tuple[str, Callable[[Path], None]]


def atomic_directory(directory: Path, writers: Sequence[Writer]) -> None:
    """Fill a temporary directory beside `directory`, then move it into place: `directory` is whole or as before.

    writers: (file name, write) in order; each `write(staging)` writes that file (and may write others) into the
    staging directory. A full disk is reported with the file then being written.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name, write in writers:
            try:
                write(staging)
            except Exception as error:
                if is_disk_full(error):
                    raise disk_full(directory / name, directory, error) from error
                raise
        open_as_umask_allows(staging)
        if directory.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, retired / "old")
            os.replace(staging, directory)
            shutil.rmtree(retired)
        else:
            os.replace(staging, directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
