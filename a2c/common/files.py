"""Atomic file writes: write next to the target, then rename over it.

A crash or Ctrl-C mid-write leaves either the old file or the new one, never half
of one (``os.replace`` is atomic on POSIX within a filesystem). The data is fsynced
before the rename and the directory after it, so that a power cut cannot leave a
renamed but empty file either.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to disk; best effort, as some
    filesystems refuse it for directories."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], object], suffix: str = "") -> None:
    """Call ``write(tmp_path)`` and move the result to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        if tmp_path.is_file():  # mkstemp creates 0600; give the file the usual permissions
            os.chmod(tmp_path, 0o666 & ~current_umask())
            _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def replace_marked_block(page: str | Path, marker: str, body: str) -> bool:
    """Replace what lies between ``<!-- {marker}:start -->`` and ``<!-- {marker}:end -->`` in a
    Markdown page with ``body`` (atomically); False, and nothing written, if the page lacks them.
    The result commands use it to keep their figures in the docs written by the command."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = Path(page).read_text()
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    atomic_write_text(page, f"{head}{start}\n{body}{end}{rest.split(end, 1)[1]}")
    return True


def write_failure(e: BaseException) -> str:
    """A failed write's cause in a few words, e.g. "No space left on device", from an ``OSError``
    or a TensorFlow error (whose message starts with the temporary file's path)."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    message = str(getattr(e, "message", "") or e)
    message = re.sub(r"\s*\[Op:\w+\]\s*$", "", message.strip())
    return message.rsplit("; ", 1)[-1].strip() or type(e).__name__
