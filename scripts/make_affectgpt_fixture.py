"""Generate the AffectGPT parity fixture under AffectGPT's own pinned environment (tests/fixtures/affectgpt/).

Their pins (transformers 4.49, peft 0.13.2) plus their video reader (decord) and clip sampler (pytorchvideo),
installed beside this project's torch, and their code from a snapshot of ouyangjutian/AffectGPT:

    pip install --target AGPT_ENV transformers==4.49.0 peft==0.13.2 tokenizers==0.21.0 huggingface_hub==0.27.1 \
        decord==0.6.0 pytorchvideo==0.1.5 --no-deps
    PYTHONPATH=AGPT_ENV:$PWD python scripts/make_affectgpt_fixture.py --affectgpt-src SNAPSHOT/AffectGPT

It builds their ``AffectGPT`` model (``my_affectgpt/models/affectgpt.py``) with their CLIP_VIT_LARGE and
HUBERT_LARGE encoder classes, their tokenizer loader and their ``Chat.answer_sample``, at tiny size with random
weights (tiny CLIP, HuBERT and Qwen2 configs, every bias and norm weight randomised, saved next to the
fixture), saves a checkpoint in their exact ``torch.save`` format, writes a lossless 9.3-s clip with a DC
offset (``affectllm.testing_inputs.write_offset_clip``; 9.3 s is no multiple of their 2-s clips) and runs it
from its path through their ``load_video`` (decord, ``uniform`` sampling, 224x224), ``load_audio`` (pytorchvideo's
ConstantClipsPerVideoSampler) and ``transform_audio`` (whose in-place mean removal HuBERT then sees). It records
the prompt token ids, the next-token logits of their forward pass, their projector tokens and their greedy tokens.

Their functions are read from the snapshot and run as they are (``load_video``, ``load_audio``,
``transform_audio``, ``waveform2melspec``, ``get_clip_timepoints``: taken out of their modules by name, so the
modules' unrelated imports need not resolve). Stand-ins, because they cannot run here or are unused:
``torchaudio`` has no wheel for this torch, so ``torchaudio.load`` is reproduced with PyAV (channels-first
float32, int16 / 32768, as its ffmpeg backend returns; the clip is 16 kHz so no resampling is involved) and
``kaldi.fbank`` returns zeros of its shape (its mel spectrogram feeds ImageBind, not HuBERT); heavy imports this
model never uses (EVA-CLIP, Q-Former, ImageBind models, omegaconf, einops) are stubbed as before.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "affectgpt"
SUBTITLE = "I don't know! I, I, I don't have experience in this area."
CLIP_NAME = "offset_9p3s.mov"
# affectllm.testing_inputs.write_offset_clip: 9.3 s (no multiple of their 2-s clips), DC offset 0.3, 224x224
CLIP_ARGS = dict(seconds=9.3, fps=10, size=224, dc=0.3, drift=0.3, seed=0)
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
                  rope_theta=1000000.0, rms_norm_eps=1e-6, pad_token_id=0, eos_token_id=2, bos_token_id=None,
                  initializer_range=0.1)  # logits of a few units (a 7B's scale), so a mismatch shows


def save_towers(out: Path) -> None:
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        HubertConfig,
        HubertModel,
        Qwen2Config,
        Qwen2ForCausalLM,
        Wav2Vec2FeatureExtractor,
    )

    torch.manual_seed(SEED)
    randomised(CLIPModel(CLIPConfig(**TINY_CLIP))).save_pretrained(out / "clip")
    CLIPImageProcessor(size={"shortest_edge": 224},
                       crop_size={"height": 224, "width": 224}).save_pretrained(out / "clip")
    randomised(HubertModel(HubertConfig(**TINY_HUBERT))).save_pretrained(out / "hubert")
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(out / "hubert")
    llm = randomised(Qwen2ForCausalLM(Qwen2Config(**TINY_QWEN2)))
    llm.half().float()  # their loader reads the LLM in float16: store values that survive it unchanged
    llm.save_pretrained(out / "llm")
    save_qwen2_tokenizer(out / "llm")


def save_qwen2_tokenizer(folder: Path) -> None:
    """The project's tiny byte-level BPE as a Qwen2 tokenizer (vocab.json + merges.txt + tokenizer.json), so
    their ``AutoTokenizer(use_fast=False)`` (slow Qwen2Tokenizer) and this project's fast one read the same
    vocabulary with Qwen2's own pre-tokenisation; no bos, as Qwen2.5's."""
    import tempfile

    from transformers import Qwen2TokenizerFast

    from affectllm.testing import _tokenizer_json

    model = json.loads(_tokenizer_json())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    with tempfile.TemporaryDirectory() as tmp:
        vocab, merge_file = Path(tmp) / "vocab.json", Path(tmp) / "merges.txt"
        vocab.write_text(json.dumps(model["vocab"], ensure_ascii=False))
        merge_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        tok = Qwen2TokenizerFast(vocab_file=str(vocab), merges_file=str(merge_file), unk_token="<unk>",
                                 eos_token="<eos>", pad_token="<pad>", bos_token=None)
        tok.save_pretrained(folder)


def randomised(model: nn.Module) -> nn.Module:
    """Every bias and norm weight (the 1-d tensors) moved off its 0 / 1 init, so none can hide a mismatch."""
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.3)
    return model


def their_functions(path: Path, names: list[str], namespace: dict) -> dict:
    """The named top-level functions of one of their files, executed as written in ``namespace``."""
    import ast

    tree = ast.parse(path.read_text())
    picked = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    missing = set(names) - {n.name for n in picked}
    if missing:
        raise SystemExit(f"{path}: no function {sorted(missing)}; is --affectgpt-src their AffectGPT/ folder?")
    exec(compile(ast.Module(body=picked, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return {n: namespace[n] for n in names}


def torchaudio_standin() -> types.SimpleNamespace:
    """``torchaudio.load`` (ffmpeg backend: [C, S] float32, int16 / 32768) with PyAV; fbank's shape only."""
    import av

    def load(path):
        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            chunks = [f.to_ndarray() for f in c.decode(stream)]  # [C, n] int16 (packed mono: [1, n])
            sr = stream.rate
        pcm = np.concatenate(chunks, axis=1)
        if pcm.dtype != np.int16:
            raise SystemExit(f"{path}: expected 16-bit PCM audio (write_offset_clip makes it)")
        return torch.from_numpy(pcm.astype(np.float32) / 32768.0), sr

    def resample(*a, **k):
        raise SystemExit("the clip must be 16 kHz: torchaudio's resampler is not reproduced here")

    def fbank(waveform, num_mel_bins=128, frame_length=25, frame_shift=10, sample_frequency=16000, **k):
        win, hop = int(sample_frequency * frame_length / 1000), int(sample_frequency * frame_shift / 1000)
        return torch.zeros(1 + (waveform.shape[-1] - win) // hop, num_mel_bins)  # unused by HuBERT

    return types.SimpleNamespace(load=load, functional=types.SimpleNamespace(resample=resample),
                                 compliance=types.SimpleNamespace(kaldi=types.SimpleNamespace(fbank=fbank)))


def their_media_loaders(src: Path) -> dict:
    """Their load_video (processors/video_processor.py) and load_audio / transform_audio (ImageBind/data.py)."""
    import importlib.util
    import logging
    import random

    import decord
    from torchvision import transforms

    spec = importlib.util.find_spec("pytorchvideo")
    if spec is None:
        raise SystemExit("pytorchvideo not importable: pip install --target AGPT_ENV pytorchvideo==0.1.5 --no-deps")
    sampler_file = Path(spec.submodule_search_locations[0]) / "data" / "clip_sampling.py"
    cs_spec = importlib.util.spec_from_file_location("pytorchvideo_clip_sampling", sampler_file)
    clip_sampling = importlib.util.module_from_spec(cs_spec)
    cs_spec.loader.exec_module(clip_sampling)  # pytorchvideo's own sampler, without its package's imports
    audio_ns = {"torch": torch, "logging": logging, "torchaudio": torchaudio_standin(), "transforms": transforms,
                "ConstantClipsPerVideoSampler": clip_sampling.ConstantClipsPerVideoSampler,
                "DEFAULT_AUDIO_FRAME_SHIFT_MS": 10}
    fns = their_functions(src / "my_affectgpt/models/ImageBind/data.py",
                          ["waveform2melspec", "get_clip_timepoints", "load_audio", "transform_audio"], audio_ns)
    video_ns = {"decord": decord, "VideoReader": decord.VideoReader, "np": np, "torch": torch, "rnd": random,
                "MAX_INT": sys.maxsize}
    fns.update(their_functions(src / "my_affectgpt/processors/video_processor.py", ["load_video"], video_ns))
    return fns


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
    _module("pytorchvideo.data.clip_sampling", ConstantClipsPerVideoSampler=None)  # theirs: their_media_loaders
    _module("pytorchvideo.data.encoded_video", EncodedVideo=None)
    _module("torchvision.transforms._transforms_video", NormalizeVideo=None)
    _module("torchaudio", load=None, functional=None, compliance=None)
    sys.path.insert(0, str(src))


def build_theirs(src: Path, out: Path):
    install_stubs(src)
    import config as their_config  # their top-level config.py

    their_config.PATH_TO_LLM["Qwen25"] = str(out / "llm")
    their_config.PATH_TO_VISUAL["CLIP_VIT_LARGE"] = str(out / "clip")
    their_config.PATH_TO_AUDIO["HUBERT_LARGE"] = str(out / "hubert")
    import transformers

    if not transformers.__version__.startswith("4.49"):
        raise SystemExit(f"transformers {transformers.__version__}: run under their pin 4.49.0 (see the docstring)")
    from my_affectgpt.models.affectgpt import AffectGPT  # their class

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
    # snapshots with the later AU branch (au_llama_proj, fed only by OpenFace AU text) save it too; the released
    # checkpoints have none, and a frame + audio + subtitle sample never reaches it
    state = {k: v for k, v in state.items() if not k.startswith(("au_", "AU_"))}
    return {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-05, "params": [0]}]},
            "config": {"model": cfg, "run": {"seed": 42}}, "scaler": None, "epoch": 30}


