"""The segment explorer (``/ui``) against a running assigner with data (``test_ui_support.running_world``): every
page over HTTP, the 404 pages, search, static files, and the pages in a real browser (Debian's chromium driven by
playwright): charts drawn with the expected number of marks, search, live changes, the promote form, no console
errors, no request leaving the server, a phone-width layout. Screenshots go to ``.stableseg/ui-screenshots/``
(or ``$STABLESEG_UI_SCREENSHOTS``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.assigner.ui.render import PLOTLY, STATIC
from tests.services.assigner.ui.test_ui_support import TOKEN, running_world, send_newcomer

pytestmark = [pytest.mark.xdist_group("ui"), pytest.mark.slow]
SHOTS = Path(os.environ.get("STABLESEG_UI_SCREENSHOTS", Path(__file__).resolve().parents[4] / ".stableseg" /
                            "ui-screenshots"))
CHROMIUM_FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LINES = "g.scatterlayer g.trace"  # one per line trace
RENDERED = "[...document.querySelectorAll('figure.chart')].every(f => f.dataset.rendered === 'true')"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_world(tmp_path_factory.mktemp("ui")) as running:
        yield running


def key(state: Any) -> str:
    return state["segment"] if state["segment"] else state["status"]


def expected(world: dict[str, Any]) -> dict[str, Any]:
    """What the pages must show, from the Redis snapshots taken after each version (not from the code under test)."""
    s1, s2 = world["states"][1], world["states"][2]
    flows = Counter((key(s1.loc[shop]), key(s2.loc[shop])) for shop in s2.index)
    sizes = {v: s[s["status"] == "assigned"]["segment"].value_counts().to_dict() for v, s in world["states"].items()}
    continued = next(iter(sorted(set(s1["segment"].dropna()) & set(s2["segment"].dropna()))))
    shop = str(s2[s2["segment"] == continued].index[0])
    return {"flows": flows, "sizes": sizes, "segment": continued, "shop": shop}


def figure(html: str, name: str) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" id="fig-{name}">(.*?)</script>', html, re.S)
    assert found, f"no figure {name!r} in the page"
    return json.loads(found.group(1))


def test_pages_over_http(world: dict[str, Any]) -> None:
    url, want = world["url"], expected(world)
    active = httpx.get(f"{url}/v1/segments").json()["segments"]
    pages = ["/ui", f"/ui/segments/{want['segment']}", f"/ui/retailers/{want['shop']}", "/ui/lineage",
             "/ui/lineage?version=1", "/ui/models", "/ui/changes", "/ui/changes?reason=retrain"]
    html = {}
    for path in pages:
        response = httpx.get(url + path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), path
        assert 'role="search"' in response.text, f"{path}: no search box"
        html[path] = response.text
    for segment in active:
        assert f'href="/ui/segments/{segment["segment_id"]}"' in html["/ui"]
    sizes = figure(html["/ui"], "sizes")["data"]
    drawn = {(x, trace["name"].split()[0]): y for trace in sizes for x, y in zip(trace["x"], trace["y"], strict=True)}
    assert drawn == {(f"v{v}", s): n for v, by in want["sizes"].items() for s, n in by.items()}
    sankey = figure(html["/ui/lineage"], "sankey")["data"][0]
    labels = [label.split()[0] for label in sankey["node"]["label"]]
    link = sankey["link"]
    links = Counter({(labels[a], labels[b]): n for a, b, n in zip(link["source"], link["target"], link["value"],
                                                                  strict=True)})
    assert links == want["flows"]
    assert "new-retailer" not in html["/ui/changes?reason=retrain"].split("<tbody>")[1]
    members_table = html[f"/ui/segments/{want['segment']}"].split('id="members"')[1].split("</table>")[0]
    members = re.findall(r'href="/ui/retailers/([^"]+)"', members_table)
    current = world["states"][2]
    assert members and all(current.loc[m, "segment"] == want["segment"] for m in members)


def test_unknowns_are_404_pages_and_search_redirects(world: dict[str, Any]) -> None:
    url, want = world["url"], expected(world)
    for path in ("/ui/retailers/NOBODY-HERE", "/ui/segments/seg-9999", "/ui/segments/bogus", "/ui/lineage?version=99",
                 "/ui/lineage?version=abc", "/ui/nope", "/ui/static/nope.js", "/ui/search?q=zzz-nothing"):
        response = httpx.get(url + path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "Not found" in response.text or "Nothing found" in response.text, path
        assert "Traceback" not in response.text and 'role="search"' in response.text
    assert "NOBODY-HERE" in httpx.get(f"{url}/ui/retailers/NOBODY-HERE").text
    for query, target in ((want["segment"], f"/ui/segments/{want['segment']}"),
                          (want["shop"], f"/ui/retailers/{want['shop']}"), ("", "/ui")):
        response = httpx.get(f"{url}/ui/search", params={"q": query})
        assert response.status_code == 303 and response.headers["location"] == target
    prefix = httpx.get(f"{url}/ui/search", params={"q": want["shop"][:-1]})
    assert prefix.status_code == 200 and f'href="/ui/retailers/{want["shop"]}"' in prefix.text
    plotly = httpx.get(f"{url}/ui/static/{PLOTLY}")
    assert plotly.content == (STATIC / PLOTLY).read_bytes() and "immutable" in plotly.headers["cache-control"]
    feed = httpx.get(f"{url}/ui/changes.json", params={"reason": "retrain"}).json()
    assert feed["changes"] and {c["reason"] for c in feed["changes"]} == {"retrain"}
    assert all(c["from_segment"] != c["to_segment"] for c in feed["changes"])
    assert httpx.get(f"{url}/ui/changes.json", params={"after": feed["last_id"] + 10**6}).json()["changes"] == []


def marks(page: Any, chart: str, selector: str) -> int:
    return page.locator(f"#chart-{chart} {selector}").count()


def browse(page: Any, url: str, name: str) -> Any:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_function(RENDERED, timeout=30_000)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    return page


def check_desktop(page: Any, world: dict[str, Any], want: dict[str, Any]) -> None:
    """Each page's charts with the number of marks its data implies (bars, lines, Sankey links)."""
    url, sid, shop = world["url"], want["segment"], want["shop"]
    active = httpx.get(f"{url}/v1/segments").json()["segments"]
    history = httpx.get(f"{url}/v1/retailers/{shop}/history").json()["history"]
    bars = sum(len(by) for by in want["sizes"].values())
    touching = [f for f in want["flows"] if sid in f]
    browse(page, f"{url}/ui", "overview")
    assert (marks(page, "sizes", "g.point"), marks(page, "seasonality", LINES)) == (bars, len(active))
    browse(page, f"{url}/ui/segments/{sid}", "segment")
    assert marks(page, "seasonality", LINES) == 2 and marks(page, "sizes", "g.point") == 2
    assert marks(page, "profile", "g.point") == len(world["features"].columns)
    assert marks(page, "lineage", ".sankey-link") == len(touching)
    browse(page, f"{url}/ui/retailers/{shop}", "retailer")
    assert marks(page, "seasonality", LINES) == 2 and marks(page, "timeline", "g.point") == len(history)
    browse(page, f"{url}/ui/lineage", "lineage")
    assert marks(page, "sankey", ".sankey-link") == len(want["flows"])
    browse(page, f"{url}/ui/models", "models")
    assert marks(page, "noise", "g.point") == 5 and marks(page, "clusters", "g.point") == 5  # 3 latent + 2 raw


