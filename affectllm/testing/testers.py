"""``ModelTester`` / ``ConfigTester`` for AffectLLM, in the style of transformers' test suite: one object builds a
tiny model of a real architecture (``tiny_model_and_processor``) with the inputs of one conversation, and checks
the behaviours every architecture must have. Tests (and extensions that add a tower or a backbone) call them:

    tester = AffectLLMModelTester(text="gemma3", vision=True, audio=False)
    tester.create_and_check_model()
    tester.create_and_check_generate()
    tester.create_and_check_save_load(tmp_path)
    AffectLLMConfigTester(text="gemma3").run_common_tests(tmp_path)

Each ``create_and_check_*`` raises ``AssertionError`` with what differed. Library code never imports this package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from affectllm.testing import tiny_config, tiny_model_and_processor

_RNG = np.random.default_rng(0)
FRAMES = _RNG.integers(0, 255, size=(4, 64, 64, 3), dtype=np.uint8)  # [T, H, W, 3] a tiny video
AUDIO = (_RNG.standard_normal(16000) * 0.1).astype(np.float32)  # [S] 1 s at 16 kHz
ANSWER = "Labels: happy\nExplanation: she smiles."


class AffectLLMModelTester:
    """A tiny AffectLLM of one architecture (``text``: qwen2, llama, gemma3; towers on or off) and its inputs."""

    def __init__(self, text: str = "qwen2", vision: bool = True, audio: bool = True, whisper: bool = True,
                 seed: int = 0, **options: Any) -> None:
        self.options = {"text": text, "vision": vision, "audio": audio, "whisper": whisper, **options}
        self.seed = seed
        self.model, self.processor = tiny_model_and_processor(seed=seed, **self.options)

    def messages(self, answer: str | None = ANSWER) -> list[dict[str, Any]]:
        """One user turn with the media the towers read (a video with its audio, or audio alone) + the answer."""
        has_video = self.options["vision"]
        has_audio = self.options["audio"] or self.options["whisper"]
        if has_video:
            part = {"type": "video", "video": {"frames": FRAMES, "timestamps": np.arange(len(FRAMES)) * 0.5,
                                               "audio": AUDIO if has_audio else None}}
        elif has_audio:
            part = {"type": "audio", "audio": AUDIO}
        else:
            part = None
        msgs = [{"role": "user", "content": [*([part] if part else []), {"type": "text", "text": "How does she feel?"}]}]
        if answer is not None:
            msgs.append({"role": "assistant", "content": answer})
        return msgs

    def prepare_config_and_inputs(self, train: bool = True) -> tuple[Any, dict[str, Any]]:
        """(the model's config, the processor's inputs of ``messages()``: a training row or a prompt)."""
        msgs = self.messages(ANSWER if train else None)
        return self.model.config, dict(self.processor(msgs, train=train) if train else self.processor(msgs))

    def create_and_check_model(self) -> None:
        """Forward: logits ``[1, L, V]``, a finite loss on the answer tokens only, gradients only in projector and
        LoRA."""
        import torch

        _, inputs = self.prepare_config_and_inputs(train=True)
        self.model.train()
        out = self.model(**inputs)
        ids = inputs["input_ids"]
        vocab = self.model.get_output_embeddings().weight.shape[0]
        assert tuple(out.logits.shape) == (ids.shape[0], ids.shape[1], vocab), out.logits.shape
        assert torch.isfinite(out.loss), out.loss
        answer = int((inputs["labels"] != -100).sum())
        assert 0 < answer < ids.shape[1], f"{answer} answer tokens of {ids.shape[1]}"
        self.model.zero_grad()
        out.loss.backward()
        grads = {n for n, p in self.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert grads and all(n.startswith("multi_modal_projector.") or "lora_" in n for n in grads), sorted(grads)[:5]
        self.model.zero_grad()
        self.model.eval()

    def create_and_check_generate(self, max_new_tokens: int = 4) -> None:
        """Greedy ``generate`` on the prompt gives ``max_new_tokens`` new tokens, the same twice."""
        import torch

        _, inputs = self.prepare_config_and_inputs(train=False)
        self.model.eval()
        with torch.no_grad():
            a = self.model.generate(**inputs, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                                    do_sample=False)
            b = self.model.generate(**inputs, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                                    do_sample=False)
        assert a.shape[1] - inputs["input_ids"].shape[1] == max_new_tokens, a.shape
        assert torch.equal(a, b), "greedy generation is not deterministic"

    def create_and_check_save_load(self, folder: str | Path) -> None:
        """``save_checkpoint`` writes JSON + safetensors only; reloading gives the same inputs and identical logits."""
        import torch

        from affectllm.model.checkpoint import load_checkpoint, save_checkpoint

        _, inputs = self.prepare_config_and_inputs(train=False)
        self.model.eval()
        with torch.no_grad():
            before = self.model(**inputs).logits
        folder = Path(folder)
        save_checkpoint(self.model, self.processor, folder)
        assert {p.suffix for p in folder.iterdir()} <= {".json", ".safetensors"}, sorted(folder.iterdir())
        model2, proc2 = load_checkpoint(folder)
        inputs2 = dict(proc2(self.messages(None)))
        assert torch.equal(inputs["input_ids"], inputs2["input_ids"])
        with torch.no_grad():
            after = model2(**inputs2).logits
        assert torch.equal(before, after), float((before - after).abs().max())


class AffectLLMConfigTester:
    """``AffectLLMConfig`` of a tiny architecture: dict / JSON / save-load round trips, fields declared."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def create_and_test_config_to_json_string(self) -> None:
        config = tiny_config(**self.options)
        d = json.loads(config.to_json_string())
        assert d["model_type"] == "affectllm" and d.get("text_config", {}).get("model_type"), d.keys()

    def create_and_test_config_from_and_save_pretrained(self, folder: str | Path) -> None:
        from affectllm.model.configuration_affectllm import AffectLLMConfig

        config = tiny_config(**self.options)
        config.save_pretrained(folder)
        again = AffectLLMConfig.from_pretrained(folder)
        assert again.to_diff_dict() == config.to_diff_dict()
        assert json.loads((Path(folder) / "config.json").read_text())["model_type"] == "affectllm"

    def create_and_test_config_common_properties(self) -> None:
        config = tiny_config(**self.options)
        for name in ("vision_config", "audio_config", "whisper_config", "projector_config", "text_model",
                     "lora_config", "use_cues", "trained"):
            assert hasattr(config, name), f"AffectLLMConfig has no declared field {name!r}"

    def run_common_tests(self, folder: str | Path) -> None:
        self.create_and_test_config_to_json_string()
        self.create_and_test_config_from_and_save_pretrained(folder)
        self.create_and_test_config_common_properties()