def run_theirs(model, cfg, clip: Path, loaders: dict):
    from my_affectgpt.conversation.conversation_video import Chat
    from my_affectgpt.datasets.datasets.base_dataset import BaseDataset

    # as their base_dataset reads a sample: frames, then audio clips, then the mel transform (in place)
    raw_frame, _ = loaders["load_video"](video_path=str(clip), n_frms=8, height=224, width=224, sampling="uniform",
                                         return_msg=True)  # [3, 8, 224, 224] float (C, T, H, W)
    raw_audio = loaders["load_audio"]([str(clip)], "cpu", clips_per_video=8)[0]  # [8, 1, 32000]
    audio = loaders["transform_audio"](raw_audio, "cpu")  # mel spectrogram; leaves each raw clip minus its mean
    sample = {"frame": raw_frame, "raw_frame": raw_frame, "audio": audio, "raw_audio": raw_audio,
              "face": None, "image": None}
    chat = Chat(model, types.SimpleNamespace(**cfg), device="cpu")
    _, audio_llms = chat.postprocess_audio(sample)
    frame_hiddens, frame_llms = chat.postprocess_frame(sample)
    audio_hiddens, _ = model.encode_audio_merge(audio[None], raw_audio[None])
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
    ap.add_argument("--source-id", default="ouyangjutian/AffectGPT", help="what the snapshot is (recorded)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.numpy import save_file

    from affectllm.testing_inputs import write_offset_clip

    src = Path(args.affectgpt_src).resolve()
    loaders = their_media_loaders(src)
    save_towers(out)
    model, cfg = build_theirs(src, out)
    torch.save(their_checkpoint(model, cfg), out / "affectgpt_tiny.pth")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # lossless, so the test re-writes the same pixels and samples
        clip = write_offset_clip(Path(tmp) / CLIP_NAME, **CLIP_ARGS)
        prompt, ids, logits, tokens, groups = run_theirs(model, cfg, clip, loaders)
    save_file({"next_token_logits": logits.float().numpy(), "prompt_ids": ids.numpy(),
               **{k: v.detach().float().numpy() for k, v in groups.items()}},
              str(out / "expected.safetensors"))
    tok = model.llama_tokenizer
    ph = {tok.convert_tokens_to_ids(t): t for t in ("<FrameHere>", "<AudioHere>", "<MultiHere>")}
    import transformers

    (out / "expected.json").write_text(json.dumps({
        "prompt": prompt, "subtitle": SUBTITLE, "question": QUESTION, "max_new_tokens": MAX_NEW_TOKENS,
        "clip": {"name": CLIP_NAME, "write_offset_clip": CLIP_ARGS}, "greedy_tokens": tokens,
        "placeholder_ids": {v: k for k, v in ph.items()},
        "environment": {"transformers": transformers.__version__, "peft": __import__("peft").__version__,
                        "decord": __import__("decord").__version__, "pytorchvideo": "0.1.5",
                        "torch": torch.__version__},
        "source": f"{args.source_id}, scripts/make_affectgpt_fixture.py"}, indent=1))
    print(f"wrote {out}: prompt {len(ids)} tokens, greedy {tokens}")


if __name__ == "__main__":
    main()
