// Drives the distribution's Chromium through the amlops web page, as a user would, and prints
// what it saw as JSON for tests/integration/test_web_page.py to judge.
//
//   node tools/browser/check_page.cjs '{"link": ..., "base": ..., "runId": ..., "step": ...,
//                                      "expectLog": ..., "screenshot": ...}'
//
// link: the page link `amlops serve` printed (with the token); base: the service URL (opened
// first without a token, which must be refused). Exits non-zero, with the reason on stderr,
// when the page does not show what it should within the time limits.
"use strict";

const { chromium } = require("playwright-core");

const CHROMIUM = process.env.AMLOPS_CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];
const LIMIT_MS = 60000;

async function main() {
  const want = JSON.parse(process.argv[2]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const seen = { consoleErrors: [] };
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    // Without the token: refused (in a page of its own, whose failed load is expected).
    const probe = await context.newPage();
    seen.withoutToken = (await probe.goto(want.base + "/")).status();
    await probe.close();

    const page = await context.newPage();
    page.on("console", (msg) => { if (msg.type() === "error") seen.consoleErrors.push(msg.text()); });
    page.on("pageerror", (err) => seen.consoleErrors.push(String(err)));
    page.on("response", (r) => {
      if (r.status() >= 400) seen.consoleErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    });

    // The printed link: the token becomes a cookie and leaves the address bar.
    const opened = await page.goto(want.link);
    seen.linkStatus = opened.status();
    seen.urlAfterLink = page.url();
    seen.cookies = (await context.cookies()).map((c) => ({
      name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite,
    }));
    await page.waitForSelector("main table", { timeout: LIMIT_MS });
    seen.headings = await page.$$eval("main h2", (hs) => hs.map((h) => h.textContent));
    seen.overviewText = await page.textContent("main");

    // The run: its graph, then the chosen step's logs.
    await page.click(`a[href="#/runs/${encodeURIComponent(want.runId)}"]`);
    await page.waitForSelector("#graph svg g.node.step", { timeout: LIMIT_MS });
    await page.click(`#graph g[data-node="step:${want.step}"]`);
    await page.waitForFunction(
      (text) => (document.querySelector("#log-stdout") || {}).textContent?.includes(text),
      want.expectLog, { timeout: LIMIT_MS },
    );
    seen.nodes = await page.$$eval("#graph g.node", (gs) => gs.map((g) => ({
      id: g.getAttribute("data-node"), classes: g.getAttribute("class"),
      text: Array.from(g.querySelectorAll("text")).map((t) => t.textContent),
    })));
    seen.edges = await page.$$eval("#graph g.edge", (gs) => gs.map((g) => ({
      from: g.getAttribute("data-from"), to: g.getAttribute("data-to"),
      label: g.querySelector("text").textContent,
    })));
    seen.stdout = await page.textContent("#log-stdout");
    seen.stepPanel = await page.textContent("#step");
    seen.hash = new URL(page.url()).hash;
    await page.screenshot({ path: want.screenshot, fullPage: true });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen));
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
