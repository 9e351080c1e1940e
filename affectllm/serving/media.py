"""Media content parts of a request -> a local file the perception pipeline decodes, under a safety policy.

Accepted references: ``data:`` URLs (base64) and ``input_audio`` (base64 + format) are written to a private
temporary file; ``file://`` URLs and plain paths are served only from inside ``--allowed-media-dir`` (no
``..``, symlinks resolved and required to stay inside); ``http(s)://`` URLs only with ``--allow-remote-media``.
Every refusal is a ``RequestError`` with an HTTP status (403 policy, 413 too large, 400 anything else)
and a message naming the part, the problem and the fix; messages name media by what the client sent, never by
the server's own paths. A path leading outside the folder is refused the same way whether or not its target
exists. Before a file is queued it is probed (duration limit) and, by default, trial-decoded in a child process
with a time limit (``media.isolated``), so a decoder crash or stall fails that request only. What a file holds is detected from its content.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from affectllm.serving.errors import RequestError
from affectllm.serving.schemas import (
    AudioURLPart,
    ImageURLPart,
    InputAudioPart,
    VideoURLPart,
)

MediaPart = ImageURLPart | VideoURLPart | AudioURLPart | InputAudioPart
_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_FORMAT_RE = re.compile(r"^[a-z0-9]{1,10}$")


@dataclass(frozen=True)
class MediaPolicy:
    """Where media may come from and how big it may be (the ``serve`` options)."""

    allowed_dir: Path | None = None
    allow_remote: bool = False
    max_media_bytes: int = 64 * 2**20
    max_media_seconds: float = 120.0
    remote_timeout_s: float = 20.0
    isolate_decoding: bool = True  # trial-decode in a child process first: a decoder crash fails one request
    decode_timeout_s: float = 60.0  # that trial's time limit


@dataclass
class ResolvedMedia:
    """A media file ready to decode. ``temporary`` files are deleted by ``cleanup``."""

    path: Path
    name: str  # how error messages name it: what the client sent, shortened
    part_type: str
    temporary: bool = False

    def cleanup(self) -> None:
        if self.temporary:
            self.path.unlink(missing_ok=True)


def _short(ref: str, n: int = 60) -> str:
    return ref if len(ref) <= n else ref[: n - 3] + "..."


def resolve_part(part: MediaPart, policy: MediaPolicy, param: str) -> ResolvedMedia:
    """One media content part -> a local file inside the policy (raises RequestError)."""
    if isinstance(part, InputAudioPart):
        fmt = part.input_audio.format.lower().lstrip(".")
        if not _FORMAT_RE.match(fmt):
            raise RequestError(400, f"input_audio.format {_short(fmt)!r} is not a file format name; "
                                         "use e.g. wav, mp3 or flac", param)
        data = _b64decode(part.input_audio.data, policy, "input_audio.data", param)
        return _to_temp(data, f".{fmt}", "input_audio", part.type)
    ref = getattr(part, part.type).url.strip()
    if ref.startswith("data:"):
        return _to_temp(_data_url_bytes(ref, policy, param), "", f"{part.type} data: URL", part.type)
    if ref.startswith(("http://", "https://")):
        if not policy.allow_remote:
            raise RequestError(403, f"{_short(ref)}: remote media URLs are disabled on this server; send the "
                                         "media as a base64 data: URL, or start the server with --allow-remote-media",
                                    param)
        return _download(ref, policy, param, part.type)
    if ref.startswith("file:"):
        parsed = urlparse(ref)
        if parsed.netloc not in ("", "localhost"):
            raise RequestError(400, f"{_short(ref)}: file:// URLs must name a local file (no host)", param)
        path = unquote(parsed.path)
    elif _SCHEME_RE.match(ref):
        raise RequestError(400, f"{_short(ref)}: unsupported URL scheme; use a data:, file:// or http(s) URL "
                                     "or a path inside the server's media folder", param)
    else:
        path = ref
    return ResolvedMedia(resolve_local(path, policy, param), _short(ref), part.type)


def resolve_local(ref: str, policy: MediaPolicy, param: str | None = None) -> Path:
    """A client-given path -> the real path of a file inside ``policy.allowed_dir``.

    Relative paths are taken from the allowed folder. Refused (403): no allowed folder, any ``..`` component,
    a path outside the folder, and a path whose symlinks resolve outside it.
    """
    shown = _short(ref)
    if policy.allowed_dir is None:
        raise RequestError(403, f"{shown}: local media paths are disabled on this server; send the media as a "
                                     "base64 data: URL, or start the server with --allowed-media-dir DIR", param)
    if not ref or "\x00" in ref:
        raise RequestError(400, f"{shown!r}: not a valid path", param)
    pure = PurePosixPath(ref)
    if ".." in pure.parts:
        raise RequestError(403, f"{shown}: '..' is not allowed in media paths; name the file inside the "
                                     "server's media folder directly", param)
    given = Path(os.path.abspath(policy.allowed_dir))
    base = given.resolve()
    candidate = Path(pure) if pure.is_absolute() else base / pure
    if not (candidate.is_relative_to(base) or candidate.is_relative_to(given)):
        raise RequestError(403, f"{shown}: outside the server's media folder; only files inside "
                                     "--allowed-media-dir are served", param)
    # Resolve symlinks without requiring the target to exist, and refuse a path leading outside before
    # looking at it: "outside" must answer the same whether or not the target exists (no existence oracle).
    try:
        real = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as err:  # symlink loop, name too long …
        raise RequestError(400, f"{shown}: cannot resolve the path ({err.__class__.__name__})", param) from None
    if not real.is_relative_to(base):
        raise RequestError(403, f"{shown}: a symlink leads outside the server's media folder; only files "
                                     "inside --allowed-media-dir are served", param)
    if not real.exists():
        raise RequestError(400, f"{shown}: no such file in the server's media folder; check the name", param)
    if not real.is_file():
        raise RequestError(400, f"{shown}: not a regular file; name a media file", param)
    size = real.stat().st_size
    if size > policy.max_media_bytes:
        raise RequestError(413, f"{shown}: {size / 2**20:.1f} MiB is over the server's media limit of "
                                     f"{policy.max_media_bytes / 2**20:.1f} MiB; send a shorter or smaller file",
                                param)
    return real


def _b64decode(text: str, policy: MediaPolicy, what: str, param: str) -> bytes:
    compact = re.sub(r"\s+", "", text)
    if len(compact) * 3 // 4 > policy.max_media_bytes:
        raise RequestError(413, f"{what}: the decoded media is over the server's limit of "
                                     f"{policy.max_media_bytes / 2**20:.1f} MiB; send a smaller file", param)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as err:
        raise RequestError(400, f"{what}: not valid base64 ({err}); encode the file bytes with base64",
                                param) from None
    if not data:
        raise RequestError(400, f"{what}: empty media; send the file's bytes", param)
    return data


def _data_url_bytes(url: str, policy: MediaPolicy, param: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise RequestError(400, f"{_short(url)}: a data: URL needs a comma before its payload "
                                     "(data:video/mp4;base64,...)", param)
    if not header.endswith(";base64"):
        raise RequestError(400, f"{_short(url)}: only base64 data: URLs are accepted "
                                     "(data:<type>;base64,<bytes>)", param)
    return _b64decode(payload, policy, "data: URL", param)


def _to_temp(data: bytes, suffix: str, name: str, part_type: str) -> ResolvedMedia:
    fd, tmp = tempfile.mkstemp(prefix="affectllm-media-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:  # disk full …: leave no partial file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    return ResolvedMedia(Path(tmp), name, part_type, temporary=True)


def _download(url: str, policy: MediaPolicy, param: str, part_type: str) -> ResolvedMedia:
    """Stream a remote file to a temporary file, stopping at the size limit."""
    import httpx

    fd, tmp = tempfile.mkstemp(prefix="affectllm-media-")
    out = ResolvedMedia(Path(tmp), _short(url), part_type, temporary=True)
    try:
        with os.fdopen(fd, "wb") as f, httpx.stream("GET", url, timeout=policy.remote_timeout_s,
                                                     follow_redirects=True) as r:
            if r.status_code != 200:
                raise RequestError(400, f"{_short(url)}: the remote server answered {r.status_code}", param)
            n = 0
            for chunk in r.iter_bytes():
                n += len(chunk)
                if n > policy.max_media_bytes:
                    raise RequestError(413, f"{_short(url)}: larger than the server's media limit of "
                                                 f"{policy.max_media_bytes / 2**20:.1f} MiB", param)
                f.write(chunk)
    except httpx.HTTPError as err:
        out.cleanup()
        raise RequestError(400, f"{_short(url)}: download failed ({err.__class__.__name__}: {err})",
                                param) from None
    except BaseException:
        out.cleanup()
        raise
    return out


def check_duration(media: ResolvedMedia, policy: MediaPolicy, param: str | None = None) -> None:
    """Probe the file (content-based) and refuse media longer than ``policy.max_media_seconds``; then, with
    ``policy.isolate_decoding``, trial-decode it in a child process under ``policy.decode_timeout_s``."""
    from affectllm.media import MediaError, probe
    from affectllm.media.isolated import check_decodes

    try:
        info = probe(media.path)
    except MediaError as err:
        raise RequestError(400, media_error_message(err, media), param) from None
    if info.duration_s > policy.max_media_seconds:
        raise RequestError(400, f"{media.name}: lasts {info.duration_s:.1f} s, over the server's limit of "
                                     f"{policy.max_media_seconds:g} s (--max-media-seconds); trim the clip", param)
    if policy.isolate_decoding:
        try:
            check_decodes(media.path, policy.decode_timeout_s)
        except MediaError as err:
            raise RequestError(400, media_error_message(err, media), param, "media_not_decodable") from None


def media_error_message(err: Exception, media: ResolvedMedia) -> str:
    """A decoder's message with the temporary file's name replaced by what the client sent."""
    return str(err).replace(str(media.path), media.name)
