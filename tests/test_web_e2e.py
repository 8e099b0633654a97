"""End to end in a real browser: Debian's headless Chromium, driven by Playwright, against `vidlens serve`'s
app on loopback. Upload a generated clip, wait for its analysis, find it by a word spoken in it, open it.

By default the analysis uses stand-in encoders (the stand-in ASR "hears" the spoken phrase), so the test
takes seconds. ``E2E_REAL_ENCODERS=1`` runs the same flow with the real pretrained encoders
(Whisper must then really recognise the word; allow a few minutes).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

from vidlens.service import ServiceSettings, create_app  # noqa: E402
from vidlens.service.testing import (  # noqa: E402
    StandInClassifier,
    StandInEncoders,
    StandInTagger,
    running_server,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
REAL = os.environ.get("E2E_REAL_ENCODERS") == "1"
PHRASE = "pineapple harbour"
WORD = "pineapple"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="needs Debian's Chromium: apt-get install -y chromium")


def test_upload_wait_search_and_open_in_chromium(tmp_path: Path, clip_factory):
    clip = clip_factory(duration=3.0, size=(160, 120), speech=PHRASE, lang="en", text="E2E")
    bank = None if REAL else StandInEncoders(transcript=PHRASE)
    engines = {} if REAL else {"classifier": StandInClassifier(), "tagger": StandInTagger([WORD])}
    app = create_app(tmp_path / "lib", ServiceSettings(), encoders=bank, engines=engines)
    token = app.state.vidlens.token
    analysis_timeout = 600_000 if REAL else 180_000
    with running_server(app) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(locale="en-US")
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/#/")
            page.wait_for_selector("#stat-videos")
            assert page.inner_text("#stat-videos") == "0"

            # The token goes in once, through the dialog; it stays in this browser's storage.
            page.click("#token-button")
            page.fill("#token-input", token)
            page.click("#token-save")

            page.click("nav a[data-route=upload]")
            page.set_input_files("#upload-file", str(clip))
            page.fill("#upload-title", "Harbour clip")
            page.click("#upload-button")
            page.wait_for_selector("#upload-status[data-state=done]", timeout=analysis_timeout)
            assert page.is_visible("#upload-open")

            page.click("nav a[data-route=search]")
            page.fill("#search-input", WORD)
            page.click("#search-button")
            card = page.wait_for_selector("#search-results .video-card")
            assert "Harbour clip" in card.inner_text()
            assert "asr" in page.inner_text("#search-results")
            card.click()

            page.wait_for_selector("#video-title")
            assert page.inner_text("#video-title") == "Harbour clip"
            assert WORD in page.inner_text("#video-transcript").lower()
            assert page.inner_text("#video-ocr").strip()
            # The player reads the file through HTTP range requests.
            src = page.get_attribute("#player", "src")
            assert src and src.endswith("/media")
            page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=20_000)
            page.wait_for_selector("#video-similar p, #video-similar .grid")

            # The same page in Chinese.
            page.click("#lang-toggle")
            page.wait_for_selector("nav a[data-route=search]:has-text('搜索')")
            assert page.inner_text("#video-title") == "Harbour clip"
            assert not errors, errors
        finally:
            browser.close()
    # The click on the search result was stored as feedback.
    events = app.state.vidlens.feedback.recent()
    assert [e["event"] for e in events if e["event"] == "click"] and events[-1]["query"] == WORD
