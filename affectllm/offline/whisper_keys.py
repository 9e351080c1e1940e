"""Weight-name maps into openai-whisper's ``Whisper`` layout, from CTranslate2 and from HF transformers.

Both functions return ``(dims, state_dict)`` where ``dims`` are the keyword arguments of
``whisper.model.ModelDimensions`` and ``state_dict`` matches ``Whisper(ModelDimensions(**dims)).state_dict()``
key for key. Both are strict: every source weight is consumed exactly once (or is a known configuration
scalar that is checked against what openai-whisper's architecture implies); anything left over raises.

CTranslate2's WhisperSpec (facts): self-attention q, k, v are fused along the output axis in
``self_attention/linear_0`` (the k bias slot is all zeros: Whisper's key projection has no bias) and
``linear_1`` is the output projection; cross-attention (``attention``) keeps q in ``linear_0``, fuses k, v in
``linear_1`` and has its output projection in ``linear_2``; ``ffn/linear_0``/``linear_1`` are the MLP; every
sub-block has a pre-``layer_norm`` (gamma/beta); ``encoder/layer_norm`` and ``decoder/layer_norm`` are the final
norms; both positional tables are stored; ``decoder/projection/weight`` is an alias of the token embedding.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

# Rank-0 configuration values CTranslate2 stores beside the weights, and what openai-whisper requires.
# None means "any value is fine" (alignment settings are not weights).
_CT2_GELU = 3  # ctranslate2::ops::ActivationType::GELU
_CT2_EXPECTED_SCALARS: dict[str, int | None] = {
    "decoder/activation": _CT2_GELU,
    "decoder/alibi": 0,
    "decoder/alibi_use_positive_positions": None,  # meaningless while alibi is off
    "decoder/scale_alibi": None,
    "decoder/alignment_heads": None,
    "decoder/alignment_layer": None,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/start_from_zero_embedding": 0,
    "encoder/activation": _CT2_GELU,
    "encoder/pre_norm": 1,
    "decoder/num_heads": None,  # read into dims
    "encoder/num_heads": None,
}


class WhisperMappingError(ValueError):
    """Source weights do not map one-to-one onto openai-whisper's model."""


def _t(a: np.ndarray) -> torch.Tensor:
    """numpy (possibly read-only) -> owned torch tensor, keeping the dtype."""
    return torch.from_numpy(np.array(a, copy=True))


def _layer_count(names: set[str], prefix: str) -> int:
    n = 0
    while any(k.startswith(f"{prefix}/layer_{n}/") for k in names):
        n += 1
    return n


