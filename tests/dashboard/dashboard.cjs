// Drives the node's dashboard in headless Chromium (Debian's chromium,
// through playwright-core): enter a key, submit a job, open it, press
// verify, take a screenshot. Usage: node dashboard.cjs URL KEY SCREENSHOT.
// scripts/setup.sh installs playwright-core under ~/.cache/bitsage/node.
"use strict";
const path = require("path");
const os = require("os");

function playwright() {
  const candidates = [
    process.env.BITSAGE_PLAYWRIGHT,
    path.join(os.homedir(), ".cache/bitsage/node/node_modules/playwright-core"),
    "playwright-core",
  ].filter(Boolean);
  for (const c of candidates) {
    try { return require(c); } catch (_) {}
  }
  throw new Error("playwright-core is not installed; run scripts/setup.sh");
}

async function main() {
  const [url, key, shot] = process.argv.slice(2);
  const { chromium } = playwright();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("pageerror", (e) => { console.error("page error:", e.message); process.exitCode = 1; });
    await page.goto(url + "/");
    await page.fill("#api-key", key);
    await page.click("#save-key");
    // The approved module appears in the selector.
    await page.waitForSelector("#module-select option:nth-child(2)", { state: "attached" });
    const digest = await page.$eval("#module-select option:nth-child(2)", (o) => o.value);
    await page.selectOption("#module-select", digest);
    await page.fill("#input", "[20, 22]");
    await page.click("#submit");
    await page.waitForSelector("#submitted:has-text('submitted')");
    const id = (await page.textContent("#submitted")).replace("submitted ", "").trim();
    console.log("submitted", id);
    // The job row turns proved.
    await page.waitForSelector(`tr.job[data-id="${id}"][data-state="proved"]`, { timeout: 120000 });
    await page.click(`tr.job[data-id="${id}"]`);
    await page.waitForSelector("#verify");
    await page.click("#verify");
    await page.waitForSelector("#verdict.valid, #verdict.invalid", { timeout: 60000 });
    const verdict = await page.textContent("#verdict");
    const cls = await page.getAttribute("#verdict", "class");
    console.log("verdict:", cls, verdict);
    if (cls !== "valid" || !verdict.includes("[42]")) throw new Error("the dashboard did not show a valid receipt");
    await page.screenshot({ path: shot, fullPage: true });
    console.log("screenshot", shot);
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
