"""The embedded default's precision (issue 20): ``dtype="auto"`` loads it in bfloat16 on a CPU that computes bf16
natively (``model/limits.py: AUTO_CPU_DTYPE``, measured on the held-out speakers), float32 elsewhere; the bf16
report on the package's example clip keeps float32's labels, valence and arousal and stays faithful. Real
weights: skipped only when SmolLM2's converted weights are absent (``affectllm models prepare``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import affectllm
from affectllm.loading import native_cpu_bf16
from affectllm.model.limits import AUTO_CPU_DTYPE
from affectllm.offline.registry import get_component

CLIP = Path(affectllm.__file__).parent / "assets" / "examples" / "astronaut.mp4"


@pytest.fixture(scope="module")
def reports():
    if not get_component("smollm2").prepared():
        pytest.skip("SmolLM2 weights not prepared: run `affectllm models prepare`")
    out = {}
    for dtype in ("auto", "float32", "bfloat16"):  # "auto" is one of the other two: its report is reused
        if dtype != "auto" and out["auto"][0] == getattr(torch, dtype):
            out[dtype] = out["auto"]
            continue
        model, processor = affectllm.load(device="cpu", dtype=dtype)
        out[dtype] = (next(model.language_model.parameters()).dtype,
                      affectllm.predict(model, processor, video=str(CLIP), max_new_tokens=96))
    return out


def test_auto_picks_bf16_exactly_where_the_cpu_has_it(reports):
    want = torch.bfloat16 if (AUTO_CPU_DTYPE == "bfloat16" and native_cpu_bf16()) else torch.float32
    assert reports["auto"][0] == want
    assert reports["float32"][0] == torch.float32 and reports["bfloat16"][0] == torch.bfloat16


def test_the_bf16_report_keeps_the_float32_labels_and_stays_faithful(reports):
    (_, fp32), (_, bf16) = reports["float32"], reports["bfloat16"]
    assert fp32.labels and bf16.labels[:3] == fp32.labels[:3]
    assert (bf16.valence, bf16.arousal) == (fp32.valence, fp32.arousal)
    assert fp32.faithful and bf16.faithful, (fp32.faithfulness_problems, bf16.faithfulness_problems)
