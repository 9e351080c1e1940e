"""Helpers of the web tests: Chromium, a free port, and a tiny model taught one answer, so the page shows
real label chips."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

CLIP = "media/ravdess/01-01-01-01-01-01-01.mp4"
QUESTION = "How does this actor feel, and why?"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_or_install_chromium() -> str:
    """The Chromium binary: $CHROMIUM, /usr/bin/chromium, or `apt-get install -y chromium` (root only)."""
    for cand in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and Path(cand).is_file():
            return cand
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("Chromium is missing and cannot be installed here (needs root and apt-get); "
                    "install it with `apt-get install -y chromium` or set $CHROMIUM")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"Chromium could not be installed ({' '.join(cmd)} exited {done.returncode}: "
                        f"{done.stderr.strip()[-300:]})")
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("apt-get installed chromium but /usr/bin/chromium is missing")
    return "/usr/bin/chromium"

ANSWER = ("Labels: neutral, calm\nValence: 0.10\nArousal: -0.20\n"
          "Explanation: A relaxed face and a flat, quiet voice.")


def teach(model, processor, perception, prompt: str, answer: str = ANSWER, steps: int = 80, lr: float = 5e-3) -> float:
    """Fit the tiny model's language model and projector to give ``answer`` for this exact input (greedy).

    The towers stay frozen. Returns the final loss.
    """
    import torch

    from affectllm.engine import Renderer

    conv = Renderer.for_model(model, processor).single_turn(perception, prompt)
    conv.append({"role": "assistant", "content": answer})
    batch = processor([conv], train=True)
    inputs = {k: v for k, v in batch.items() if hasattr(v, "shape")}
    params = [p for n, p in model.named_parameters() if "tower" not in n]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        out = model(**inputs)
        loss = out.loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return float(loss.detach())
