"""GradientGeometry in a real JupyterLab, driven through Chromium by Playwright.

Starts JupyterLab on a free localhost port (no token, no password) over a temporary copy of
``geometry.ipynb``, runs all cells, waits until the kernel is idle (polling ``/api/kernels``),
changes the combiner dropdown and a slider, and checks that the direction the page shows is
what ``get_combiner`` computes for the same gradients. Skips only where no Chromium is found
(``$CHROMIUM`` or ``chromium`` on ``PATH``); Playwright's own browser download is not used.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl_tutor.combiners import ColumnGroups, get_combiner
from mtl_tutor.viz.export import find_chromium
from mtl_tutor.viz.geometry_figure import gradients_from_angles

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
START_ANGLES, START_LENGTHS = [0.0, 135.0, -110.0], [1.0, 1.4, 0.8]  # GradientGeometry defaults
READOUT = ".mtl-geometry-readout .mtl-combined-direction"

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="no Chromium: set CHROMIUM or install Debian's chromium"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def get_json(url: str):
    with LOCAL.open(url, timeout=5) as response:
        return json.load(response)


def wait_for(condition, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def kernels_idle(base: str) -> bool:
    kernels = get_json(f"{base}/api/kernels")
    return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


@pytest.fixture
def jupyter_lab(tmp_path):
    """A JupyterLab server over a temp root holding a copy of the test notebook; yields its URL."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(HERE / "geometry.ipynb", root / "geometry.ipynb")
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         "--LabApp.news_url=", "--ServerApp.port_retries=0", "--allow-root"],
        env=env, stdout=(tmp_path / "server.log").open("w"), stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        def answering():
            if server.poll() is not None:
                log = (tmp_path / "server.log").read_text()[-3000:]
                raise RuntimeError(f"JupyterLab exited with {server.returncode}:\n{log}")
            return get_json(f"{base}/api/status")

        wait_for(answering, 60, "the Jupyter server to answer")
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def shown(page, attribute: str) -> np.ndarray:
    """``data-direction`` or ``data-gradients`` of the readout, as the page shows it now."""
    return np.array(json.loads(page.get_attribute(READOUT, attribute)))


def expected_direction(name: str, angles: list[float]) -> np.ndarray:
    G = torch.as_tensor(gradients_from_angles(angles, START_LENGTHS))
    combine = get_combiner(name, seed=0)
    combine.on_event(ColumnGroups((("all", slice(0, 2)),)))
    return combine(G, torch.ones(3, dtype=G.dtype)).detach().numpy()


def wait_for_redraw(page, base: str, name: str, angles: list[float]) -> np.ndarray:
    """Wait until the page shows ``name``'s direction for ``angles`` drawn, with the kernel
    idle; return the direction shown."""
    gradients = gradients_from_angles(angles, START_LENGTHS)
    wait_for(
        lambda: page.locator(READOUT).evaluate("e => e.parentElement.textContent")
        .startswith(f"d ({name})") and np.allclose(shown(page, "data-gradients"), gradients),
        30, f"the page to draw {name} for angles {angles}",
    )
    wait_for(lambda: kernels_idle(base), 30, "the kernel to be idle")
    return shown(page, "data-direction")


def test_dropdown_and_slider_redraw_what_get_combiner_computes(jupyter_lab, tmp_path):
    from playwright.sync_api import sync_playwright

    base = jupyter_lab
    combiner = "pcgrad"  # moves with every slider here (MGDA gives 0 once the hull holds 0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{base}/lab/tree/geometry.ipynb")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            wait_for(lambda: kernels_idle(base), 60, "the kernel to start")
            page.click("li.lm-MenuBar-item:has-text('Run')")
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            page.wait_for_selector(READOUT, timeout=90_000)
            wait_for(lambda: kernels_idle(base), 60, "the cells to finish")
            start = wait_for_redraw(page, base, "sum", START_ANGLES)
            np.testing.assert_allclose(start, expected_direction("sum", START_ANGLES), atol=1e-6)

            page.select_option(".mtl-combiner-dropdown select", combiner)
            after_dropdown = wait_for_redraw(page, base, combiner, START_ANGLES)
            np.testing.assert_allclose(
                after_dropdown, expected_direction(combiner, START_ANGLES), atol=1e-6
            )

            readout = page.locator(".mtl-angle-1 .widget-readout")  # quora's angle, editable
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("100")
            page.keyboard.press("Enter")
            moved = [0.0, 100.0, -110.0]
            after_slider = wait_for_redraw(page, base, combiner, moved)
            assert readout.inner_text().strip() == "100.00"
            np.testing.assert_allclose(
                after_slider, expected_direction(combiner, moved), atol=1e-6
            )
            assert not np.allclose(after_slider, start)  # the page did draw something new
        finally:
            output = HERE / "output"
            output.mkdir(exist_ok=True)
            page.screenshot(path=str(tmp_path / "geometry.png"), full_page=True)
            shutil.copy(tmp_path / "geometry.png", output / "geometry.png")
            browser.close()
