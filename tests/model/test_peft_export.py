"""``affectllm export peft``: the LoRA of an AffectLLM checkpoint reloads with peft on the bare LLM and gives the
same logits as the AffectLLM model's own language model; the folder has the projector, the config and a model
card whose front matter names the base model without a machine path. Training writes the card beside its adapter."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from affectllm.model.builder import build_processor, model_from_config
from affectllm.testing import tiny_config, tiny_model_and_processor, tiny_tokenizer


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from affectllm.model.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("peft")
    plain, _ = tiny_model_and_processor(text="llama", lora=False)
    llm_dir = root / "bare-llm"
    plain.language_model.save_pretrained(llm_dir)  # the bare LLM, as a user has it
    config = tiny_config(text="llama", vision=False, audio=False, whisper=False)
    config.text_model, config.text_config = str(llm_dir), None  # the LLM comes from its folder, LoRA on top
    proc = build_processor(config, tiny_tokenizer())
    model = model_from_config(config, proc)
    torch.manual_seed(1)
    with torch.no_grad():  # a LoRA that does something (B starts at zero)
        for name, p in model.language_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    ckpt = save_checkpoint(model, proc, root / "ckpt", trained=True)
    from affectllm.cli import _build

    result = CliRunner().invoke(_build(), ["export", "peft", str(ckpt), str(root / "out")])
    assert result.exit_code == 0, result.output
    return model, llm_dir, root / "out"


def test_the_export_reloads_with_peft_and_gives_the_same_logits(exported):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model, llm_dir, out = exported
    assert {p.name for p in out.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors",
                                                "projector.safetensors", "affectllm_config.json", "README.md"}
    peft_llm = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(llm_dir), out).eval()
    ids = torch.tensor([[1, 5, 9, 13, 2, 7]])
    model.eval()
    with torch.no_grad():
        want = model.language_model(input_ids=ids).logits
        got = peft_llm(input_ids=ids).logits
        bare = AutoModelForCausalLM.from_pretrained(llm_dir).eval()(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, bare, atol=1e-3)  # the LoRA is really applied


def test_the_export_names_its_base_without_a_machine_path(exported):
    from affectllm.model.model_card import read_front_matter

    _, llm_dir, out = exported
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == llm_dir.name and "/" not in cfg["base_model_name_or_path"]
    front = read_front_matter(out / "README.md")
    assert front["base_model"] == llm_dir.name and front["library_name"] == "peft"
    assert str(llm_dir) not in (out / "README.md").read_text()


def test_a_registry_backbone_is_named_by_its_upstream_id():
    from affectllm.model.defaults import default_config
    from affectllm.model.model_card import base_model_id, render_card

    assert base_model_id("registry:smollm2-135m-instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base_model_id("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    card = render_card(default_config(), name="starter", sources={"ravdess": 80, "emodb": 60, "synthetic": 4},
                       summary={"steps": 80, "train_rows": 144, "wall_s": 10.0, "eval": {"label_f1": 0.61}})
    assert "base_model: \"HuggingFaceTB/SmolLM2-135M-Instruct\"" in card and "license: \"other\"" in card
    assert "datasets: [\"emodb\", \"ravdess\"]" in card and "metrics: [\"f1\"]" in card
    assert "CC BY-NC-SA 4.0" in card and "| label_f1 | 0.6100 |" in card


def test_a_checkpoint_without_lora_or_a_wrong_folder_is_refused(tmp_path):
    from affectllm.cli import _build

    result = CliRunner().invoke(_build(), ["export", "peft", str(tmp_path), str(tmp_path / "out")])
    assert result.exit_code == 2 and "not an AffectLLM checkpoint" in result.output
    assert not (tmp_path / "out").exists()
