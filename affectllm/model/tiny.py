"""A tiny random AffectLLM of the real architectures: the ``source: tiny`` training recipes and the tests.

``tiny_config(text="qwen2" | "llama" | "gemma3", vision=True, audio=True, whisper=True, projector="qformer")``
returns an AffectLLMConfig whose towers (open_clip ViT, HuBERT, Whisper encoder) and LLM are the real classes
at hidden sizes of 32-64 and 1-2 layers (random weights, nothing downloaded); ``tiny_tokenizer`` is the byte-level
BPE tokenizer it reads, trained offline and deterministically on a few hundred emotion sentences.
``affectllm.testing`` builds models and checkpoints from these for tests.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from affectllm.model.configuration_affectllm import AffectLLMConfig
from affectllm.model.defaults import CUE_HEADER

_CORPUS = [
    "Labels: happy, excited\nValence: 0.60\nArousal: 0.40\nExplanation: She smiles and her voice rises.",
    "Labels: sad\nValence: -0.70\nArousal: -0.30\nExplanation: He looks down and speaks slowly and quietly.",
    "Labels: angry, frustrated\nExplanation: A loud, tense voice and a frown; he says 'this is unfair'.",
    "Labels: neutral, calm\nExplanation: A flat tone and a relaxed face.",
    "Labels: surprised, fearful, worried, disgusted, bored, anxious, nervous, proud, relieved, contempt",
    "Describe the emotions of the person in the clip and explain why. What did the face do? How did the voice sound?",
    f"{CUE_HEADER} Transcript: kids are talking by the door. Face: happy 0.62, neutral 0.20. Voice: high pitch.",
    "The speaker sounds cheerful. The woman appears tense. The man seems relaxed and content.",
    "user assistant system 0 1 2 3 4 5 6 7 8 9 . , : ; ! ? ' \" ( ) [ ] - + = / % the a an and or of to in",
]
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


@lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return tok.to_str()


def tiny_tokenizer():
    """A byte-level BPE tokenizer (any text encodes), trained offline and deterministically."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_tokenizer_json()), pad_token="<pad>",
                                  bos_token="<bos>", eos_token="<eos>", unk_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|system|>"]})
    return tok


def tiny_text_config(text: str, vocab_size: int) -> dict[str, Any]:
    common = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                  pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if text == "qwen2":
        return {"model_type": "qwen2", **common, "tie_word_embeddings": True}
    if text == "llama":
        return {"model_type": "llama", **common, "tie_word_embeddings": False}
    if text == "gemma3":
        return {"model_type": "gemma3_text", **common, "head_dim": 16, "sliding_window": 16,
                "tie_word_embeddings": True}
    raise ValueError(f"text={text!r}: choose qwen2, llama or gemma3")


TINY_OPEN_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}
TINY_HUBERT = {
    "model_type": "hubert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64, "conv_dim": [32, 32, 32, 32], "conv_kernel": [10, 4, 4, 4],
    "conv_stride": [5, 4, 4, 4], "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
    "feat_extract_norm": "layer", "do_stable_layer_norm": True,
}
TINY_WHISPER = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 32, "n_audio_head": 2, "n_audio_layer": 1}


def tiny_config(text: str = "qwen2", vision: bool = True, audio: bool = True, whisper: bool = True,
                projector: str = "qformer", lora: bool = True, vision_type: str = "open_clip") -> AffectLLMConfig:
    """A tiny AffectLLMConfig of the real architectures (random weights, nothing downloaded)."""
    tok = tiny_tokenizer()
    vision_cfg = None
    if vision and vision_type == "open_clip":
        vision_cfg = {"type": "open_clip", "model": "tiny-vit", "arch": TINY_OPEN_CLIP, "tokens": "patch",
                      "num_frames": 4, "image_size": 32}
    elif vision and vision_type == "hf":
        vision_cfg = {"type": "hf", "arch": {"model_type": "clip_vision_model", "hidden_size": 32,
                                              "intermediate_size": 64, "num_hidden_layers": 1,
                                              "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
                      "tokens": "patch", "num_frames": 4, "image_size": 32}
    return AffectLLMConfig(
        vision_config=vision_cfg,
        audio_config={"arch": TINY_HUBERT, "layers": [1, 2], "stride": 2} if audio else None,
        whisper_config={"dims": TINY_WHISPER, "stride": 4} if whisper else None,
        projector_config={"type": projector, "num_queries": {"vision": 4, "audio": 3, "whisper": 2},
                          "hidden_size": 32, "num_layers": 1, "num_heads": 2, "dropout": 0.0},
        text_config=tiny_text_config(text, len(tok)),
        lora_config={"enabled": lora, "r": 4, "alpha": 8, "dropout": 0.0},
    )
