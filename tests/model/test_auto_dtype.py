"""``dtype="auto"``: bfloat16 on a GPU; on the CPU a shipped starter loads in ``AUTO_CPU_DTYPE`` only where the CPU
computes bf16 natively (elsewhere bf16 is emulated and slower), and a user's checkpoint loads in float32 as
trained. A model in another precision has its own fingerprint (caches never mix their answers)."""

from __future__ import annotations

import pytest
import torch

import affectllm
from affectllm import loading
from affectllm.model import limits
from affectllm.testing import save_tiny_checkpoint

CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native", [True, False])
def test_auto_gives_a_shipped_starter_bf16_only_on_a_cpu_with_native_bf16(monkeypatch, native):
    monkeypatch.setattr(loading, "native_cpu_bf16", lambda: native)
    monkeypatch.setattr(limits, "AUTO_CPU_DTYPE", "bfloat16")
    assert loading.resolve_dtype("auto", CPU, shipped=True) == (torch.bfloat16 if native else torch.float32)
    assert loading.resolve_dtype("auto", CPU, shipped=False) == torch.float32  # a user's checkpoint: as trained
    assert loading.resolve_dtype("auto", GPU, shipped=False) == torch.bfloat16
    assert loading.resolve_dtype("float32", CPU, shipped=True) == torch.float32  # a named dtype is obeyed
    monkeypatch.setattr(limits, "AUTO_CPU_DTYPE", "float32")
    assert loading.resolve_dtype("auto", CPU, shipped=True) == torch.float32
    with pytest.raises(ValueError, match="choose auto"):
        loading.resolve_dtype("int3", CPU)


def test_a_bf16_load_answers_under_its_own_fingerprint(tmp_path):
    folder = save_tiny_checkpoint(tmp_path / "ckpt", text="llama")
    fp32, _ = affectllm.load(model=str(folder), device="cpu")
    bf16, _ = affectllm.load(model=str(folder), device="cpu", dtype="bfloat16")
    again, _ = affectllm.load(model=str(folder), device="cpu", dtype="float32")
    assert next(bf16.language_model.parameters()).dtype == torch.bfloat16
    assert fp32.fingerprint == again.fingerprint != bf16.fingerprint


def test_the_cpu_check_answers_without_raising():
    assert loading.native_cpu_bf16() in (True, False)
