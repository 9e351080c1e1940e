"""``--model affectgpt``: fetch AffectGPT's published checkpoint into the user's Hugging Face cache (with a
progress bar), convert it once into ``$AFFECTLLM_HOME/affectgpt/<variant>``, and report its size on the meta
device. AffectLLM never redistributes these weights: AffectGPT's are licensed for non-commercial research, and
Qwen2.5-7B-Instruct, CLIP and chinese-hubert-large come from their own hub pages under their own terms.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

from affectllm.model import affectgpt as ag

MODEL_NAMES = {"affectgpt": "frame", "affectgpt-frame": "frame", "affectgpt-face": "face"}
# their published run folders: raw frames (README "Inference for Single Video") and OpenFace faces (MER-UniBench)
RUN_FOLDER = {"frame": "mercaptionplus_outputhybird_bestsetup_bestfusion_frame_lz",
              "face": "emercoarse_highlevelfilter4_outputhybird_bestsetup_bestfusion_lz"}
PREFERRED_EPOCH = 30  # their README's single-video command: inference.test_epoch=30


def pick_checkpoint(files: list[str], variant: str) -> str:
    """The .pth of ``variant`` in a listing of the hub repo (epoch 30 when present, else the latest)."""
    cands = [f for f in files if f.endswith(".pth") and ("frame" in f) == (variant == "frame")]
    preferred = [f for f in cands if RUN_FOLDER[variant] in f] or cands
    if not preferred:
        raise FileNotFoundError(
            f"{ag.CHECKPOINT_REPO} holds no {variant}-variant checkpoint (.pth files: "
            f"{[f for f in files if f.endswith('.pth')][:6]}). Download {RUN_FOLDER[variant]} from the link in "
            "AffectGPT's README and run `affectllm convert affectgpt FILE.pth --out DIR`, then --model DIR")

    def epoch(name: str) -> int:
        m = re.search(r"checkpoint_(\d+)", name)
        return int(m.group(1)) if m else -1

    exact = [f for f in preferred if epoch(f) == PREFERRED_EPOCH]
    return exact[0] if exact else max(preferred, key=epoch)


# Their media rules as tower options; a folder converted before an option existed gets it written in.
MEDIA_RULES = {"vision_config": {"frame_sampling": "affectgpt"},
               "audio_config": {"clip_spacing": "pytorchvideo", "clip_mean": True, "last_layer": "last_hidden_state"}}


def refresh_media_rules(config_json: Path) -> None:
    cfg = json.loads(config_json.read_text())
    stale = {k: v for k, v in MEDIA_RULES.items() if any((cfg.get(k) or {}).get(o) != x for o, x in v.items())}
    if stale:
        for key, rules in stale.items():
            cfg[key] = {**(cfg.get(key) or {}), **rules}
        config_json.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def ensure_affectgpt(name: str = "affectgpt") -> Path:
    """The converted folder for ``name`` (affectgpt | affectgpt-frame | affectgpt-face), made on first use."""
    from affectllm.compat.affectgpt_convert import convert_checkpoint
    from affectllm.utils.paths import cache_dir

    variant = MODEL_NAMES[name]
    out = Path(cache_dir("affectgpt")) / variant
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        refresh_media_rules(out / "config.json")
        return out
    try:
        from huggingface_hub import hf_hub_download, list_repo_files

        filename = pick_checkpoint(list_repo_files(ag.CHECKPOINT_REPO), variant)
        path = hf_hub_download(ag.CHECKPOINT_REPO, filename)  # tqdm progress bar; lands in the HF cache
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001  (offline, gated, renamed)
        raise RuntimeError(
            f"--model {name}: could not fetch {ag.CHECKPOINT_REPO} from the Hugging Face hub "
            f"({type(e).__name__}: {str(e)[:200]}). Download the checkpoint yourself and run "
            "`affectllm convert affectgpt FILE.pth --out DIR`, then pass --model DIR") from e
    tmp = out.with_name(out.name + ".partial")  # a complete folder appears only after a complete conversion
    convert_checkpoint(path, tmp, variant=variant)
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


def dry_run(variant: str = "frame") -> dict:
    """Parameter counts and weight memory of the converted 7B model, built on the meta device from the
    published config values (nothing is downloaded or allocated)."""
    from affectllm.compat.affectgpt_convert import skeleton

    config = ag.affectgpt_config(variant=variant, vision_arch=ag.PUBLISHED_VISION_ARCH,
                                 audio_arch=ag.PUBLISHED_AUDIO_ARCH, text_arch=ag.PUBLISHED_TEXT_ARCH)
    model = skeleton(config)
    parts = {"vision tower (CLIP ViT-L/14)": model.vision_tower, "audio tower (HuBERT-large)": model.audio_tower,
             "projector": model.multi_modal_projector, "LLM (Qwen2.5-7B-Instruct) + LoRA": model.language_model}
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
    lora = sum(p.numel() for n, p in model.language_model.named_parameters() if "lora_" in n)
    total = sum(counts.values())
    # 4-bit NF4 (bitsandbytes, double quantisation ~4.127 bits) applies to the LLM's nn.Linear layers except
    # lm_head; embeddings, norms, LoRA, towers and projector stay bf16
    quantisable = sum(m.weight.numel() for n, m in model.base_language_model().named_modules()
                      if isinstance(m, torch.nn.Linear) and "lm_head" not in n and "lora_" not in n)
    bf16 = 2 * total
    four_bit = bf16 - 2 * quantisable + quantisable * 4.127 / 8
    return {"variant": variant, "parameters": counts, "lora_parameters": lora, "total_parameters": total,
            "weights_bf16_gib": bf16 / 2**30, "weights_4bit_gib": four_bit / 2**30}
