"""`tempo-kit demo` in a real browser: headless Chromium uploads a video and asks two questions.

The app runs as the user starts it (a ``tempo-kit demo`` process on a free port); Selenium drives
Debian's ``chromium`` through its matching ``chromedriver``. Without them (or without Gradio) the
test skips and says what to install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tempo_kit.browser import CHROMIUM_FLAGS, find_chromium

FIRST = "Where is the red circle?"
SECOND = "What happens at the end of the video?"


def browser_paths() -> tuple[str, str]:
    chromium = find_chromium()
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="needs selenium (pip install 'tempo-kit[dev]')")
    pytest.importorskip("gradio", reason="needs Gradio (pip install 'tempo-kit[demo]')")
    return chromium, driver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"tempo-kit demo exited with {server.returncode}: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"tempo-kit demo did not serve {url} within {seconds} s")


def busy(driver) -> bool:
    """Gradio shows "processing | …" on its outputs while an event runs."""
    return "processing |" in driver.execute_script("return document.body.innerText")


def bot_messages(driver) -> int:
    return len(driver.find_elements("css selector", "#conversation .bot"))


def stats_of(driver) -> dict[str, str]:
    """The stats table under the conversation: {row name: value}, read in one script (no stale nodes)."""
    cells = driver.execute_script(
        "return [...document.querySelectorAll('#stats tr')]"
        ".map(row => [...row.querySelectorAll('td')].map(cell => cell.innerText.trim()))"
    )
    return {c[0]: c[1] for c in cells if len(c) == 2}


@pytest.mark.slow
def test_demo_answers_two_questions_in_chromium(tiny_tempo_dir, tiny_needle_benchmark, tmp_path):
    chromium, chromedriver = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    video = tiny_needle_benchmark.parent / row["video"]
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "tempo_kit.cli", "demo", "--model", str(tiny_tempo_dir), "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--budget", "40", "--max-new-tokens", "3"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, "--window-size=1400,1100", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = None
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", server)
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 240)
        wait.until(lambda d: d.find_elements("css selector", "input[type=file]"))
        driver.find_element("css selector", "input[type=file]").send_keys(str(video))
        wait.until(lambda d: d.find_elements("css selector", "video"))  # the upload is shown

        answers = []
        for asked, question in enumerate((FIRST, SECOND), start=1):
            driver.find_element("css selector", "#question textarea").send_keys(question)
            driver.find_element("css selector", "#ask").click()
            # the conversation (with the question), stats and timeline come back in one response
            wait.until(lambda d, q=question: q in d.find_element("css selector", "#conversation").text)
            wait.until(lambda d, n=asked: not busy(d) and bot_messages(d) == n and "SVLM tokens" in stats_of(d))
            answers.append(stats_of(driver))
        driver.save_screenshot(str(tmp_path / "demo.png"))

        first, second = answers
        assert first["reused"] == "nothing (first question)" and second["reused"] == "decode, prefix"
        assert int(second["SVLM tokens"]) < int(first["SVLM tokens"])
        assert re.fullmatch(r"3 segments, \d+\.\d\d MiB", second["prefix cache"])
        assert re.fullmatch(r"\d+ of 40 \(\d+\.\d\d per frame\)", second["visual tokens"])
        assert FIRST in driver.find_element("css selector", "#conversation").text
        timeline = driver.find_element("css selector", "#timeline img")
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", timeline) > 0
        assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)
