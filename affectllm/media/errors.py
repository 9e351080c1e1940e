"""MediaError and the checks every decoder runs first, so no raw FFmpeg/OS exception reaches a caller.

Every message names the file, the problem and a fix, e.g.
``clip.mp4: the file is empty (0 bytes); copy or export it again``.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class MediaError(Exception):
    """A media file that cannot be decoded; ``path`` is the file and ``str(err)`` says problem and fix."""

    def __init__(self, path: str | os.PathLike[str], problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        message = f"{self.path}: {problem}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)


def check_path(path: str | os.PathLike[str]) -> Path:
    """The path as a ``Path`` when it names a readable, non-empty regular file; MediaError otherwise."""
    p = Path(path).expanduser()
    if not p.exists():
        if p.is_symlink():
            try:
                p.resolve(strict=True)
            except RuntimeError:  # Python < 3.13 reports a loop this way
                raise MediaError(p, "is a symlink loop (the link leads back to itself)",
                                 "point the link at a media file or remove it") from None
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise MediaError(p, "is a symlink loop (the link leads back to itself)",
                                     "point the link at a media file or remove it") from None
            raise MediaError(p, f"is a broken symlink (its target {os.readlink(p)} does not exist)",
                             "point the link at an existing media file or remove it")
        raise MediaError(p, "no such file", "check the path and spelling")
    if p.is_dir():
        if not os.access(p, os.R_OK | os.X_OK):
            raise MediaError(p, "is a directory that cannot be read (permission denied)",
                             "make it readable (chmod +rx) or pass the files inside it")
        raise MediaError(p, "is a directory, not a media file", "pass the media files inside it, or the folder "
                         "itself when it holds files with media extensions")
    if not p.is_file():
        raise MediaError(p, "is not a regular file (device, pipe or socket)", "pass a media file")
    if not os.access(p, os.R_OK):
        raise MediaError(p, "permission denied", "make the file readable (chmod +r) or copy it")
    if p.stat().st_size == 0:
        raise MediaError(p, "the file is empty (0 bytes)", "copy or export it again")
    return p


def describe_av_error(err: BaseException) -> str:
    """A short, readable reason from an FFmpeg/PyAV exception (no errno noise)."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return str(text).strip().rstrip(".")


@contextlib.contextmanager
def open_container(path: Path, **options: Any) -> Iterator[Any]:
    """``av.open`` for reading, with every failure turned into a MediaError that names the file."""
    import av

    try:
        container = av.open(str(path), mode="r", **options)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise MediaError(
            path,
            f"not a readable audio/video/image file ({describe_av_error(err)})",
            "check that the file is complete and not corrupt, or convert it to mp4/wav",
        ) from err
    try:
        yield container
    finally:
        container.close()
