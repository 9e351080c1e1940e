"""AffectLLM evaluation: the official OV-MER / MER-UniBench / EMER metrics, exactly, with strict variants beside.

Light by design: importing this package (and ``score``) never imports torch or transformers; judges that need
them and the EMER embedding variant import them when used.

    from affectllm.evaluation import score
    results = score("ov-mer", "check-openset.csv", "predict-openset.csv", wheel_dir="emotion_wheel")
    results["M-avg"]
"""

from __future__ import annotations

from typing import Any

__all__ = ["score", "evaluate", "write_outputs", "load_task", "list_tasks", "get_tables", "Normaliser",
           "make_judge", "EvalInputError"]

_LAZY = {
    "score": "affectllm.evaluation.scoring",
    "evaluate": "affectllm.evaluation.scoring",
    "Evaluation": "affectllm.evaluation.scoring",
    "write_outputs": "affectllm.evaluation.outputs",
    "read_results": "affectllm.evaluation.outputs",
    "load_task": "affectllm.evaluation.tasks",
    "list_tasks": "affectllm.evaluation.tasks",
    "get_tables": "affectllm.evaluation.normalise",
    "Normaliser": "affectllm.evaluation.normalise",
    "make_judge": "affectllm.evaluation.judges",
    "EvalInputError": "affectllm.evaluation.io",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'affectllm.evaluation' has no attribute '{name}'")
