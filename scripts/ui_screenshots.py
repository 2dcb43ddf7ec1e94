"""Screenshots of the MLflow UI on a few short runs, taken by headless Chromium: the experiment's
runs table, its chart view of `best_cos_sim`, and one run's image chart (the best image with its
step slider). `make ui-screenshots` writes them to figures/ui/; docs/ui/ keeps a copy.

    python scripts/ui_screenshots.py [--out figures/ui] [--store DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "latentevo"
RUNS = [["algo=ga"], ["algo=de"], ["algo=cmaes"]]
GENERATIONS = 40
LAST_GENERATION = GENERATIONS - 1
COMMON = [f"generations={GENERATIONS}", "log_every=5", "prompt='a red circle'"]
BEST_IMAGE_KEY = "best"
SHOTS = ("runs_table.png", "charts_best_cos_sim.png", "run_best_image_slider.png")
# what the MLflow 3.17 UI's elements are found by
ASSISTANT_CLOSE = "mlflow.assistant.chat_panel.close"
FULLSCREEN = "fullscreen_button_chartcard"
STEP_BOX = "[role=dialog] input[type=number]"
CHART_SEARCH = "input[placeholder='Search metric charts']"
CHARTS_DRAWN = "document.querySelectorAll('.ant-skeleton, [class*=spinner], [aria-busy=true]').length === 0"
DEVTOOLS = re.compile(r"DevTools listening on ws://([^/]+)/")
#: seconds for the last frame's transitions once the page shows what it should
SETTLE_S = 1.5


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    sys.exit("error: no Chromium found; install it (Debian: apt-get install chromium)")


def record_runs(uri: str) -> tuple[str, str]:
    """A short GA, DE and CMA-ES run in the store; the experiment's id and the GA run's id."""
    os.environ["MLFLOW_TRACKING_URI"] = uri
    from latentevo.pipeline import RunSpec, run_pack
    from latentevo.tracking import open_experiment

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        specs = [RunSpec.of(compose("config", overrides=[*COMMON, *job, f"experiment_name={EXPERIMENT}"]),
                            ",".join(job), job) for job in RUNS]
    outcomes = run_pack(specs, "ui runs")
    failed = [o for o in outcomes if o.status != "FINISHED" and o.status != "SKIPPED"]
    if failed:
        sys.exit(f"error: {failed[0].spec.name} {failed[0].status}: {failed[0].error}")
    _, experiment_id = open_experiment(EXPERIMENT, uri)
    return experiment_id, outcomes[0].run_id


@contextlib.contextmanager
def mlflow_ui(uri: str) -> Iterator[str]:
    """`mlflow ui` on the store, as `make ui` starts it, on a free local port; its address."""
    from latentevo.tracking import TrackingError
    from latentevo.tracking.server import free_port, wait_until_serving

    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen([str(mlflow), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_serving(address, server, timeout_s=120)
        except TrackingError as err:
            sys.exit(f"error: mlflow ui did not start on {address}: {err}")
        yield address
    finally:
        server.terminate()
        server.wait(timeout=30)


class Page:
    """One headless Chromium tab driven over the DevTools protocol: the UI is a single-page app
    whose charts load after the page does, so each shot waits for what it shows."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, out: Path):
        self.ws, self.ids, self.out = ws, itertools.count(1), out

    async def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        async for message in self.ws:
            reply = json.loads(message.data)
            if reply.get("id") == call_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
        raise RuntimeError("Chromium closed the page")

    async def js(self, expression: str):
        return (await self.call("Runtime.evaluate", expression=expression, returnByValue=True))["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not await self.js(expression):
            if time.monotonic() > deadline:
                await self.shot(self.out / "failed.png")
                raise RuntimeError(f"the page never showed {what} (as it was then: {self.out / 'failed.png'})")
            await asyncio.sleep(0.5)

    async def open(self, url: str, width: int, height: int) -> None:
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                        mobile=False)
        await self.call("Page.navigate", url="about:blank")  # a fresh app: a new hash alone keeps the old page
        await self.call("Page.navigate", url=url)
        await self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'", "its page")
        await self.wait_for("document.body.innerText.includes('Model training')", "the app")
        # the assistant's side panel, open on a first visit, would take a quarter of the shot
        await self.js(f"document.querySelector('[data-component-id=\"{ASSISTANT_CLOSE}\"]')?.click()")

    async def type_into(self, selector: str, text: str) -> None:
        found = f"document.querySelector({json.dumps(selector)})"
        await self.wait_for(f"{found} !== null", selector)
        await self.js(f"{found}.focus()")
        await self.call("Input.insertText", text=text)
        await self.wait_for(f"{found}.value === {json.dumps(text)}", f"{text!r} in {selector}")

    async def key(self, key: str) -> None:
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key)

    async def shot(self, path: Path) -> None:
        await asyncio.sleep(SETTLE_S)
        png = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(png["data"]))


