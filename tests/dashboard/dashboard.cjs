// Drives the node's dashboard in headless Chromium (Debian's chromium,
// through playwright-core): enter a key, submit a job, open it, press
// verify (the wasm verifier, in the page), read the plots, take a
// screenshot. Usage: node dashboard.cjs URL KEY SCREENSHOT.
// scripts/setup.sh installs playwright-core under ~/.cache/bitsage/node.
"use strict";
const { playwright, launch } = require("./chromium.cjs");

async function main() {
  const [url, key, shot] = process.argv.slice(2);
  const browser = await launch(playwright());
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
    // The fields `bitsage-host verify` prints, from the wasm verifier.
    const fields = await page.$$eval("#verify-fields dd", (dds) => Object.fromEntries(dds.map((d) => [d.dataset.field, d.textContent])));
    console.log("fields:", JSON.stringify(fields));
    for (const f of ["program", "module", "output", "attested"]) {
      if (!fields[f]) throw new Error("the verify panel lacks " + f);
    }
    if (!fields.attested.includes("no (an unsigned receipt)") && !fields.attested.startsWith("job 0x")) {
      throw new Error("unexpected attestation field: " + fields.attested);
    }
    // The plots show this job: one finished job, one proof in the
    // histogram, one device line with a proof.
    await page.waitForSelector("#plot-jobs[data-total]:not([data-total='0'])", { timeout: 30000 });
    const plots = await page.evaluate(() => ({
      jobs: Number(document.querySelector("#plot-jobs").dataset.total),
      proved_bars: document.querySelectorAll("#plot-jobs rect[data-state='proved']").length,
      proofs: Number(document.querySelector("#plot-prove").dataset.total),
      prove_bars: document.querySelectorAll("#plot-prove rect[data-count]").length,
      devices: [...document.querySelectorAll("#plot-devices polyline")].map((p) => ({ device: p.dataset.device, proofs: Number(p.dataset.proofs) })),
    }));
    console.log("plots:", JSON.stringify(plots));
    if (plots.jobs < 1 || plots.proved_bars < 1 || plots.proofs < 1 || plots.prove_bars < 1) throw new Error("the plots do not show the job");
    if (!plots.devices.some((d) => d.proofs >= 1)) throw new Error("no device line with a proof");
    await page.screenshot({ path: shot, fullPage: true });
    console.log("screenshot", shot);
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
