"""Errors a user can fix, and the one line the ``pathvlm`` entry prints for them (``tools.cli``).

A ``UserError`` message names the file / item / flag and says what to do. The entry also turns file-system
faults (read-only, full, no permission) into one line naming the file; text and JSON readers turn a file that
is not UTF-8 or not JSON into a ``UserError`` naming it (``read_text`` / ``read_json``).
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_OS_ADVICE = {
    errno.EROFS: "read-only file system: choose a writable folder",
    errno.ENOSPC: "the disk is full: free space or choose another folder",
    errno.EDQUOT: "disk quota exceeded: free space or choose another folder",
    errno.EACCES: "permission denied: choose another folder or fix its permissions",
    errno.EPERM: "not permitted: choose another folder or fix its permissions",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "already exists (a file where a folder belongs?): move it aside or choose another path",
    errno.EISDIR: "is a folder, expected a file",
    errno.ENOENT: "not found",
}


class UserError(Exception):
    """Bad input or a fault the user can fix; the message names what is wrong and what to do."""


def is_user_fault(error: OSError) -> bool:
    """A file-system error the user can fix (a full disk, a read-only folder, ...), or one naming its file."""
    return error.filename is not None or error.errno in _OS_ADVICE


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """File-system errors inside that name no file (a write failing on a full disk) get ``path`` as theirs."""
    try:
        yield
    except OSError as error:
        if error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def os_error_line(error: OSError) -> str:
    """``<file>: <what happened>: <what to do>`` for a file-system error."""
    where = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
    advice = _OS_ADVICE.get(error.errno or 0, error.strerror or str(error))
    return f"{where or 'a file operation'}: {advice} ({error.strerror or type(error).__name__})"


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; a file that is not UTF-8 is a ``UserError`` naming it."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def read_json(path: Path) -> Any:
    """The JSON value in ``path``; a file that is not UTF-8 JSON is a ``UserError`` naming it."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: not JSON ({error.msg}); restore or regenerate it") from None
