"""Old import paths of modules that moved (into sub-packages, or renamed), kept working.

``MOVED`` maps an old dotted name to its new one; a name under an old package (``affectllm.towers.vision``) maps
by prefix. ``install()`` puts a finder first on ``sys.meta_path`` that answers an old name with the module
already imported under the new one, so both names are the same module object (``isinstance`` and
monkeypatching see one thing).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

MOVED = {
    "affectllm.builder": "affectllm.model.builder",
    "affectllm.checkpoint": "affectllm.model.checkpoint",
    "affectllm.compat.affectgpt": "affectllm.model.affectgpt",
    "affectllm.compat.affectgpt_projector": "affectllm.model.projector_affectgpt",
    "affectllm.configuration_affectllm": "affectllm.model.configuration_affectllm",
    "affectllm.defaults": "affectllm.model.defaults",
    "affectllm.evaluation.report": "affectllm.evaluation.html_page",
    "affectllm.faithful": "affectllm.report.faithful",
    "affectllm.fingerprint": "affectllm.utils.fingerprint",
    "affectllm.instruct.grounded": "affectllm.report.grounded",
    "affectllm.language_model": "affectllm.model.language_model",
    "affectllm.media_inputs": "affectllm.model.media_inputs",
    "affectllm.modeling_affectllm": "affectllm.model.modeling_affectllm",
    "affectllm.paths": "affectllm.utils.paths",
    "affectllm.processing_affectllm": "affectllm.model.processing_affectllm",
    "affectllm.projector": "affectllm.model.projector",
    "affectllm.quiet": "affectllm.utils.quiet",
    "affectllm.quote_guard": "affectllm.report.quote_guard",
    "affectllm.testing_inputs": "affectllm.testing.inputs",
    "affectllm.towers": "affectllm.model.towers",
    "affectllm.weights_guard": "affectllm.utils.weights_guard",
}


def new_name(name: str) -> str | None:
    """The module's current dotted name for an old one (None: ``name`` did not move)."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)  # the moved module itself, not a copy

    def exec_module(self, module) -> None:
        pass  # already executed under its new name


class MovedFinder(importlib.abc.MetaPathFinder):
    """Resolves old dotted names to the moved modules."""

    def find_spec(self, fullname, path=None, target=None):
        new = new_name(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedFinder())