@contextlib.asynccontextmanager
async def chromium_page(chromium: str, out: Path) -> AsyncIterator[Page]:
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                    "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            endpoint = next(m[1] for line in browser.stderr if (m := DEVTOOLS.search(line)))
            async with aiohttp.ClientSession() as http:
                tabs = await (await http.get(f"http://{endpoint}/json/list")).json()
                tab = next(t for t in tabs if t["type"] == "page")
                async with http.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    yield Page(ws, out)
        finally:
            browser.terminate()
            browser.wait(timeout=30)


async def take_screenshots(chromium: str, address: str, experiment_id: str, run_id: str, out: Path) -> None:
    runs = f"{address}/#/experiments/{experiment_id}/runs"
    machine_learning = "workflowType=machine_learning"  # the sidebar's "Model training" side
    async with chromium_page(chromium, out) as page:
        await page.open(f"{runs}?{machine_learning}", 1600, 1000)
        await page.wait_for(f"document.body.innerText.includes({json.dumps(RUNS[-1][0])})", "the runs table")
        await page.shot(out / SHOTS[0])

        await page.open(f"{runs}?compareRunsMode=CHART&{machine_learning}", 1600, 1000)
        await page.type_into(CHART_SEARCH, "best_cos_sim")
        await page.wait_for(f"{CHARTS_DRAWN} && document.querySelectorAll('.js-plotly-plot').length === 1",
                            "the best_cos_sim chart")
        await page.shot(out / SHOTS[1])

        await page.open(f"{runs}/{run_id}/model-metrics?{machine_learning}", 1100, 1400)
        await page.type_into(CHART_SEARCH, BEST_IMAGE_KEY)
        await page.wait_for(f"document.querySelectorAll('[data-component-id={FULLSCREEN}]').length === 2 && "
                            "[...document.images].some(i => i.src.includes('get-artifact') && i.complete)",
                            "the best image's chart")
        # the image chart is the second card (after best_cos_sim): full screen, the slider's step
        # box set to the last generation
        await page.js(f"document.querySelectorAll('[data-component-id={FULLSCREEN}]')[1].click()")
        await page.wait_for(f"document.querySelector({json.dumps(STEP_BOX)}) !== null", "the step slider")
        await page.js(f"document.querySelector({json.dumps(STEP_BOX)}).select()")
        await page.type_into(STEP_BOX, str(LAST_GENERATION))
        await page.key("Tab")
        await page.wait_for(f"[...document.querySelectorAll('[role=dialog] img')].some(i => i.complete && "
                            f"i.naturalWidth > 0 && i.src.includes('step%2B{LAST_GENERATION}%2B'))",
                            "the last generation's best image")
        await page.shot(out / SHOTS[2])


def capture(out: Path, store: Path | None = None) -> list[Path]:
    """The screenshots, into `out`, of the UI on runs recorded in `store` (default: a temporary one)."""
    chromium = browser()
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        store = store or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        store.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{store.resolve() / 'mlflow.db'}"
        experiment_id, run_id = record_runs(uri)
        address = stack.enter_context(mlflow_ui(uri))
        asyncio.run(take_screenshots(chromium, address, experiment_id, run_id, out))
    return [out / name for name in SHOTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "figures" / "ui")
    parser.add_argument("--store", type=Path, help="directory of the tracking store (default: a temporary one)")
    args = parser.parse_args()
    capture(args.out, args.store)
    print(f"screenshots of the MLflow UI in {args.out}")


if __name__ == "__main__":
    main()
