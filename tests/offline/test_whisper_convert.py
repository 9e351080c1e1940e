"""Whisper from the registry wheels (CT2), from openai-whisper .pt files and from transformers, as openai-whisper."""

from __future__ import annotations

import time

import pytest
import torch

from affectllm.offline.cachefs import sha256_file
from affectllm.offline.ct2 import read_ct2_model
from affectllm.offline.registry import get_component, read_marker
from affectllm.offline.whisper_convert import ensure_whisper, load_whisper, whisper_fingerprint
from affectllm.offline.whisper_keys import WhisperMappingError, ct2_to_openai

# Published sizes of the two registry models (OFFLINE_MODELS.md).
EXPECTED = {
    "tiny.en": dict(n_audio_state=384, n_audio_layer=4, n_audio_head=6, n_vocab=51864, stored=148),
    "base": dict(n_audio_state=512, n_audio_layer=6, n_audio_head=8, n_vocab=51865, stored=214),
}


def _param_count(sd: dict[str, torch.Tensor]) -> int:
    return sum(v.numel() for v in sd.values())  # the published counts include the encoder's position table


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_registry_ct2_maps_every_variable(name):
    comp = get_component(name)
    parts = [p for p in comp.source_paths() if p.name.startswith("model.bin")]
    info, variables = read_ct2_model(parts)
    assert (info["spec_name"], info["binary_version"]) == ("WhisperSpec", 6)
    assert info["aliases"] == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert len(variables) - len(info["aliases"]) == EXPECTED[name]["stored"]
    dims, sd = ct2_to_openai(variables, info["aliases"], source=name)  # raises if anything is left over
    want = EXPECTED[name]
    assert {k: dims[k] for k in ("n_audio_state", "n_audio_layer", "n_audio_head", "n_vocab")} == {
        k: want[k] for k in ("n_audio_state", "n_audio_layer", "n_audio_head", "n_vocab")}
    assert dims["n_text_layer"] == dims["n_audio_layer"] and dims["n_mels"] == 80
    assert dims["n_audio_ctx"] == 1500 and dims["n_text_ctx"] == 448
    assert round(_param_count(sd) / 1e6, 1) == {"tiny.en": 37.8, "base": 72.6}[name]
    assert all(v.dtype == torch.float16 for v in sd.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_ensure_whisper_caches_once_with_a_recorded_sha(name):
    folder = ensure_whisper(name)
    marker = read_marker(folder)
    assert marker["component"] == f"whisper-{name}"
    assert marker["sha256"]["model.safetensors"] == sha256_file(folder / "model.safetensors")
    assert {p.name for p in folder.iterdir()} >= {"model.safetensors", "dims.json", "alignment_heads.json"}
    t0 = time.perf_counter()
    assert ensure_whisper(name) == folder
    assert time.perf_counter() - t0 < 0.5  # cached: no conversion work
    by_name, by_path = load_whisper(name), load_whisper(folder)
    assert whisper_fingerprint(by_name) == whisper_fingerprint(by_path)
    assert by_name.dims.n_vocab == EXPECTED[name]["n_vocab"]
    assert next(by_name.parameters()).dtype == torch.float32
    heads = by_name.alignment_heads.to_dense()
    assert heads.shape == (by_name.dims.n_text_layer, by_name.dims.n_text_head) and heads.sum() == 8


@pytest.mark.slow
def test_fingerprints_differ_between_models_and_dtypes():
    tiny, base = load_whisper("tiny.en"), load_whisper("base")
    assert whisper_fingerprint(tiny) != whisper_fingerprint(base)
    assert whisper_fingerprint(load_whisper("tiny.en", dtype=torch.float16)) != whisper_fingerprint(tiny)
    assert len(whisper_fingerprint(tiny)) == 16


# ------------------------------------------------------------------- user checkpoints (tiny, random)


def _tiny_openai():
    from whisper.model import ModelDimensions, Whisper

    dims = dict(n_mels=80, n_audio_ctx=16, n_audio_state=32, n_audio_head=2, n_audio_layer=1, n_vocab=64,
                n_text_ctx=8, n_text_state=32, n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    model = Whisper(ModelDimensions(**dims)).eval()
    with torch.no_grad():  # openai-whisper leaves the decoder's positional table as torch.empty (garbage, even NaN)
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return dims, model


class _NotATensor:
    pass


def test_openai_pt_checkpoint_loads_with_weights_only(tmp_path):
    dims, model = _tiny_openai()
    torch.save({"dims": dims, "model_state_dict": model.state_dict()}, tmp_path / "small.pt")
    loaded = load_whisper(tmp_path / "small.pt")
    assert whisper_fingerprint(loaded) == whisper_fingerprint(model)
    mel, tokens = torch.randn(1, 80, 32), torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel, tokens), model(mel, tokens))


def test_half_precision_keeps_layernorms_fp32_and_runs(tmp_path):
    from affectllm.offline.whisper_convert import cast_whisper

    dims, model = _tiny_openai()
    ref_fp = whisper_fingerprint(model)
    half = cast_whisper(model, "cpu", torch.float16)
    assert half.encoder.conv1.weight.dtype == torch.float16 and half.encoder.ln_post.weight.dtype == torch.float32
    assert whisper_fingerprint(half) != ref_fp  # cached per dtype, not stale after the cast
    with torch.no_grad():
        feats = half.encoder(torch.randn(1, 80, 32).half())
        logits = half.decoder(torch.tensor([[1, 2]]), feats)
    assert feats.dtype == torch.float16 and torch.isfinite(feats).all()
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()  # openai-whisper returns fp32 logits


def test_pickled_objects_are_refused_with_a_clear_error(tmp_path):
    dims, model = _tiny_openai()
    torch.save({"dims": dims, "model_state_dict": model.state_dict(), "x": _NotATensor()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil.pt: cannot be read with torch.load\(weights_only=True\)"):
        load_whisper(tmp_path / "evil.pt")
    torch.save({"weights": model.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not an openai-whisper checkpoint"):
        load_whisper(tmp_path / "other.pt")


def test_unknown_name_says_what_is_accepted():
    with pytest.raises(ValueError, match="not a registry Whisper"):
        load_whisper("no-such-org/no-such-whisper")


def test_transformers_whisper_folder_maps_to_the_same_function(tmp_path):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    cfg = WhisperConfig(vocab_size=100, num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
                        max_source_positions=16, max_target_positions=8, pad_token_id=0, bos_token_id=1,
                        eos_token_id=2, decoder_start_token_id=3)
    torch.manual_seed(0)
    hf = WhisperForConditionalGeneration(cfg).eval()
    hf.save_pretrained(tmp_path / "hf-whisper")
    ours = load_whisper(tmp_path / "hf-whisper")
    assert ours.dims.n_audio_ctx == 16 and ours.dims.n_vocab == 100 and ours.dims.n_text_layer == 2
    mel, tokens = torch.randn(1, 80, 32), torch.tensor([[3, 5, 7, 9]])
    with torch.no_grad():
        torch.testing.assert_close(ours.encoder(mel), hf.model.encoder(mel).last_hidden_state, rtol=1e-4, atol=1e-4)
        want = hf(input_features=mel, decoder_input_ids=tokens).logits
        torch.testing.assert_close(ours(mel, tokens), want, rtol=1e-4, atol=1e-4)
    cfg.encoder_ffn_dim = 64  # not expressible in openai-whisper (its MLP is 4 x d_model)
    WhisperForConditionalGeneration(cfg).save_pretrained(tmp_path / "odd")
    with pytest.raises(WhisperMappingError, match="encoder_ffn_dim = 64"):
        load_whisper(tmp_path / "odd")
