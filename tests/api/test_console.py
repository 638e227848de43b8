"""The web console in real headless Chromium (Debian's, driven by Playwright).

Each flow starts from the HTTP API, as a producer would, then works the page
with its own buttons. Screenshots go to artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchestrator import Client, load_workflow
from orchestrator.api.serve import ServerThread
from tests.api import specs
from tests.api.test_api import ended, submit, wait_state

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
WAIT_MS = 60_000

if CHROMIUM is None:  # pragma: no cover - .ci/run installs it
    pytest.skip("no chromium on PATH (Debian package `chromium`)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        found = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield found
        found.close()


@pytest.fixture
def page(browser: Any, api_server: ServerThread) -> Iterator[Any]:
    context = browser.new_context(base_url=api_server.url, viewport={"width": 1400, "height": 1000})
    found = context.new_page()
    errors: list[str] = []
    found.on("pageerror", lambda exc: errors.append(str(exc)))
    found.on("dialog", lambda dialog: dialog.accept())  # every action confirms first
    yield found
    context.close()
    assert not errors, f"the page raised: {errors}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def node(page: Any, step: str) -> Any:
    return page.locator(f'svg.dag g.node[data-step="{step}"]')


def test_run_page_shows_steps_succeed_and_the_skipped_branch(
    page: Any, http: httpx.Client, wf_name: str
) -> None:
    run_id = submit(http, specs.branches(wf_name), input={"value": 1})
    page.goto(f"/console/#/runs/{run_id}")
    page.wait_for_selector('body[data-run-state="SUCCEEDED"]', timeout=WAIT_MS)
    for step in ("emit", "tolerant"):
        assert node(page, step).get_attribute("data-state") == "SUCCEEDED"
    assert node(page, "big").get_attribute("data-state") == "SKIPPED"
    assert node(page, "after_big").get_attribute("data-state") == "SKIPPED"
    assert "SKIPPED" in node(page, "big").text_content(), "the state is written, not only coloured"
    never = page.locator('path.edge[data-edge="emit>big"]')
    assert never.get_attribute("data-kind") == "never"
    assert page.locator('path.edge[data-edge="emit>tolerant"]').get_attribute("data-kind") == (
        "taken"
    )
    assert page.locator("#run-state").inner_text().endswith("SUCCEEDED")
    assert page.locator("svg.gantt rect.bar").count() >= 3, "the timeline has bars"
    # keyboard: a step in the graph opens its details
    node(page, "tolerant").focus()
    page.keyboard.press("Enter")
    assert page.locator('details[data-step="tolerant"]').get_attribute("open") is not None
    shot(page, "run-branches")


def test_approve_a_waiting_step_with_its_button(
    page: Any, http: httpx.Client, wf_name: str
) -> None:
    run_id = submit(http, specs.approval(wf_name), input={"value": 4})
    page.goto(f"/console/#/runs/{run_id}")
    button = page.locator('button[data-action="approve"][data-step="review"]')
    button.wait_for(timeout=WAIT_MS)
    assert node(page, "review").get_attribute("data-state") == "WAITING"
    shot(page, "run-waiting")
    button.click()
    page.wait_for_selector('body[data-run-state="SUCCEEDED"]', timeout=WAIT_MS)
    doc = http.get(f"/api/runs/{run_id}").json()
    assert doc["steps"]["publish"]["output"] == "published 4 approved=True by console"
    assert "completed review" in page.locator("#notice").inner_text()


def test_cancel_a_running_saga_and_see_its_compensations(
    page: Any, http: httpx.Client, wf_name: str
) -> None:
    run_id = submit(http, specs.saga(wf_name))
    page.goto(f"/console/#/runs/{run_id}")
    page.wait_for_selector('svg.dag g.node[data-step="b"][data-state="RUNNING"]', timeout=WAIT_MS)
    page.locator('button[data-action="cancel"]').click()
    page.wait_for_selector('body[data-run-state="CANCELLED"]', timeout=WAIT_MS)
    page.wait_for_selector(
        'svg.dag g.node[data-step="a"][data-state="COMPENSATED"]', timeout=WAIT_MS
    )
    assert "COMPENSATED" in node(page, "a").text_content()
    assert page.locator('button[data-action="cancel"]').count() == 0, "no cancel once ended"
    shot(page, "run-cancelled-saga")


def test_runs_list_workflow_and_scorecard_pages(
    page: Any, http: httpx.Client, wf_name: str
) -> None:
    run_id = submit(http, specs.mapped(wf_name), input={"n": 4})
    wait_state(http, run_id, ended)
    page.goto(f"/console/#/runs?workflow={wf_name}")
    row = page.locator(f'tr[data-run="{run_id}"]')
    row.wait_for(timeout=WAIT_MS)
    assert run_id in row.locator("a.mono").inner_text(), "the id is shown whole"
    assert row.locator("button.copy").count() == 1
    assert page.locator("tr[data-run]").count() == 1, "the workflow filter applies"
    shot(page, "runs")
    row.locator("a.mono").click()
    page.wait_for_selector('body[data-run-state="SUCCEEDED"]', timeout=WAIT_MS)
    assert "4/4 elements" in node(page, "square").text_content()
    page.goto(f"/console/#/workflows/{wf_name}")
    page.wait_for_selector("svg.dag", timeout=WAIT_MS)
    assert "Coverage: 2 of 2 edges taken" in page.locator("main").inner_text()
    shot(page, "workflow")
    page.goto("/console/#/scorecard")
    card = page.locator(f'article.score[data-ref="{wf_name}:1"]')
    card.wait_for(timeout=WAIT_MS)
    assert card.locator("svg.chart").count() == 7
    shot(page, "scorecard")
    page.reload()
    page.keyboard.press("Tab")  # the skip link, then the nav: real links reach the keyboard
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('data-nav')") == "runs"


def test_the_page_of_a_thousand_step_run_renders(
    page: Any, http: httpx.Client, wf_name: str
) -> None:
    """Measures (never asserts) how long the run page of 1,000 steps takes to draw."""
    run_id = submit(http, specs.wide(wf_name, 998))
    doc = wait_state(http, run_id, ended, timeout=240)
    assert len(doc["steps"]) == 1000
    started = time.monotonic()
    page.goto(f"/console/#/runs/{run_id}")
    page.wait_for_function(
        "performance.getEntriesByName('run-rendered').length > 0", timeout=WAIT_MS
    )
    wall = time.monotonic() - started
    mark = page.evaluate("performance.getEntriesByName('run-rendered')[0].startTime")
    fetched = page.evaluate("performance.getEntriesByName('run-fetched')[0].startTime")
    assert page.locator("svg.dag g.node").count() == 1000
    SHOTS.mkdir(parents=True, exist_ok=True)
    figures = {
        "steps": 1000,
        "rendered_ms_after_navigation": round(mark),
        "data_fetched_ms_after_navigation": round(fetched),
        "wall_s": round(wall, 3),
    }
    (SHOTS / "render-1000.json").write_text(json.dumps(figures, indent=2))
    print(f"\nrun page of 1,000 steps: {figures}")


def test_the_demo_workflow_run_page(page: Any, http: httpx.Client, client: Client) -> None:
    """The demo's broken document: a map step, a skipped or approved review, a saga undone."""
    examples = resources.files("orchestrator.examples")
    with resources.as_file(examples / "document-publish.yaml") as child:
        client.register(load_workflow(child))  # its publish step runs this child workflow
    spec = yaml.safe_load((examples / "document-triage.yaml").read_text())
    run_id = submit(http, spec, input={"url": "https://example.com/doc/broken"})
    page.goto(f"/console/#/runs/{run_id}")
    button = page.locator('button[data-action="approve"]')
    ended_or_waiting = 'body[data-run-state="COMPENSATED"], button[data-action="approve"]'
    page.wait_for_selector(ended_or_waiting, timeout=WAIT_MS)
    if button.count():
        button.click()
    page.wait_for_selector('body[data-run-state="COMPENSATED"]', timeout=WAIT_MS)
    assert node(page, "store").get_attribute("data-state") == "COMPENSATED"
    assert node(page, "publish").get_attribute("data-state") == "FAILED"
    embed = node(page, "embed").text_content()
    assert "elements" in embed and "SUCCEEDED" in embed
    page.set_viewport_size({"width": 1400, "height": 900})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "run-triage.png"))
