"""Export an AffectLLM checkpoint's LoRA as a standard PEFT adapter folder (``affectllm export peft``).

    OUT/adapter_config.json        PEFT's own (base_model_name_or_path: the hub id, never a machine path)
    OUT/adapter_model.safetensors  the LoRA tensors, PEFT's key names
    OUT/projector.safetensors      the Q-Former projector (not part of a text-only PEFT adapter)
    OUT/affectllm_config.json      the AffectLLM config, so the multimodal model can be put back together
    OUT/README.md                  the model card (``model_card``)

``PeftModel.from_pretrained(bare_llm, OUT)`` then gives the LoRA-adapted language model (text in, text out: the
LLM that vLLM's ``--lora-modules`` or any peft user serves); the media path still needs AffectLLM's projector.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROJECTOR_FILE = "projector.safetensors"
CONFIG_FILE = "affectllm_config.json"


def export_peft(model: Any, out: str | Path, *, name: str | None = None,
                summary: dict[str, Any] | None = None, sources: dict[str, int] | None = None) -> Path:
    """Write ``out`` from a loaded AffectLLM model (``affectllm.load(..., merge_lora=False)`` or a training one)."""
    from peft import PeftModel
    from safetensors.torch import save_file

    from affectllm.model.model_card import base_model_id, write_card

    lm = model.language_model
    if not isinstance(lm, PeftModel):
        raise ValueError("this model has no LoRA to export (lora_config.enabled is false): its projector alone "
                         "is in model.safetensors")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged = model.lora_merged()
    if merged:  # the saved LoRA tensors are the deltas, merged or not; unmerge so the base weights stay clean
        lm.unmerge_adapter()
    try:
        lm.save_pretrained(out, safe_serialization=True)
    finally:
        if merged:
            lm.merge_adapter()
    cfg_path = out / "adapter_config.json"
    adapter_cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    adapter_cfg["base_model_name_or_path"] = base_model_id(model.config.text_model)
    cfg_path.write_text(json.dumps(adapter_cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    projector = {k: v.detach().contiguous().cpu() for k, v in model.multi_modal_projector.state_dict().items()}
    save_file(projector, str(out / PROJECTOR_FILE), metadata={"format": "pt"})
    (out / CONFIG_FILE).write_text(model.config.to_json_string(), encoding="utf-8")
    write_card(out, model.config, name=name or "AffectLLM adapter (PEFT export)", summary=summary, sources=sources,
               library="peft", notes=["## PEFT", "", "```python", "from peft import PeftModel",
                                      "from transformers import AutoModelForCausalLM",
                                      f"llm = AutoModelForCausalLM.from_pretrained({adapter_cfg['base_model_name_or_path']!r})",
                                      "llm = PeftModel.from_pretrained(llm, 'THIS_FOLDER')  # text only",
                                      "```", "",
                                      f"`{PROJECTOR_FILE}` holds the multimodal projector and `{CONFIG_FILE}` the "
                                      "AffectLLM config; `affectllm caption --adapter` takes the AffectLLM "
                                      "checkpoint this was exported from.", ""])
    return out
