"""``affectllm web``: a Gradio multimodal chat around one loaded model (``app``) with evidence plots (``plots``)."""

from affectllm.web.app import build_demo, launch

__all__ = ["build_demo", "launch"]
