"""Run the published AffectGPT model (ICML 2025; ouyangjutian/AffectGPT @ d961cab0) on AffectLLM.

Everything AffectGPT needs that AffectLLM does differently lives here, as options of the existing architecture:

- towers: HF CLIP in ``tokens="projected"`` mode (``get_image_features``: one 768-d vector per frame), 8 frames
  at indices ``arange(0, n, n/8).astype(int)`` (``frame_sampling="affectgpt"``, on the processor and engine
  paths alike) squashed to 224x224; HuBERT on 8 2-s clips starting at ``i * (dur - 2) / 8``
  (``clip_spacing="pytorchvideo"``), each minus its own mean (``clip_mean``), normalised jointly (one
  zero-mean/unit-variance over all clips, as their single feature-extractor call does), mean of the last 4
  hidden states with layer -1 = ``last_hidden_state`` (``last_layer``: what transformers 4.x returned for a
  stable-layer-norm HuBERT), then over time -> ``[B, 8, 1024]``;
- the ``affectgpt`` projector type (``affectgpt_projector.py``);
- the plain-text ``###Human: ... ###Assistant: `` prompt with ``<Multi>``, ``<Audio>``, ``<Video>`` spans and the
  subtitle (``media_template`` + ``CHAT_TEMPLATE``), generation stopping at ``###``;
- ``convert_checkpoint``: their ``torch.save`` dict -> a normal AffectLLM checkpoint folder.

Their checkpoint keeps only trainable tensors (``"model"``): LoRA A/B under
``llama_model.base_model.model.model.layers.N.<proj>.lora_{A,B}.default.weight`` and the projector Linear layers.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectllm.media.sampling import frame_indices  # noqa: F401  (their frame rule; re-exported)

# --- published sources (ids on the Hugging Face hub) ------------------------------------------------------
CHECKPOINT_REPO = "MERChallenge/AffectGPT"
CHECKPOINT_FILE = "mercaptionplus_outputhybird_bestsetup_bestfusion_frame_lz/checkpoint_000030_loss_0.602.pth"
VISION_MODEL = "openai/clip-vit-large-patch14"
AUDIO_MODEL = "TencentGameMate/chinese-hubert-large"
TEXT_MODEL = "Qwen/Qwen2.5-7B-Instruct"

# Architecture values of those published models (from their config.json files on the hub), used to build
# the model on the meta device for --dry-run sizes without downloading anything.
PUBLISHED_VISION_ARCH = {  # openai/clip-vit-large-patch14 config.json
    "model_type": "clip",
    "projection_dim": 768,
    "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                      "num_attention_heads": 16, "patch_size": 14, "image_size": 224},
    "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                    "num_attention_heads": 12, "vocab_size": 49408, "max_position_embeddings": 77},
}
PUBLISHED_AUDIO_ARCH = {  # TencentGameMate/chinese-hubert-large config.json (HuBERT-large layout)
    "model_type": "hubert", "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
    "intermediate_size": 4096, "feat_extract_norm": "layer", "do_stable_layer_norm": True,
    "conv_bias": True,
}
PUBLISHED_TEXT_ARCH = {  # Qwen/Qwen2.5-7B-Instruct config.json
    "model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
    "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 32768,
    "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
}

NUM_FRAMES = 8
NUM_CLIPS = 8
CLIP_SECONDS = 2.0
SAMPLE_RATE = 16000
AUDIO_LAYERS = [-4, -3, -2, -1]
STOP = "###"
PLACEHOLDERS = {"vision": "<|affect_vision|>", "audio": "<|affect_audio|>", "multi": "<|affect_multi|>"}
DESCRIBE = "Please infer the person's emotional state and provide your reasoning process."
OV_LABELS = "Please recognize all possible emotional states of the character."

# The two published variants differ in one sentence: raw frames (default) or OpenFace face crops.
VIDEO_SENTENCE = {
    "frame": "Meanwhile, we uniformly sample raw frames from the video: <Video>{vision}</Video>.",
    "face": "Meanwhile, we uniformly sample raw frames from the video and extract faces from these frames: "
            "<Video>{vision}</Video>.",
}
MEDIA_TEMPLATE = ("The audio and video merged info is: <Multi>{multi}</Multi>. "
                  "The audio content is as follows: <Audio>{audio}</Audio>. {video}")
# Plain text, no special tokens; the processor joins media and text parts with "\n", which this template turns
# into the single space of their prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '###Human: ' + (message['content'] | replace('\n', ' ')) + ' ' }}"
    "{% elif message['role'] == 'assistant' %}{{ '###Assistant: ' + message['content'] + '###' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '###Assistant: ' }}{% endif %}"
)


def media_template(variant: str = "frame") -> str:
    if variant not in VIDEO_SENTENCE:
        raise ValueError(f"variant {variant!r} unknown; choose 'frame' (raw frames) or 'face' (OpenFace crops)")
    return MEDIA_TEMPLATE.replace("{video}", VIDEO_SENTENCE[variant])


def user_text(question: str = DESCRIBE, subtitle: str | None = None) -> str:
    """The text after the media spans: subtitle sentence (when known) and the question."""
    sub = "" if subtitle is None else f"The subtitle of this video is: <Subtitle>{subtitle}</Subtitle>. "
    return f"{sub}Now, please answer my question based on all the provided information. {question}"


# --- media options ---------------------------------------------------------------------------------------
def load_openface_faces(npy_path: str | Path, audio: np.ndarray | None = None) -> dict[str, Any]:
    """The face variant's input: OpenFace crops saved as their ``.npy`` layout ``[T, H, W, 3]`` uint8 (RGB),
    as a decoded video part ``{"frames", "timestamps", "audio"}`` (timestamps are crop indices)."""
    faces = np.load(npy_path, allow_pickle=False)
    if faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"{npy_path}: expected OpenFace crops [T, H, W, 3], got shape {faces.shape}; "
                         "extract faces with OpenFace as AffectGPT's MER-UniBench tools do")
    return {"frames": faces.astype(np.uint8), "timestamps": np.arange(len(faces), dtype=np.float32), "audio": audio}


def clip_bounds(n_samples: int, clips: int = NUM_CLIPS, seconds: float = CLIP_SECONDS,
                sr: int = SAMPLE_RATE, spacing: str = "pytorchvideo") -> list[tuple[int, int]]:
    """Sample ranges of ``clips`` clips of ``seconds``, in exact fractions as pytorchvideo computes them.

    ``spacing="pytorchvideo"`` (their ConstantClipsPerVideoSampler): start_i = i * max(dur - s, 0) / clips, so
    the last clip ends before the audio does (16 s: 0, 1.75, ... 12.25 s); ``"ends"``: start_i = i * max(dur - s,
    0) / (clips - 1), the last clip ending at the end (16 s: 0, 2, ... 14 s)."""
    duration = Fraction(n_samples / sr)  # their float duration, made exact as Fraction(float) does
    span = Fraction(max(duration - Fraction(seconds), 0))
    step = span / (clips if spacing == "pytorchvideo" else max(clips - 1, 1))
    return [(int(step * i * sr), int((step * i + Fraction(seconds)) * sr)) for i in range(clips)]


def clip_waveform(wave: torch.Tensor, clips: int = NUM_CLIPS, seconds: float = CLIP_SECONDS,
                  spacing: str = "pytorchvideo", clip_mean: bool = True) -> torch.Tensor:
    """[S] 16 kHz -> [clips, seconds*sr]; shorter audio is zero-padded to ``seconds`` first (as theirs).

    ``clip_mean``: each clip minus its own mean, as their ``transform_audio`` leaves the raw clips (its
    ``waveform2melspec`` does ``waveform -= waveform.mean()`` in place on views of them) before HuBERT sees them."""
    n = int(seconds * SAMPLE_RATE)
    if wave.shape[0] < n:
        wave = torch.nn.functional.pad(wave, (0, n - wave.shape[0]))
    c = torch.stack([wave[a:b] for a, b in clip_bounds(wave.shape[0], clips, seconds, spacing=spacing)])
    return c - c.mean(1, keepdim=True) if clip_mean else c  # [clips, n]


def clip_mode_features(tower, x: torch.Tensor, mask: torch.Tensor):
    """The audio tower's ``clips`` mode. x [B, S], mask [B, S] -> TowerOutput features [B, clips, D]."""
    from affectllm.model.towers.base import TowerOutput, average_layers

    spec = tower.spec
    feats, times = [], []
    for wave, m in zip(x, mask):
        real = wave[: int(m.sum())]
        c = clip_waveform(real, spec.clips, spec.clip_seconds, spec.clip_spacing, spec.clip_mean)  # [C, s]
        if spec.normalize:  # one zero-mean / unit-variance over all clips together
            c64 = c.double()
            c = ((c64 - c64.mean()) / torch.sqrt(c64.var(unbiased=False) + 1e-7)).to(c.dtype)
        f = average_layers(tower.encoder(c, output_hidden_states=True), spec).mean(1)  # [C, D]
        feats.append(f)
        bounds = clip_bounds(max(real.shape[0], int(spec.clip_seconds * SAMPLE_RATE)), spec.clips,
                             spec.clip_seconds, spacing=spec.clip_spacing)
        times.append(torch.tensor([(a + b) / 2 / SAMPLE_RATE for a, b in bounds], device=x.device))
    f = torch.stack(feats)  # [B, C, D]
    return TowerOutput(f, torch.ones(f.shape[:2], dtype=torch.bool, device=x.device), torch.stack(times))


