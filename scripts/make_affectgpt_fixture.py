"""Generate the AffectGPT parity fixture with AffectGPT's own classes (tests/fixtures/affectgpt/).

Needs their code (not shipped here): ``git clone https://github.com/ouyangjutian/AffectGPT`` at d961cab0, then

    PYTHONPATH=$PWD python scripts/make_affectgpt_fixture.py --affectgpt-src PATH/AffectGPT/AffectGPT

It builds their ``AffectGPT`` model (``my_affectgpt/models/affectgpt.py``) with their CLIP_VIT_LARGE and
HUBERT_LARGE encoder classes, their tokenizer loader and their ``Chat.answer_sample``, at tiny size with random
weights (tiny CLIP, HuBERT and Qwen2 configs, saved next to the fixture), saves a checkpoint in their exact
``torch.save`` format, and records, for fixed frames and a fixed waveform run through their own audio clip loader:
the prompt token ids, the next-token logits of their forward pass, and their greedy tokens.

Only what cannot run offline or is unrelated to this model is stubbed: heavy optional imports (EVA-CLIP,
Q-Former, ImageBind, decord, webdataset, omegaconf, pytorchvideo's clip sampler, torchaudio.load, einops), and
two transformers-5 shims: ``CLIPModel.get_image_features`` returns the projected tensor and
``AutoFeatureExtractor`` gives CLIP's image processor, as both did in 4.x.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "affectgpt"
SUBTITLE = "I don't know! I, I, I don't have experience in this area."
QUESTION = "Please infer the person's emotional state and provide your reasoning process."
MAX_NEW_TOKENS = 12
SEED = 0

TINY_CLIP = dict(vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                    image_size=224, patch_size=32),
                 text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  vocab_size=64, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                                  pad_token_id=1),
                 projection_dim=24)
TINY_HUBERT = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                   conv_dim=[16, 16, 16], conv_kernel=[10, 8, 4], conv_stride=[5, 8, 8], conv_bias=True,
                   num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
                   do_stable_layer_norm=True)
TINY_QWEN2 = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=False,
                  rope_theta=1000000.0, rms_norm_eps=1e-6, pad_token_id=0, eos_token_id=2, bos_token_id=None)


def small_inputs() -> dict[str, np.ndarray]:
    """Frames stored at 28x28 (expanded x8 to 224x224 by nearest repetition) and a 3.3-s waveform."""
    rng = np.random.default_rng(SEED)
    frames_small = rng.integers(0, 256, size=(8, 28, 28, 3), dtype=np.uint8)
    t = np.arange(int(3.3 * 16000)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)
    return {"frames_small": frames_small, "waveform": wave}


def expand_frames(frames_small: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(frames_small, 8, axis=1), 8, axis=2)  # [8, 224, 224, 3]


def save_towers(out: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        HubertConfig,
        HubertModel,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
        Wav2Vec2FeatureExtractor,
    )

    from affectllm.testing import _tokenizer_json

    torch.manual_seed(SEED)
    CLIPModel(CLIPConfig(**TINY_CLIP)).save_pretrained(out / "clip")
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(out / "clip")
    HubertModel(HubertConfig(**TINY_HUBERT)).save_pretrained(out / "hubert")
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(out / "hubert")
    llm = Qwen2ForCausalLM(Qwen2Config(**TINY_QWEN2))
    llm.half().float()  # their loader reads the LLM in float16: store values that survive it unchanged
    llm.save_pretrained(out / "llm")
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_tokenizer_json()), pad_token="<pad>",
                                  eos_token="<eos>", unk_token="<unk>")  # no bos, as Qwen2.5's tokenizer
    tok.save_pretrained(out / "llm")


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def install_stubs(src: Path) -> None:
    """Stand-ins for imports this model never uses (or that cannot run offline)."""
    import torch.nn.functional  # noqa: F401

    def rearrange(x, pattern, **sizes):
        if pattern == "b c t h w -> (b t) h w c":
            return x.permute(0, 2, 3, 4, 1).flatten(0, 1)
        if pattern == "(b t) h -> b t h":
            return x.reshape(sizes["b"], sizes["t"], *x.shape[1:])
        if pattern == "b t h -> b h t":
            return x.transpose(1, 2)
        if pattern == "b t s -> (b t) s":
            return x.flatten(0, 1)
        raise NotImplementedError(pattern)

    _module("einops", rearrange=rearrange)

    class Blip2Base(nn.Module):
        def maybe_autocast(self, dtype=torch.float16):
            return contextlib.nullcontext()

    class ConstantClipsPerVideoSampler:  # pytorchvideo.data.clip_sampling semantics
        def __init__(self, clip_duration, clips_per_video, augs_per_clip=1):
            self._clip_duration = Fraction(clip_duration)
            self._clips_per_video = clips_per_video
            self._current_clip_index = 0

        def __call__(self, last_clip_time, video_duration, annotation):
            max_start = Fraction(max(video_duration - self._clip_duration, 0))
            uniform_clip = Fraction(max_start, max(self._clips_per_video - 1, 1))
            start = uniform_clip * self._current_clip_index
            index = self._current_clip_index
            self._current_clip_index += 1
            last = self._current_clip_index >= self._clips_per_video
            if last:
                self._current_clip_index = 0
            return start, start + self._clip_duration, index, 0, last

    pkgs = {"my_affectgpt": src / "my_affectgpt", "my_affectgpt.models": src / "my_affectgpt/models",
            "my_affectgpt.common": src / "my_affectgpt/common",
            "my_affectgpt.conversation": src / "my_affectgpt/conversation",
            "my_affectgpt.datasets": src / "my_affectgpt/datasets",
            "my_affectgpt.datasets.datasets": src / "my_affectgpt/datasets/datasets",
            "my_affectgpt.models.ImageBind": src / "my_affectgpt/models/ImageBind",
            "my_affectgpt.models.ImageBind.models": src / "my_affectgpt/models/ImageBind/models"}
    for name, path in pkgs.items():
        _module(name, __path__=[str(path)])
    sys.modules["my_affectgpt.models"].BaseModel = nn.Module  # their registry checks model classes against it
    _module("my_affectgpt.models.blip2", Blip2Base=Blip2Base, disabled_train=lambda self, mode=True: self)
    _module("my_affectgpt.models.Qformer", BertConfig=object, BertLMHeadModel=object)
    _module("my_affectgpt.models.eva_vit", create_eva_vit_g=None)
    _module("my_affectgpt.models.base_model", BaseModel=nn.Module)
    _module("my_affectgpt.common.dist_utils", download_cached_file=None)
    _module("my_affectgpt.common.utils", is_url=None)
    _module("my_affectgpt.common.logger", MetricLogger=None)
    _module("my_affectgpt.models.ImageBind.models.imagebind_model", ImageBindModel=None, ModalityType=None,
            imagebind_huge=None)
    _module("my_affectgpt.models.ImageBind.models.multimodal_preprocessors", SimpleTokenizer=None)
    _module("my_affectgpt.processors", Blip2ImageEvalProcessor=None)
    _module("my_affectgpt.processors.video_processor", ToTHWC=None, ToUint8=None, load_video=None, load_face=None)
    _module("my_affectgpt.datasets.builders")
    _module("my_affectgpt.datasets.builders.image_text_pair_builder")
    _module("pytorchvideo")
    _module("pytorchvideo.transforms")
    _module("pytorchvideo.data")
    _module("pytorchvideo.data.clip_sampling", ConstantClipsPerVideoSampler=ConstantClipsPerVideoSampler)
    _module("pytorchvideo.data.encoded_video", EncodedVideo=None)
    _module("torchvision.transforms._transforms_video", NormalizeVideo=None)
    _module("torchaudio", load=None, functional=None, compliance=None)
    sys.path.insert(0, str(src))


def build_theirs(src: Path, out: Path):
    install_stubs(src)
    import config as their_config  # their top-level config.py
    from transformers import CLIPModel

    their_config.PATH_TO_LLM["Qwen25"] = str(out / "llm")
    their_config.PATH_TO_VISUAL["CLIP_VIT_LARGE"] = str(out / "clip")
    their_config.PATH_TO_AUDIO["HUBERT_LARGE"] = str(out / "hubert")
    original = CLIPModel.get_image_features
    CLIPModel.get_image_features = lambda self, *a, **k: original(self, *a, **k).pooler_output  # 4.x behaviour

    from my_affectgpt.models.affectgpt import AffectGPT  # their class
    from transformers import CLIPImageProcessor

    # transformers-5 shim: 4.x's AutoFeatureExtractor gave CLIP's image processor for this folder
    sys.modules["my_affectgpt.models.encoder"].AutoFeatureExtractor = CLIPImageProcessor

    cfg = dict(visual_encoder="CLIP_VIT_LARGE", acoustic_encoder="HUBERT_LARGE", llama_model="Qwen25",
               multi_fusion_type="attention", video_fusion_type="attention", audio_fusion_type="attention",
               image_fusion_type="mean", num_audio_query_token=1, num_video_query_token=1, num_multi_query_token=1,
               num_image_query_token=1, lora_r=16)  # train_configs/*_bestsetup_bestfusion_frame_lz.yaml
    model = AffectGPT.from_config(cfg).float().eval()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():  # random trainable weights (LoRA B included, so LoRA changes the output)
        for _, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model, cfg


def their_checkpoint(model, cfg) -> dict:
    """Exactly what their runner's _save_checkpoint writes (trainable tensors + buffers under "model")."""
    grads = {k: v.requires_grad for k, v in model.named_parameters()}
    state = {k: v for k, v in model.state_dict().items() if grads.get(k, True)}
    return {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-05, "params": [0]}]},
            "config": {"model": cfg, "run": {"seed": 42}}, "scaler": None, "epoch": 30}


