"""Writing files so that nothing is lost: a temporary file in the same folder, then an atomic rename.

A failed or interrupted write (an exception, Ctrl-C, a full disk) leaves the old file as it was and no half-written
one; the new file gets the usual permissions of a new file (0666 less the umask), not mkstemp's private 0600.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

# torch.save reports a failed write (a full disk, a lost mount) as a RuntimeError with one of these in its message
TORCH_WRITE_FAILURES = ("inline_container", "PytorchStreamWriter", "unexpected pos", "file write failed")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(file)`` on a temporary binary file next to ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                write(f)
            except RuntimeError as err:   # torch's way of saying the write failed: an OSError like any other
                if not any(sign in str(err) for sign in TORCH_WRITE_FAILURES):
                    raise
                first = str(err).strip().splitlines()[0][:160]
                raise OSError(errno.EIO, f"the write failed; is the disk full? (torch: {first})") from err
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def why_not_writable(folder: str | os.PathLike) -> str | None:
    """None if a file can be created in ``folder`` (or, if it does not exist yet, in the folders to be made for it),
    else why not, e.g. "data is a file, not a folder". Checked by creating and deleting a file, which, unlike
    ``os.access``, also sees read-only mounts and immutable folders."""
    existing = Path(folder)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        fd, name = tempfile.mkstemp(prefix=".aelib-write-test.", dir=existing)
    except OSError as err:
        return f"{existing} is not writable ({err.strerror or err})"
    os.close(fd)
    os.unlink(name)
    return None