def ct2_to_openai(variables: Mapping[str, np.ndarray], aliases: Mapping[str, str] | None = None,
                  source: str = "CT2 model") -> tuple[dict, dict[str, torch.Tensor]]:
    """Map a CTranslate2 WhisperSpec's variables to an openai-whisper ``(dims, state_dict)``.

    Tensors keep the stored dtype (fp16 for the registry wheels); the caller casts. Raises
    ``WhisperMappingError`` naming ``source`` if any variable is unused or missing.
    """
    aliases = dict(aliases or {})
    left = {k for k in variables if k not in aliases}  # aliases share storage with their target
    sd: dict[str, torch.Tensor] = {}

    def take(name: str) -> np.ndarray:
        if name not in variables:
            raise WhisperMappingError(f"{source}: variable {name!r} is missing; is this a Whisper CT2 model?")
        left.discard(name)
        return variables[name]

    def scalar(name: str) -> int:
        return int(np.asarray(take(name)).reshape(()))

    for name, want in _CT2_EXPECTED_SCALARS.items():
        if name in variables:
            got = scalar(name)
            if want is not None and got != want:
                raise WhisperMappingError(
                    f"{source}: {name} = {got}, but openai-whisper's architecture needs {want}; "
                    "this CT2 model is not a standard Whisper"
                )

    def ln(src: str, dst: str) -> None:
        sd[f"{dst}.weight"] = _t(take(f"{src}/gamma"))
        sd[f"{dst}.bias"] = _t(take(f"{src}/beta"))

    def linear(src: str, dst: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = _t(take(f"{src}/weight"))
        if bias:
            sd[f"{dst}.bias"] = _t(take(f"{src}/bias"))

    def split_rows(src: str, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        w, b = take(f"{src}/weight"), take(f"{src}/bias")  # [n*D, D], [n*D]
        if w.shape[0] % n:
            raise WhisperMappingError(f"{source}: {src}/weight rows {w.shape[0]} are not {n} fused blocks")
        return np.split(w, n, axis=0), np.split(b, n, axis=0)

    def no_key_bias(src: str, kb: np.ndarray) -> None:
        if np.any(kb != 0):
            raise WhisperMappingError(
                f"{source}: {src} has a non-zero key bias, which openai-whisper's key projection lacks"
            )

    names = set(variables)
    n_enc, n_dec = _layer_count(names, "encoder"), _layer_count(names, "decoder")

    def self_attention(s: str, d: str) -> None:
        """CT2 fuses q, k, v on the output axis (k has no bias); openai-whisper keeps them apart."""
        (wq, wk, wv), (bq, bk, bv) = split_rows(f"{s}/self_attention/linear_0", 3)
        no_key_bias(f"{s}/self_attention/linear_0", bk)
        sd.update({f"{d}.attn.query.weight": _t(wq), f"{d}.attn.query.bias": _t(bq),
                   f"{d}.attn.key.weight": _t(wk),
                   f"{d}.attn.value.weight": _t(wv), f"{d}.attn.value.bias": _t(bv)})
        linear(f"{s}/self_attention/linear_1", f"{d}.attn.out")
        ln(f"{s}/self_attention/layer_norm", f"{d}.attn_ln")

    # encoder: two convolutions, sinusoidal positions, pre-norm blocks, final norm
    for i in (1, 2):
        sd[f"encoder.conv{i}.weight"] = _t(take(f"encoder/conv{i}/weight"))  # [D, C_in, 3]
        sd[f"encoder.conv{i}.bias"] = _t(take(f"encoder/conv{i}/bias"))
    sd["encoder.positional_embedding"] = _t(take("encoder/position_encodings/encodings"))  # [1500, D]
    for i in range(n_enc):
        s, d = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        self_attention(s, d)
        linear(f"{s}/ffn/linear_0", f"{d}.mlp.0")
        linear(f"{s}/ffn/linear_1", f"{d}.mlp.2")
        ln(f"{s}/ffn/layer_norm", f"{d}.mlp_ln")
    ln("encoder/layer_norm", "encoder.ln_post")

    # decoder: token + learned positions, self-attn, cross-attn, MLP, final norm; logits tied to embeddings
    sd["decoder.token_embedding.weight"] = _t(take("decoder/embeddings/weight"))  # [V, D]
    sd["decoder.positional_embedding"] = _t(take("decoder/position_encodings/encodings"))  # [448, D]
    proj = "decoder/projection/weight"
    if proj in variables and proj not in aliases:
        if not np.array_equal(take(proj), variables["decoder/embeddings/weight"]):
            raise WhisperMappingError(f"{source}: output projection differs from the token embedding; "
                                      "openai-whisper ties them")
    for i in range(n_dec):
        s, d = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        self_attention(s, d)
        linear(f"{s}/attention/linear_0", f"{d}.cross_attn.query")
        (wk, wv), (bk, bv) = split_rows(f"{s}/attention/linear_1", 2)
        no_key_bias(f"{s}/attention/linear_1", bk)
        sd.update({f"{d}.cross_attn.key.weight": _t(wk),
                   f"{d}.cross_attn.value.weight": _t(wv), f"{d}.cross_attn.value.bias": _t(bv)})
        linear(f"{s}/attention/linear_2", f"{d}.cross_attn.out")
        ln(f"{s}/attention/layer_norm", f"{d}.cross_attn_ln")
        linear(f"{s}/ffn/linear_0", f"{d}.mlp.0")
        linear(f"{s}/ffn/linear_1", f"{d}.mlp.2")
        ln(f"{s}/ffn/layer_norm", f"{d}.mlp_ln")
    ln("decoder/layer_norm", "decoder.ln")

    if left:
        raise WhisperMappingError(f"{source}: {len(left)} variables were not mapped: {sorted(left)[:10]}")

    conv1 = sd["encoder.conv1.weight"]
    dims = dict(
        n_mels=int(conv1.shape[1]),
        n_audio_ctx=int(sd["encoder.positional_embedding"].shape[0]),
        n_audio_state=int(conv1.shape[0]),
        n_audio_head=scalar("encoder/num_heads") if "encoder/num_heads" in variables else _guess_heads(conv1.shape[0]),
        n_audio_layer=n_enc,
        n_vocab=int(sd["decoder.token_embedding.weight"].shape[0]),
        n_text_ctx=int(sd["decoder.positional_embedding"].shape[0]),
        n_text_state=int(sd["decoder.token_embedding.weight"].shape[1]),
        n_text_head=scalar("decoder/num_heads") if "decoder/num_heads" in variables else _guess_heads(conv1.shape[0]),
        n_text_layer=n_dec,
    )
    return dims, sd


def _guess_heads(d_model: int) -> int:
    """openai-whisper uses 64-dimensional heads in every released size."""
    return max(1, int(d_model) // 64)


def hf_to_openai(state_dict: Mapping[str, torch.Tensor], config: object,
                 source: str = "HF Whisper") -> tuple[dict, dict[str, torch.Tensor]]:
    """Map a transformers ``WhisperForConditionalGeneration`` state_dict + config to openai-whisper's layout."""
    d_model = int(config.d_model)
    for key in ("encoder_ffn_dim", "decoder_ffn_dim"):
        if int(getattr(config, key)) != 4 * d_model:
            raise WhisperMappingError(f"{source}: {key} = {getattr(config, key)}, but openai-whisper's MLP is "
                                      f"4 x d_model = {4 * d_model}; this checkpoint needs the transformers model")
    if getattr(config, "activation_function", "gelu") != "gelu":
        raise WhisperMappingError(f"{source}: activation {config.activation_function!r}; openai-whisper uses gelu")
    left = set(state_dict)
    sd: dict[str, torch.Tensor] = {}

    def take(name: str) -> torch.Tensor:
        if name not in state_dict:
            raise WhisperMappingError(f"{source}: weight {name!r} is missing; is this a Whisper checkpoint?")
        left.discard(name)
        return state_dict[name].detach().clone()

    def copy(src: str, dst: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = take(f"{src}.weight")
        if bias:
            sd[f"{dst}.bias"] = take(f"{src}.bias")

    def attn(src: str, dst: str) -> None:
        copy(f"{src}.q_proj", f"{dst}.query")
        copy(f"{src}.k_proj", f"{dst}.key", bias=False)
        if f"{src}.k_proj.bias" in state_dict:
            kb = take(f"{src}.k_proj.bias")
            if torch.any(kb != 0):
                raise WhisperMappingError(f"{source}: {src}.k_proj has a non-zero bias; openai-whisper has none")
        copy(f"{src}.v_proj", f"{dst}.value")
        copy(f"{src}.out_proj", f"{dst}.out")

    def block(s: str, o: str, cross: bool) -> None:  # one transformer layer; decoder layers also cross-attend
        attn(f"{s}.self_attn", f"{o}.attn")
        copy(f"{s}.self_attn_layer_norm", f"{o}.attn_ln")
        if cross:
            attn(f"{s}.encoder_attn", f"{o}.cross_attn")
            copy(f"{s}.encoder_attn_layer_norm", f"{o}.cross_attn_ln")
        copy(f"{s}.fc1", f"{o}.mlp.0")
        copy(f"{s}.fc2", f"{o}.mlp.2")
        copy(f"{s}.final_layer_norm", f"{o}.mlp_ln")

    e, d = "model.encoder", "model.decoder"
    for i in (1, 2):
        copy(f"{e}.conv{i}", f"encoder.conv{i}")
    sd["encoder.positional_embedding"] = take(f"{e}.embed_positions.weight")
    n_enc, n_dec = int(config.encoder_layers), int(config.decoder_layers)
    for i in range(n_enc):
        block(f"{e}.layers.{i}", f"encoder.blocks.{i}", cross=False)
    copy(f"{e}.layer_norm", "encoder.ln_post")
    sd["decoder.token_embedding.weight"] = take(f"{d}.embed_tokens.weight")
    sd["decoder.positional_embedding"] = take(f"{d}.embed_positions.weight")
    for i in range(n_dec):
        block(f"{d}.layers.{i}", f"decoder.blocks.{i}", cross=True)
    copy(f"{d}.layer_norm", "decoder.ln")
    if "proj_out.weight" in left:
        if not torch.equal(take("proj_out.weight"), sd["decoder.token_embedding.weight"]):
            raise WhisperMappingError(f"{source}: proj_out is not tied to embed_tokens; openai-whisper ties them")
    if left:
        raise WhisperMappingError(f"{source}: {len(left)} weights were not mapped: {sorted(left)[:10]}")
    dims = dict(
        n_mels=int(config.num_mel_bins),
        n_audio_ctx=int(config.max_source_positions),
        n_audio_state=int(config.d_model),
        n_audio_head=int(config.encoder_attention_heads),
        n_audio_layer=n_enc,
        n_vocab=int(config.vocab_size),
        n_text_ctx=int(config.max_target_positions),
        n_text_state=int(config.d_model),
        n_text_head=int(config.decoder_attention_heads),
        n_text_layer=n_dec,
    )
    return dims, sd