def run_theirs(model, cfg, frames: np.ndarray, wave: np.ndarray):
    from my_affectgpt.conversation.conversation_video import Chat
    from my_affectgpt.datasets.datasets.base_dataset import BaseDataset
    from my_affectgpt.models.ImageBind import data as ib_data

    sys.modules["torchaudio"].load = lambda path: (torch.from_numpy(wave)[None], 16000)
    raw_audio = ib_data.load_audio(["waveform"], "cpu", clips_per_video=8)[0]  # [8, 1, 32000]
    raw_frame = torch.from_numpy(frames).permute(3, 0, 1, 2).float()  # [3, 8, 224, 224] (C, T, H, W)
    sample = {"frame": raw_frame, "raw_frame": raw_frame, "audio": raw_audio, "raw_audio": raw_audio,
              "face": None, "image": None}
    chat = Chat(model, types.SimpleNamespace(**cfg), device="cpu")
    _, audio_llms = chat.postprocess_audio(sample)
    frame_hiddens, frame_llms = chat.postprocess_frame(sample)
    audio_hiddens, _ = model.encode_audio_merge(raw_audio[None], raw_audio[None])
    _, multi_llms = chat.postprocess_multi(frame_hiddens, audio_hiddens)
    prompt = BaseDataset.get_prompt_for_multimodal(None, "multiframe_audio_frame_text", SUBTITLE, QUESTION)
    captured = {}
    original = model.llama_model.generate

    def generate(**kw):
        with torch.no_grad():
            captured["logits"] = model.llama_model(inputs_embeds=kw["inputs_embeds"],
                                                   attention_mask=kw["attention_mask"]).logits[0, -1]
        return original(**kw)

    model.llama_model.generate = generate
    with torch.no_grad():
        chat.answer_sample(prompt, {"audio": audio_llms, "frame": frame_llms, "face": None, "image": None,
                                    "multi": multi_llms}, do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
        ids = chat.to_token_ids(chat.replace_token_for_multimodal(prompt), 2000)
    # greedy tokens exactly as answer_sample produced them (re-run to capture the ids)
    model.llama_model.generate = original
    tokens = _their_greedy(chat, model, prompt, audio_llms, frame_llms, multi_llms)
    tokens_by_group = {"vision_tokens": frame_llms[0], "audio_tokens": audio_llms[0], "multi_tokens": multi_llms[0]}
    return prompt, ids, captured["logits"], tokens, tokens_by_group


def _their_greedy(chat, model, prompt, audio_llms, frame_llms, multi_llms) -> list[int]:
    captured = {}
    original = model.llama_model.generate

    def generate(**kw):
        captured["ids"] = original(**kw)
        return captured["ids"]

    model.llama_model.generate = generate
    with torch.no_grad():
        chat.answer_sample(prompt, {"audio": audio_llms, "frame": frame_llms, "face": None, "image": None,
                                    "multi": multi_llms}, do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
    model.llama_model.generate = original
    return captured["ids"][0].tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--affectgpt-src", required=True, help="their AffectGPT/ folder (holds my_affectgpt/, config.py)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.numpy import save_file

    save_towers(out)
    model, cfg = build_theirs(Path(args.affectgpt_src).resolve(), out)
    torch.save(their_checkpoint(model, cfg), out / "affectgpt_tiny.pth")
    inputs = small_inputs()
    save_file(inputs, str(out / "inputs.safetensors"))
    prompt, ids, logits, tokens, groups = run_theirs(model, cfg, expand_frames(inputs["frames_small"]), inputs["waveform"])
    save_file({"next_token_logits": logits.float().numpy(), "prompt_ids": ids.numpy(),
               **{k: v.detach().float().numpy() for k, v in groups.items()}},
              str(out / "expected.safetensors"))
    tok = model.llama_tokenizer
    ph = {tok.convert_tokens_to_ids(t): t for t in ("<FrameHere>", "<AudioHere>", "<MultiHere>")}
    (out / "expected.json").write_text(json.dumps({
        "prompt": prompt, "subtitle": SUBTITLE, "question": QUESTION, "max_new_tokens": MAX_NEW_TOKENS,
        "greedy_tokens": tokens, "placeholder_ids": {v: k for k, v in ph.items()},
        "source": "ouyangjutian/AffectGPT@d961cab0, scripts/make_affectgpt_fixture.py"}, indent=1))
    print(f"wrote {out}: prompt {len(ids)} tokens, greedy {tokens}")


if __name__ == "__main__":
    main()
