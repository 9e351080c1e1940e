"""Compatibility layers that run other projects' published checkpoints on AffectLLM's architecture."""
