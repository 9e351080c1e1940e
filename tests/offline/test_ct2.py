"""CTranslate2 reader on files we write ourselves, and the CT2 -> openai-whisper map on a random tiny Whisper."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from affectllm.offline.ct2 import CT2FormatError, bfloat16_to_float32, read_ct2_model, write_ct2_model
from affectllm.offline.whisper_keys import WhisperMappingError, ct2_to_openai


def _variables() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "encoder/w": rng.standard_normal((3, 5)).astype(np.float16),
        "encoder/b": rng.standard_normal(5).astype(np.float32),
        "decoder/q": rng.integers(-128, 127, (2, 2, 2), dtype=np.int8),
        "decoder/num_heads": np.array(6, dtype=np.int16),
        "decoder/ids": np.arange(7, dtype=np.int32),
    }


def test_round_trip_keeps_names_shapes_dtypes_values_and_aliases(tmp_path):
    vs = _variables()
    path = write_ct2_model(tmp_path / "model.bin", "TestSpec", vs, spec_revision=3,
                           aliases={"decoder/projection": "encoder/w"})
    info, got = read_ct2_model(tmp_path)  # a folder means its model.bin
    assert info["binary_version"] == 6 and info["spec_name"] == "TestSpec" and info["spec_revision"] == 3
    assert info["aliases"] == {"decoder/projection": "encoder/w"}
    assert set(got) == set(vs) | {"decoder/projection"}
    for name, want in vs.items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape
        np.testing.assert_array_equal(got[name], want)
    assert got["decoder/projection"] is got["encoder/w"]
    assert int(got["decoder/num_heads"]) == 6 and got["decoder/num_heads"].shape == ()
    assert info["source"] == [str(path)]


def test_split_parts_read_as_one_stream(tmp_path):
    whole = write_ct2_model(tmp_path / "model.bin", "TestSpec", _variables()).read_bytes()
    for cut in (1, 37, len(whole) // 2, len(whole) - 1):  # cut inside header, name, data, alias table
        (tmp_path / "p1").write_bytes(whole[:cut])
        (tmp_path / "p2").write_bytes(whole[cut:])
        _, got = read_ct2_model([tmp_path / "p1", tmp_path / "p2"])
        np.testing.assert_array_equal(got["encoder/w"], _variables()["encoder/w"])


def test_truncated_missing_part_and_bad_version_name_the_file(tmp_path):
    whole = write_ct2_model(tmp_path / "model.bin", "TestSpec", _variables()).read_bytes()
    bad = tmp_path / "truncated.bin"
    bad.write_bytes(whole[:-10])
    with pytest.raises(CT2FormatError, match="truncated.bin.*ends early"):
        read_ct2_model(bad)
    old = tmp_path / "v4.bin"
    old.write_bytes(struct.pack("<I", 4) + whole[4:])
    with pytest.raises(CT2FormatError, match="v4.bin.*binary version 4"):
        read_ct2_model(old)
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        read_ct2_model([tmp_path / "model.bin", tmp_path / "missing.bin"])
    extra = tmp_path / "extra.bin"
    extra.write_bytes(whole + b"\0")
    with pytest.raises(CT2FormatError, match="after the alias table"):
        read_ct2_model(extra)


def test_bfloat16_variables_widen_exactly(tmp_path):
    values = np.array([1.0, -2.5, 3.140625], dtype=np.float32)  # exactly representable in bf16
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    name = b"x\0"
    raw = (struct.pack("<I", 6) + struct.pack("<H", 5) + b"Spec\0" + struct.pack("<II", 1, 1)
           + struct.pack("<H", len(name)) + name + struct.pack("<BI", 1, 3) + struct.pack("<BI", 5, 6)
           + bits.tobytes() + struct.pack("<I", 0))
    (tmp_path / "bf16.bin").write_bytes(raw)
    _, got = read_ct2_model(tmp_path / "bf16.bin")
    assert got["x"].dtype == np.float32
    np.testing.assert_array_equal(got["x"], values)
    np.testing.assert_array_equal(bfloat16_to_float32(bits), values)


# ------------------------------------------------------------------ CT2 WhisperSpec <-> openai-whisper


def _openai_to_ct2(sd: dict[str, torch.Tensor], n_enc: int, n_dec: int, heads: int) -> dict[str, np.ndarray]:
    """The inverse of the converter, written independently from CTranslate2's documented layout."""
    f = {k: v.numpy().astype(np.float16) for k, v in sd.items()}
    zeros = lambda n: np.zeros(n, np.float16)  # noqa: E731
    out = {"encoder/num_heads": np.array(heads, np.int16), "decoder/num_heads": np.array(heads, np.int16),
           "decoder/activation": np.array(3, np.int8), "decoder/pre_norm": np.array(1, np.int8),
           "decoder/alibi": np.array(0, np.int8)}
    for i in (1, 2):
        out[f"encoder/conv{i}/weight"], out[f"encoder/conv{i}/bias"] = f[f"encoder.conv{i}.weight"], f[f"encoder.conv{i}.bias"]
    out["encoder/position_encodings/encodings"] = f["encoder.positional_embedding"]
    out["decoder/position_encodings/encodings"] = f["decoder.positional_embedding"]
    out["decoder/embeddings/weight"] = f["decoder.token_embedding.weight"]

    def put(src: str, dst: str, kind: str) -> None:
        if kind == "ln":
            out[f"{dst}/gamma"], out[f"{dst}/beta"] = f[f"{src}.weight"], f[f"{src}.bias"]
        else:
            out[f"{dst}/weight"], out[f"{dst}/bias"] = f[f"{src}.weight"], f[f"{src}.bias"]

    for side, n in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n):
            s, d = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            a = f"{s}.attn"
            k_bias = zeros(f[f"{a}.query.bias"].shape[0])
            out[f"{d}/self_attention/linear_0/weight"] = np.concatenate(
                [f[f"{a}.query.weight"], f[f"{a}.key.weight"], f[f"{a}.value.weight"]])
            out[f"{d}/self_attention/linear_0/bias"] = np.concatenate([f[f"{a}.query.bias"], k_bias, f[f"{a}.value.bias"]])
            put(f"{a}.out", f"{d}/self_attention/linear_1", "lin")
            put(f"{s}.attn_ln", f"{d}/self_attention/layer_norm", "ln")
            if side == "decoder":
                c = f"{s}.cross_attn"
                put(f"{c}.query", f"{d}/attention/linear_0", "lin")
                out[f"{d}/attention/linear_1/weight"] = np.concatenate([f[f"{c}.key.weight"], f[f"{c}.value.weight"]])
                out[f"{d}/attention/linear_1/bias"] = np.concatenate([k_bias, f[f"{c}.value.bias"]])
                put(f"{c}.out", f"{d}/attention/linear_2", "lin")
                put(f"{s}.cross_attn_ln", f"{d}/attention/layer_norm", "ln")
            put(f"{s}.mlp.0", f"{d}/ffn/linear_0", "lin")
            put(f"{s}.mlp.2", f"{d}/ffn/linear_1", "lin")
            put(f"{s}.mlp_ln", f"{d}/ffn/layer_norm", "ln")
    put("encoder.ln_post", "encoder/layer_norm", "ln")
    put("decoder.ln", "decoder/layer_norm", "ln")
    return out


