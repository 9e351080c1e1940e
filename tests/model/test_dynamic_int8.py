"""``quantization="dynamic-int8"`` (CPU): the merged LLM's linear layers become torch's dynamic int8 linears; the
greedy report of a model stays the unquantised one's within a stated tolerance, and the fingerprint tells them
apart (caches never mix their answers)."""

from __future__ import annotations

import pytest
import torch

import affectllm
from affectllm.testing import save_tiny_checkpoint

# the tolerance: next-token logits within 5 % of their range; wherever the float model's top-1 leads its
# runner-up by more than twice the largest logit error, the int8 model picks the same token (greedy decoding
# can only part where the float model itself was nearly undecided)
LOGIT_TOL = 0.05


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    folder = save_tiny_checkpoint(tmp_path_factory.mktemp("int8") / "ckpt", text="llama")
    plain = affectllm.load(model=str(folder), device="cpu")
    quant = affectllm.load(model=str(folder), device="cpu", quantization="dynamic-int8")
    return plain, quant


def test_every_llm_linear_is_int8_and_the_model_is_marked(both):
    (_, _), (q, _) = both
    mods = list(q.language_model.modules())
    assert not any(type(m) is torch.nn.Linear for m in mods)  # no float linear left, the LM head included
    assert sum(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in mods) >= 8
    assert q.quantized and q.quantization_kind == "dynamic-int8"


def test_logits_and_greedy_tokens_stay_within_the_tolerance(both):
    (p, proc), (q, _) = both
    ids = torch.tensor([[1, 7, 12, 5, 9, 3, 14, 2]])
    with torch.no_grad():
        a, b = p.language_model(input_ids=ids).logits, q.language_model(input_ids=ids).logits
    span = float(a.max() - a.min())
    assert float((a - b).abs().max()) <= LOGIT_TOL * span
    err = (a - b).abs().max()
    top2 = a[0].topk(2, dim=-1).values  # [L, 2]
    decided = (top2[:, 0] - top2[:, 1]) > 2 * err  # [L]
    assert decided.sum() >= 2  # the check is not empty
    assert torch.equal(a[0].argmax(-1)[decided], b[0].argmax(-1)[decided])


def test_the_fingerprints_differ_and_a_gpu_is_refused(both, tmp_path):
    (p, _), (q, _) = both
    assert p.fingerprint != q.fingerprint
    folder = save_tiny_checkpoint(tmp_path / "ckpt", text="llama")
    with pytest.raises(ValueError, match="CPU only"):
        affectllm.load(model=str(folder), device="meta", quantization="dynamic-int8")


def test_auto_quantises_only_a_shipped_starter_on_the_cpu_in_float32():
    from affectllm.loading import resolve_quantization
    from affectllm.model.limits import AUTO_CPU_QUANTIZATION

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_quantization("auto", True, cpu, torch.float32) == AUTO_CPU_QUANTIZATION  # None: measured worse
    assert resolve_quantization("auto", False, cpu, torch.float32) is None  # a user's checkpoint: as saved
    assert resolve_quantization("auto", True, gpu, torch.bfloat16) is None
    assert resolve_quantization("auto", True, cpu, torch.bfloat16) is None
    assert resolve_quantization("none", True, cpu, torch.float32) is None
    assert resolve_quantization("4bit", False, gpu, torch.bfloat16) == "4bit"
    with pytest.raises(ValueError, match="use one of auto, none"):
        resolve_quantization("3bit", False, cpu, torch.float32)
