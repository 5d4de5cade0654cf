#!/usr/bin/env node
// Verifies receipt files with the wasm verifier, in Node.js, and prints one
// JSON report per line: `node cli.mjs RECEIPT... [--program HEX] [--module HEX]`.
// Exit status 0 when every receipt is valid, 1 otherwise.
import { readFile } from "node:fs/promises";
import { verifyReceipt } from "./index.js";

const files = [];
const expected = {};
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--program") expected.program_digest = args[++i];
  else if (args[i] === "--module") expected.module = args[++i];
  else files.push(args[i]);
}
let ok = true;
for (const f of files) {
  const report = await verifyReceipt(await readFile(f), expected);
  ok &&= report.valid;
  console.log(JSON.stringify({ file: f, ...report }));
}
process.exitCode = ok ? 0 : 1;
