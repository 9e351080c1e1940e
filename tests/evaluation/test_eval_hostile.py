"""Issue 12: malformed prediction and ground-truth files. Each ends `eval score` with exit 2 and a message naming
the file (and line where there is one) and the fix: no traceback, no bare "Aborted.", no silently lost row."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from affectllm.cli.eval import app

GT = "name,openset\ns1,\"['happy']\"\ns2,\"['sad']\"\n"


def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, filenames=np.array(["s1", "s2"]), fileitems=np.array(["happy", "sad"]))
    return buf.getvalue()


# name -> (file bytes, words the message must hold, line the message must name or None)
CASES = {
    "huge_field.csv": (("name,openset\ns1,\"['" + "a" * 140_000 + "']\"\ns2,\"['sad']\"\n").encode(),
                       "longer than 131072 characters", "2"),
    "truncated.npz": (_npz_bytes()[:300], "truncated or corrupt .npz", None),
    "zero.npz": (b"", "empty (0 bytes)", None),
    "latin1.csv": ("name,openset\ns1,\"['happy']\"\ns2,\"['caf\u00e9']\"\n".encode("latin-1"), "not UTF-8", "3"),
    "unclosed_quote.csv": (b"name,openset\ns1,\"['happy']\ns2,\"['sad']\"\n", "quoted field is not closed", "2-3"),
    "empty.jsonl": (b"", "no samples", None),
    "empty.csv": (b"", "empty file", None),
    "random.npz": (np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                   "not a valid .npz", None),
    "header_only.csv": (b"name,openset\n", "no samples", None),
    "latin1.jsonl": ('{"id": "s1", "labels": ["caf\u00e9"]}\n'.encode("latin-1"), "not UTF-8", "1"),
}


@pytest.mark.parametrize("side", ["pred", "gt"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_file_exits_2_naming_file_line_and_fix(name: str, side: str, tmp_path: Path) -> None:
    data, words, line = CASES[name]
    bad = tmp_path / name
    bad.write_bytes(data)
    good = tmp_path / "gt.csv"
    good.write_text(GT, encoding="utf-8")
    gt, pred = (bad, good) if side == "gt" else (good, bad)
    result = CliRunner().invoke(app, ["score", "--task", "ov-mer", "--gt", str(gt), "--pred", str(pred),
                                      "--out", str(tmp_path / "out"), "--no-html"])
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.startswith(f"error: {bad}"), message
    assert words in message, message
    if line is not None:
        assert message.startswith(f"error: {bad}:{line}:"), message
    assert ";" in message  # problem; fix
    assert "Traceback" not in result.output and "Aborted" not in result.output
    assert "pickled Python objects" not in message
    assert not (tmp_path / "out" / "results.json").exists()
