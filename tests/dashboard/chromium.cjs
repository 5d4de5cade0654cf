// Headless Chromium for the dashboard scripts: Debian's chromium, driven
// through playwright-core, which scripts/setup.sh installs under
// ~/.cache/bitsage/node.
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

function launch(pw) {
  return pw.chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

module.exports = { playwright, launch };
