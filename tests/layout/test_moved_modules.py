"""Old module paths keep working after the layout move, as the same module objects as the new paths."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from affectllm.utils.moved import MOVED, new_name


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_is_the_moved_module(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])
    assert sys.modules[old] is sys.modules[MOVED[old]]


def test_names_under_a_moved_package_and_from_imports():
    from affectllm.media_inputs import MediaItem
    from affectllm.model.towers.vision import VisionTower
    from affectllm.towers.vision import VisionTower as OldVisionTower

    assert OldVisionTower is VisionTower
    assert importlib.import_module("affectllm.towers.base") is importlib.import_module("affectllm.model.towers.base")
    assert MediaItem is importlib.import_module("affectllm.media.item").MediaItem
    assert new_name("affectllm.towers.vision") == "affectllm.model.towers.vision"
    assert new_name("affectllm.compat.affectgpt_hub") is None  # a prefix is a whole dotted part, not a string start


def test_monkeypatching_the_old_path_reaches_the_new(monkeypatch):
    old = importlib.import_module("affectllm.paths")
    monkeypatch.setattr(old, "cache_dir", lambda *a, **k: "patched")
    assert importlib.import_module("affectllm.utils.paths").cache_dir() == "patched"


def test_old_path_imported_first_in_a_fresh_interpreter():
    # the old name first: the new one must not be loaded a second time beside it
    code = ("import affectllm.modeling_affectllm as a, affectllm.model.modeling_affectllm as b, sys;"
            "assert a is b and a.__name__ == 'affectllm.model.modeling_affectllm';"
            "assert sys.modules['affectllm.modeling_affectllm'] is b;"
            "from affectllm.configuration_affectllm import AffectLLMConfig as C;"
            "from affectllm.model.configuration_affectllm import AffectLLMConfig as D; assert C is D")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_names():
    import affectllm

    assert affectllm.AffectLLMConfig is importlib.import_module("affectllm.model.configuration_affectllm").AffectLLMConfig
    assert affectllm.EmotionReport is importlib.import_module("affectllm.report").EmotionReport
    assert callable(affectllm.load) and callable(affectllm.predict)
