"""Reading a user-named input file (experiment, CDF, trace) safely: a regular file, at most a
size cap, UTF-8. Errors say what is wrong with the file, never what it contains (the command
runs as root and may be pointed at any file), and name the path as a printable repr.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from topologies.errors import SpecError

MAX_INPUT_BYTES = 1 << 20  # 1 MiB: any experiment, CDF or trace this emulator can replay


def read_text(path: str | Path, key: str, what: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The file's text; SpecError(key, ...) unless it is a readable regular UTF-8 file of at
    most `max_bytes` bytes. Devices, FIFOs and directories are refused without reading them."""
    shown = repr(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SpecError(key, f"no such {what} {shown}") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise SpecError(key, f"cannot read {what} {shown}: "
                             f"{getattr(exc, 'strerror', None) or 'invalid path'}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SpecError(key, f"{what} {shown} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(key, f"{what} {shown} is not a regular file")
        chunks, size = [], 0
        while size <= max_bytes and (chunk := os.read(fd, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise SpecError(key, f"cannot read {what} {shown}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise SpecError(key, f"{what} {shown} is larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(key, f"{what} {shown} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                             f"on line {line})") from None
