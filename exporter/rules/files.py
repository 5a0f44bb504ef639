"""Reading rule files without trusting what sits at the path.

A rules directory is a ConfigMap volume in production, but anything can be mounted or dropped
there: a FIFO (open() would wait for a writer forever, on the evaluator's thread), a device, a
300 MB log. So a path is opened without blocking, checked to be a regular file on the open
descriptor (no race with a swap in between), and read up to a cap, never whole.
"""

import hashlib
import os
import stat

# Rule files are a few kilobytes; anything near this is a mistake (a log, a binary).
MAX_FILE_BYTES = 1 << 20
_CHUNK = 64 * 1024


def read_capped(path: str, limit: int = MAX_FILE_BYTES) -> tuple[bytes, str]:
    """(up to limit + 1 bytes, "") or (b"", why it cannot be read) for one rule file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        return b"", "is a directory; give the directory itself to load every *.yaml in it"
    except OSError as err:
        return b"", f"cannot read: {(err.strerror or str(err)).lower()}"
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            return b"", "is a directory; give the directory itself to load every *.yaml in it"
        if not stat.S_ISREG(mode):
            return b"", f"is not a regular file ({_kind(mode)}); rule files must be plain files"
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), ""
    except OSError as err:
        return b"", f"cannot read: {(err.strerror or str(err)).lower()}"
    finally:
        os.close(fd)


def too_large(data: bytes, limit: int = MAX_FILE_BYTES) -> str:
    if len(data) > limit:
        return f"file is larger than {limit // (1 << 20)} MiB; rule files are small, is this the right file?"
    return ""


def fingerprint(files: list[str]) -> str:
    """Content hash of the files as the loader would see them, read the same capped way:
    a FIFO or an oversized file changes the hash by what read_capped says of it, never by
    being read whole."""
    digest = hashlib.sha256()
    for name in files:
        data, error = read_capped(name)
        digest.update(name.encode() + b"\0")
        digest.update(error.encode() + b"\0" if error else data)
    return digest.hexdigest()


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a plain file"
