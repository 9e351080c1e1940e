"""Thin entry point: ``python eval/score.py score --task ov-mer --gt GT --pred PRED --out OUTDIR`` is the same as
``affectllm eval score ...`` (all logic lives in affectllm.evaluation)."""

from affectllm.cli.eval import app

if __name__ == "__main__":
    app()