@pytest.fixture(scope="module")
def tiny_whisper():
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = dict(n_mels=80, n_audio_ctx=16, n_audio_state=32, n_audio_head=2, n_audio_layer=2, n_vocab=64,
                n_text_ctx=8, n_text_state=32, n_text_head=2, n_text_layer=2)
    model = Whisper(ModelDimensions(**dims)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    sd = {k: v.to(torch.float16).float() for k, v in model.state_dict().items()}  # fp16-representable
    model.load_state_dict(sd)
    return dims, model, sd


def test_ct2_whisper_maps_every_weight_and_reproduces_the_model(tmp_path, tiny_whisper):
    from affectllm.offline.whisper_convert import _build

    dims, model, sd = tiny_whisper
    ct2 = _openai_to_ct2(sd, 2, 2, 2)
    write_ct2_model(tmp_path / "model.bin", "WhisperSpec", ct2, spec_revision=3,
                    aliases={"decoder/projection/weight": "decoder/embeddings/weight"})
    info, variables = read_ct2_model(tmp_path / "model.bin")
    got_dims, got_sd = ct2_to_openai(variables, info["aliases"], source="tiny")
    assert got_dims == dims
    assert set(got_sd) == set(sd)
    for k in sd:
        torch.testing.assert_close(got_sd[k].float(), sd[k], rtol=0, atol=0, msg=k)
    rebuilt = _build(got_dims, got_sd, None)
    mel, tokens = torch.randn(1, 80, 32), torch.tensor([[1, 5, 9]])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(mel, tokens), model(mel, tokens))


def test_ct2_whisper_mapping_is_strict(tiny_whisper):
    _, _, sd = tiny_whisper
    ct2 = _openai_to_ct2(sd, 2, 2, 2)
    with pytest.raises(WhisperMappingError, match="not mapped.*encoder/extra"):
        ct2_to_openai({**ct2, "encoder/extra": np.zeros(3, np.float16)}, source="x")
    broken = dict(ct2)
    broken["decoder/layer_0/self_attention/linear_0/bias"] = np.ones_like(broken["decoder/layer_0/self_attention/linear_0/bias"])
    with pytest.raises(WhisperMappingError, match="non-zero key bias"):
        ct2_to_openai(broken, source="x")
    with pytest.raises(WhisperMappingError, match="needs 3"):
        ct2_to_openai({**ct2, "decoder/activation": np.array(1, np.int8)}, source="x")
    missing = {k: v for k, v in ct2.items() if k != "decoder/layer_norm/gamma"}
    with pytest.raises(WhisperMappingError, match="decoder/layer_norm/gamma"):
        ct2_to_openai(missing, source="x")
