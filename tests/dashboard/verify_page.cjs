// Drives the standalone verifier page (/verify) in headless Chromium: each
// case's receipt file is chosen in the page's file input (with the expected
// program digest typed in when the case has one) and the verdict is read
// back; then, for timing, the same package verifies the bytes RUNS times.
// Usage: node verify_page.cjs URL CASES.json RUNS SCREENSHOT, where
// CASES.json is [{ "name", "file", "expect_program"? }]. Prints one JSON
// line per case: { name, cls, kind, text, program, ms: [RUNS times] }.
"use strict";
const fs = require("fs");
const { playwright, launch } = require("./chromium.cjs");

async function main() {
  const [url, casesFile, runs, shot] = process.argv.slice(2);
  const cases = JSON.parse(fs.readFileSync(casesFile, "utf8"));
  const browser = await launch(playwright());
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on("pageerror", (e) => { console.error("page error:", e.message); process.exitCode = 1; });
    await page.goto(url + "/verify");
    let n = 0;
    for (const c of cases) {
      await page.fill("#expect-program", c.expect_program || "");
      await page.setInputFiles("#file", c.file);
      n += 1;
      await page.waitForSelector(`#verdict[data-checked="${n}"]`, { timeout: 60000 });
      const cls = await page.getAttribute("#verdict", "class");
      const kind = await page.getAttribute("#verdict", "data-kind");
      const text = await page.textContent("#verdict");
      const program = await page.$eval("#fields", (dl) => {
        const dd = dl.querySelector('dd[data-field="program"]');
        return dd ? dd.textContent : null;
      });
      const b64 = fs.readFileSync(c.file).toString("base64");
      const ms = await page.evaluate(async ({ b64, runs }) => {
        const { verifyReceipt } = await import("/verifier/index.js");
        const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
        const out = [];
        for (let i = 0; i < runs; i++) out.push((await verifyReceipt(bytes)).verify_ms);
        return out;
      }, { b64, runs: Number(runs) });
      console.log(JSON.stringify({ name: c.name, cls, kind, text, program, ms }));
      if (c === cases[0]) await page.screenshot({ path: shot, fullPage: true });
    }
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
