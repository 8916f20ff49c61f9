"""Screenshots of the MLflow UI for the README (docs/img/), taken in headless Chromium.

    mlflow ui --port 5000 &            # from the project root, after `make run`
    python scripts/screenshots.py --url http://127.0.0.1:5000 --out docs/img

Needs `pip install playwright` and a Chromium (Debian: `apt-get install chromium`);
neither is a project dependency: only the README's pictures need them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlflow.tracking import MlflowClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--out", default="docs/img")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--experiment", default="lrsched")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(args.url)
    exp = client.get_experiment_by_name(args.experiment)
    runs_url = f"{args.url}/#/experiments/{exp.experiment_id}?workflowType=machine_learning"
    # the newest train stage's system run (tags.lrsched.kind = system): CPU, memory, GPU over the stage
    system_run = client.search_runs([exp.experiment_id], "tags.`lrsched.kind` = 'system' AND attributes.run_name LIKE 'train@%'",
                                    max_results=1, order_by=["attributes.start_time DESC"])[0]

    from playwright.sync_api import sync_playwright

    def close_side_panel(page) -> None:  # MLflow 3's assistant, if open
        close = page.get_by_role("button", name="Close")
        if close.count():
            close.first.click()
            page.wait_for_timeout(500)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(runs_url)
        page.wait_for_selector("text=Group by", timeout=60_000)
        page.wait_for_timeout(3000)
        close_side_panel(page)
        page.screenshot(path=out / "mlflow_landing.png")

        search = page.get_by_placeholder("metrics.rmse", exact=False).first
        search.fill("tags.`lrsched.stage` LIKE 'train@%'")  # the default study's runs, one per (schedule, seed)
        search.press("Enter")
        page.wait_for_timeout(2000)
        page.get_by_text("Group by", exact=False).first.click()
        page.wait_for_timeout(1000)
        page.get_by_text("lrsched.schedule", exact=True).first.click()
        page.keyboard.press("Escape")
        page.wait_for_timeout(3000)
        page.screenshot(path=out / "mlflow_grouped.png")
        page.locator("label:has(input[value=CHART])").click()  # chart view: one mean line per group, with its range
        page.wait_for_timeout(5000)
        page.screenshot(path=out / "mlflow_grouped_charts.png")

        page.goto(f"{args.url}/#/models/lrsched-lenet")
        page.wait_for_selector("text=lrsched-lenet", timeout=60_000)
        page.wait_for_timeout(3000)
        page.screenshot(path=out / "mlflow_registry.png")

        page.goto(f"{args.url}/#/experiments/{exp.experiment_id}/runs/{system_run.info.run_id}/system-metrics")
        page.wait_for_selector("text=cpu_utilization_percentage", timeout=60_000)
        page.wait_for_timeout(3000)
        close_side_panel(page)
        page.screenshot(path=out / "mlflow_system_metrics.png")
        browser.close()
    for name in ("mlflow_landing", "mlflow_grouped", "mlflow_grouped_charts", "mlflow_registry", "mlflow_system_metrics"):
        print(out / f"{name}.png")


if __name__ == "__main__":
    main()
