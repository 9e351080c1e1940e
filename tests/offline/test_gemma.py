"""The embedded Gemma-3-270M: GGUF from the wheels -> cached bf16 HF folder with a chat template."""

from __future__ import annotations

import json
import time

import pytest
import torch

from affectllm.offline.cachefs import sha256_file
from affectllm.offline.gemma import GEMMA_CHAT_TEMPLATE, ensure_gemma
from affectllm.offline.registry import read_marker

pytestmark = pytest.mark.slow  # converts once into the default cache (about 1-3 min on 2 cores), then reuses


@pytest.fixture(scope="module")
def folder():
    return ensure_gemma()


@pytest.fixture(scope="module")
def tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _greedy(model, tokenizer, prompt: str, n: int = 8) -> str:
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=n, do_sample=False)
    return tokenizer.decode(out[0, ids.input_ids.shape[1]:])


def test_folder_is_complete_small_and_cached(folder):
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja", "GEMMA_TERMS.html", "affectllm-prepared.json"} <= names
    assert not list(folder.rglob("*.gguf")) and not [n for n in names if n.startswith(("_", ".", "tmp"))]
    marker = read_marker(folder)
    assert marker["gguf"]["sha256"].startswith("a5fd3b62") and marker["gguf"]["sha256"].endswith("6818")
    assert marker["sha256"]["model.safetensors"] == sha256_file(folder / "model.safetensors")
    size = (folder / "model.safetensors").stat().st_size
    assert 500e6 < size < 560e6  # 268 M bf16 parameters, tied LM head stored once
    t0 = time.perf_counter()
    assert ensure_gemma() == folder
    assert time.perf_counter() - t0 < 5


def test_config_is_a_plain_bf16_gemma3(folder):
    cfg = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in cfg
    assert (cfg["model_type"], cfg["dtype"], cfg["num_hidden_layers"], cfg["hidden_size"], cfg["vocab_size"]) == (
        "gemma3_text", "bfloat16", 18, 640, 262144)
    gen = json.loads((folder / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [1, 106] and gen["bos_token_id"] == 2 and gen["pad_token_id"] == 0


def test_tokenizer_ids_and_chat_template(tokenizer):
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>")}
    assert ids == {"<start_of_turn>": 105, "<end_of_turn>": 106, "<bos>": 2, "<eos>": 1}
    assert tokenizer("<start_of_turn>user", add_special_tokens=False).input_ids[0] == 105
    assert tokenizer.chat_template == GEMMA_CHAT_TEMPLATE
    messages = [
        {"role": "system", "content": "Name the emotion."},
        {"role": "user", "content": "I lost my keys again "},
        {"role": "assistant", "content": "frustration"},
        {"role": "user", "content": [{"type": "text", "text": "And "}, {"type": "text", "text": "now?"}]},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<bos><start_of_turn>user\nName the emotion.\n\nI lost my keys again<end_of_turn>\n"
        "<start_of_turn>model\nfrustration<end_of_turn>\n"
        "<start_of_turn>user\nAnd now?<end_of_turn>\n<start_of_turn>model\n"
    )
    no_prompt = tokenizer.apply_chat_template(messages[1:2], tokenize=False)
    assert no_prompt == "<bos><start_of_turn>user\nI lost my keys again<end_of_turn>\n"
    enc = tokenizer.apply_chat_template(messages[1:2], add_generation_prompt=True)
    ids_list = enc["input_ids"]
    assert ids_list[:2] == [2, 105] and ids_list.count(2) == 1  # one <bos>, then a turn
    assert tokenizer.decode(ids_list[-3:]) == "<start_of_turn>model\n" and ids_list.count(106) == 1
    with pytest.raises(Exception, match="alternate"):
        tokenizer.apply_chat_template([{"role": "assistant", "content": "x"}], tokenize=False)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_loads_and_continues_greedily(folder, tokenizer, dtype):
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    assert time.perf_counter() - t0 < 60
    assert next(model.parameters()).dtype == dtype
    assert round(sum(p.numel() for p in model.parameters()) / 1e6) == 268
    # What this base model (Q4_K_M, dequantised) really says: it completes the fact when the
    # prompt asks for a city, and paraphrases the bare prompt.
    assert _greedy(model, tokenizer, "The capital of France is the city of", 2) == " Paris."
    if dtype != torch.bfloat16:
        return
    assert _greedy(model, tokenizer, "The capital of France is") == " the capital of the country of France."
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Say hello."}], add_generation_prompt=True,
                                         return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**chat, max_new_tokens=16, do_sample=False)
    new = out[0, chat["input_ids"].shape[1]:].tolist()
    assert 0 < len(new) <= 16 and (new[-1] in (1, 106) or len(new) == 16)