def check_interactions(page: Any, world: dict[str, Any], want: dict[str, Any]) -> None:
    """The search box finds a retailer; the changes table shows a new change without a reload; promote works."""
    url = world["url"]
    browse(page, f"{url}/ui/lineage", "lineage")
    page.fill("form.search input[name=q]", want["shop"])
    page.press("form.search input[name=q]", "Enter")
    page.wait_for_url(f"**/ui/retailers/{want['shop']}")
    assert want["shop"] in page.text_content("h1")
    browse(page, f"{url}/ui/changes", "changes")
    newcomer = send_newcomer(world, want["shop"])
    page.wait_for_selector(f"#changes tbody tr.fresh a:text-is('{newcomer}')", timeout=40_000)
    browse(page, f"{url}/ui/models", "models")
    page.select_option("#promote select[name=version]", "1")
    page.fill("#promote input[name=token]", TOKEN)
    page.click("#promote button")
    page.wait_for_function("document.getElementById('promote-result').textContent.includes('v1 serves now')",
                           timeout=60_000)
    assert httpx.get(f"{url}/v1/models/current").json()["version"] == 1


def test_pages_in_a_real_browser(world: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is required for the browser test: apt-get install -y chromium"
    SHOTS.mkdir(parents=True, exist_ok=True)
    url, want = world["url"], expected(world)
    errors: list[str] = []
    outside: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            desktop = browser.new_context(viewport={"width": 1280, "height": 900})
            desktop.route("**/*", only_local)
            page = desktop.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            check_desktop(page, world, want)
            check_interactions(page, world, want)
            assert errors == [] and outside == []
            missing = page.goto(f"{url}/ui/retailers/NOBODY-HERE")
            assert missing is not None and missing.status == 404 and page.text_content("h1").startswith("Not found")
            page.screenshot(path=str(SHOTS / "not-found.png"))
            phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                        has_touch=True)
            small = phone.new_page()
            for path in ("/ui", f"/ui/segments/{want['segment']}", f"/ui/retailers/{want['shop']}", "/ui/lineage",
                         "/ui/models", "/ui/changes"):
                browse(small, url + path, "phone-" + re.sub(r"\W+", "-", path.strip("/")))
                width = small.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                assert width[0] <= width[1], f"{path}: the page is wider than the phone ({width})"
        finally:
            browser.close()
