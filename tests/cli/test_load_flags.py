"""Every model-loading command takes ``--quantization`` / ``--dtype`` / ``--device`` / ``--adapter`` and hands them
to ``affectllm.load`` unchanged; ``caption --backend ray`` reserves ``--ray-gpus-per-worker`` /
``--ray-cpus-per-worker`` for its actors. The loader is replaced by a recorder that stops the command."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import affectllm.loading
from affectllm.cli import _build

FLAGS = ["--adapter", "ckpt", "--device", "cpu", "--dtype", "bfloat16", "--quantization", "4bit"]
EXPECTED = {"adapter": "ckpt", "device": "cpu", "dtype": "bfloat16", "quantization": "4bit"}


class Stop(OSError):
    """Raised by the recording loader: the commands report an unloadable model and exit."""


@pytest.fixture
def loads(monkeypatch):
    import affectllm.captioning.run as run

    seen: list[dict] = []

    def load(model=None, adapter=None, device="auto", dtype="auto", quantization=None, **kw):
        seen.append({"model": model, "adapter": adapter, "device": device, "dtype": dtype,
                     "quantization": quantization})
        raise Stop("recorded")

    monkeypatch.setattr(affectllm.loading, "load", load)
    monkeypatch.setattr(run, "load_model", load)
    return seen


@pytest.fixture
def clip(tmp_path):
    import soundfile as sf

    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    return path


@pytest.mark.parametrize("command", [["chat"], ["serve"], ["web"], ["caption", "CLIP"]])
def test_every_model_command_hands_the_load_flags_to_the_loader(command, loads, clip):
    args = [str(clip) if a == "CLIP" else a for a in command]
    result = CliRunner().invoke(_build(), [*args, "--model", "m", *FLAGS], input="")
    assert loads == [{"model": "m", **EXPECTED}], result.output
    assert result.exit_code != 0  # the recorder stopped it


@pytest.mark.parametrize("command", [["chat"], ["serve"], ["web"], ["caption", "CLIP"]])
def test_an_unknown_quantization_is_refused_before_loading(command, loads, clip):
    args = [str(clip) if a == "CLIP" else a for a in command]
    result = CliRunner().invoke(_build(), [*args, "--quantization", "3bit"], input="")
    assert result.exit_code == 2 and "3bit" in result.output and "none, 8bit, 4bit" in result.output
    assert loads == []
    none = CliRunner().invoke(_build(), [*args, "--quantization", "none"], input="")
    assert loads[-1]["quantization"] is None, none.output  # "none" is the loader's None


def test_ray_actors_get_the_gpus_and_cpus_asked_for(monkeypatch, clip):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from affectllm.captioning import ray_backend
    from affectllm.captioning.inputs import CaptionInput
    from affectllm.captioning.run import CaptionOptions

    asked: dict = {}

    class Dataset:
        def map_batches(self, fn, **kw):
            asked.update(kw, fn=fn)
            raise Stop("recorded")

    monkeypatch.setattr(ray_backend, "ray_available", lambda: True)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)  # no cluster is started
    monkeypatch.setattr(ray.data, "from_items", lambda rows: Dataset())
    opts = CaptionOptions(paths=[str(clip)], backend="ray", ray_workers=2, ray_gpus_per_worker=0.5,
                          ray_cpus_per_worker=4, quantization="4bit", dtype="bfloat16")
    with pytest.raises(Stop):
        list(ray_backend.caption_with_ray([CaptionInput("a", str(clip), None)], opts))
    assert asked["num_gpus"] == 0.5 and asked["num_cpus"] == 4 and (asked["compute"].min_size, asked["compute"].max_size) == (2, 2)
    assert asked["fn_constructor_kwargs"]["quantization"] == "4bit"
    assert asked["fn_constructor_kwargs"]["dtype"] == "bfloat16"
