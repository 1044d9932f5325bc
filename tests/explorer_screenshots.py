"""Screenshots of the explorer's main pages, for the README: `make screenshots` (writes docs/screenshots/).

Not a test: it makes the same world the browser tests use (the demo on the tiny model), serves the
explorer over it and has Debian's chromium photograph each main page at a desktop width. The demo
world holds no market leases, proposals or agents, so those pages (empty there) are not photographed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from tests.explorer_world import CHROMIUM, make_demo, serve_explorer

WIDTH, HEIGHT = 1280, 900


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        world = make_demo(Path(tmp))
        for served in serve_explorer(world):
            rid = world.summary["answers"][0]["receipt_id"]
            receipt = httpx.get(f"{served.url}/v1/billing/receipts/{rid}", timeout=30).json()
            pages = {"home": "/", "block": f"/blocks/{receipt['height']}", "account": f"/accounts/{receipt['caller']}",
                     "datanet": "/datanets/atlas", "model": "/models/atlas-lora@1", "answer": f"/answers/{rid}",
                     "playground": "/playground", "params": "/params"}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
                for name, path in pages.items():
                    page.goto(served.url + path)
                    page.wait_for_load_state("networkidle")
                    if name == "account":
                        page.locator("#proof-result[data-state=ok], #proof-result[data-state=fail]").wait_for()
                    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                    print(f"wrote {out / (name + '.png')}", flush=True)
                browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
