"""``affectllm eval fetch-resources``: download the public AffectGPT emotion-wheel files for users with internet.

The files are fetched from AffectGPT's GitHub repository (raw URLs; Apache-2.0 code, MER data terms) and checked
against the sha256 of the versions that reproduce the published OV-MER numbers (../shared/DATA.md). A mismatch
is an error unless ``verify=False``: a newer upstream version changes every score.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from affectllm.evaluation.resources import WHEEL_FILES
from affectllm.utils.fingerprint import sha256_file
from affectllm.utils.paths import cache_dir

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/zeroQiaoba/AffectGPT/master/AffectGPT/emotion_wheel"
EXPECTED_SHA256 = {
    "format.csv": "ba6de7d61db8e129d1d7ef8a2aae22a9e93a2c2e3e683e6f2735d04455f016f2",
    "synonym.xlsx": "23f81f9ab1d2418aaf96775304fb5dc52c62bb5d5ef652a97471d045fc9d2e29",
    "wheel1.xlsx": "e70485d354b82a7491ff24648273182a5f4f13f92c76e6b3e4f9033f5e6afcc1",
    "wheel2.xlsx": "acc001e076a8e60440361f58dd8c05ed900c4890c84bb7d8d1df93708a7d9c87",
    "wheel3.xlsx": "d62f30bf88c17c55876634cd088eacaef98278fc25457474364439872f9dbf83",
    "wheel4.xlsx": "660260561b7fe15550f3679a01e7c783608ce3403d4c28db0a88520f68d83aea",
    "wheel5.xlsx": "2dd4595b2cf8e7628ca06a416a8e38ac831614b244f23d1ae613dc34007649f1",
}


class FetchError(RuntimeError):
    """A download failed or gave unexpected content; the message says which file and what to do."""


def fetch_resources(dest: str | os.PathLike[str] | None = None, base_url: str | None = None, *,
                    verify: bool = True, force: bool = False, transport: Any = None,
                    timeout: float = 60.0) -> dict[str, str]:
    """Download the seven files into ``dest`` (default: the user cache's emotion_wheel folder, which the scorer
    finds on its own). Returns file → 'downloaded' / 'present'. Files already there with the right hash are kept."""
    import httpx

    out = Path(dest) if dest is not None else cache_dir("emotion_wheel")
    out.mkdir(parents=True, exist_ok=True)
    base = (base_url or os.environ.get("AFFECTLLM_WHEEL_URL") or DEFAULT_BASE_URL).rstrip("/")
    status: dict[str, str] = {}
    with httpx.Client(follow_redirects=True, timeout=timeout, transport=transport) as client:
        for name in WHEEL_FILES:
            target = out / name
            if not force and target.is_file() and sha256_file(target) == EXPECTED_SHA256[name]:
                status[name] = "present"
                continue
            url = f"{base}/{name}"
            try:
                r = client.get(url)
            except httpx.HTTPError as e:
                raise FetchError(f"{url}: download failed ({e}); check the connection or pass --base-url") from e
            if r.status_code != 200:
                raise FetchError(f"{url}: HTTP {r.status_code}; the upstream layout may have moved, pass --base-url "
                                 "with the folder that holds format.csv")
            digest = hashlib.sha256(r.content).hexdigest()
            if verify and digest != EXPECTED_SHA256[name]:
                raise FetchError(f"{url}: sha256 {digest[:12]}… differs from the reference version "
                                 f"{EXPECTED_SHA256[name][:12]}…; scores would not match published numbers. "
                                 "Pass --no-verify to accept it anyway.")
            fd, tmp = tempfile.mkstemp(dir=out, suffix=".part")
            with os.fdopen(fd, "wb") as f:
                f.write(r.content)
            os.replace(tmp, target)
            status[name] = "downloaded"
    return status
