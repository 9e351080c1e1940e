"""Screenshot of the web UI answering about the shipped example clip with the embedded default (for the README).

    python scripts/web_screenshot.py [--clip affectllm/assets/examples/astronaut.mp4] [--out docs/web.png]

Starts ``affectllm web`` on a free local port (the real default model), opens it in headless Chromium
(``$CHROMIUM`` or /usr/bin/chromium; Playwright is a dev extra), uploads the clip, asks a free-form question,
waits for the label chips and the evidence plots, and saves a full-page PNG. Needs no network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "How does she feel, and what gives it away?"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 600.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"affectllm web exited with {proc.returncode} before serving {url}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(2)
    raise SystemExit(f"{url}: not up after {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", type=Path, default=REPO / "affectllm" / "assets" / "examples" / "astronaut.mp4")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "web.png")
    ap.add_argument("--question", default=QUESTION)
    args = ap.parse_args(argv)
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("error: no Chromium; apt-get install -y chromium, or set $CHROMIUM", file=sys.stderr)
        return 1
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "affectllm", "web", "--port", str(port)], cwd=REPO)
    try:
        wait_up(url, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            box = page.locator("#ask textarea")
            expect(box).to_be_visible(timeout=60_000)
            page.locator("#ask input[type=file]").set_input_files(str(args.clip))
            expect(page.locator("#ask .thumbnail-item, #ask video").first).to_be_visible(timeout=60_000)
            box.fill(args.question)
            box.press("Enter")
            expect(page.locator("#labels .chip").first).to_be_visible(timeout=300_000)
            for plot in ("#face-plot", "#prosody-plot"):
                expect(page.locator(f"{plot} img")).to_be_visible(timeout=60_000)
            time.sleep(2)  # the last streamed tokens
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            print("labels:", page.locator("#labels .chip").all_inner_texts())
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
