"""The web page in headless Chromium: upload the RAVDESS clip, ask, watch the answer stream in, and find the
label chips and the evidence panel (transcript/cues, face-expression plot, prosody plot). A screenshot is
saved to results/web/ (ignored by git) and the pytest tmp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from web_helpers import ANSWER, CHROMIUM_FLAGS, CLIP, QUESTION

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is a dev extra: pip install -e '.[dev]'")

RESULTS = Path(__file__).resolve().parents[2] / "results" / "web"


@pytest.mark.fixtures
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_upload_clip_stream_answer_and_evidence(web_url, chromium, shared, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(web_url, wait_until="domcontentloaded")
            box = page.locator("#ask textarea")
            expect(box).to_be_visible(timeout=60_000)
            expect(page.locator("#labels")).to_contain_text("No answer yet.")
            page.locator("#ask input[type=file]").set_input_files(str(shared / CLIP))
            expect(page.locator("#ask .thumbnail-item, #ask video").first).to_be_visible(timeout=60_000)
            box.fill(QUESTION)
            box.press("Enter")
            # streamed: the first words are in the chat before the labels exist
            expect(page.locator("#chat")).to_contain_text("Labels: neutral", timeout=240_000)
            chips = page.locator("#labels .chip")
            expect(chips).to_have_count(2, timeout=120_000)
            assert chips.all_inner_texts() == ["neutral", "calm"]
            expect(page.locator("#labels")).to_contain_text("valence +0.10")
            explanation = ANSWER.split("Explanation: ")[1]
            expect(page.locator("#chat")).to_contain_text(explanation)
            evidence = page.locator("#transcript")
            expect(evidence).to_contain_text("Cues the model read")
            expect(evidence).to_contain_text("Face: neutral")
            for plot in ("#face-plot", "#prosody-plot"):  # matplotlib figures arrive as PNG images
                image = page.locator(f"{plot} img")
                expect(image).to_be_visible(timeout=30_000)
                assert image.evaluate("el => el.naturalWidth") > 300
            shot = tmp_path / "web-answer.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, RESULTS / shot.name)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