# --- config ----------------------------------------------------------------------------------------------
def affectgpt_config(vision_model: str | None = VISION_MODEL, audio_model: str | None = AUDIO_MODEL,
                     text_model: str | None = TEXT_MODEL, variant: str = "frame", vision_arch: dict | None = None,
                     audio_arch: dict | None = None, text_arch: dict | None = None, lora_r: int = 16):
    """The AffectLLMConfig of a converted AffectGPT model (towers and LLM named by id/path, or by arch)."""
    from affectllm.model.configuration_affectllm import AffectLLMConfig

    return AffectLLMConfig(
        vision_config={"type": "hf", "model": vision_model, "arch": vision_arch, "tokens": "projected",
                       "input": "frames", "num_frames": NUM_FRAMES,
                       "image_size": 224, "frame_sampling": "affectgpt", "resize": "squash"},
        audio_config={"model": audio_model, "arch": audio_arch, "layers": AUDIO_LAYERS, "normalize": True,
                      "clips": NUM_CLIPS, "clip_seconds": CLIP_SECONDS, "clip_spacing": "pytorchvideo",
                      "clip_mean": True, "last_layer": "last_hidden_state"},
        projector_config={"type": "affectgpt", "num_queries": {"vision": 1, "audio": 1}, "dropout": 0.0},
        text_model=text_model,
        text_config=text_arch,
        lora_config={"enabled": True, "r": lora_r, "alpha": 32, "dropout": 0.05},
        placeholder_tokens=dict(PLACEHOLDERS),
        use_cues=False,
        prompt_style="affectgpt",  # engine Renderer: their subtitle sentence + question, no cue lines
        asr_model="base",  # Whisper for the subtitle when the input gives none (their tools used an ASR too)
        affectgpt_variant=variant,
        # their answer_sample passes repetition_penalty=1.0 (Qwen2.5's generation_config says 1.05)
        generation_overrides={"repetition_penalty": 1.0, "stop_strings": [STOP]},
    )
