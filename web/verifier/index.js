// @bitsage/verify: checks a BitSage receipt with the wasm build of the
// project's verifier (host/verify-wasm). `verifyReceipt` never throws: a
// malformed receipt, a rejected proof, and even a trap inside the wasm
// module come back as `{ valid: false, error_kind, error }`.
//
// In a browser the module is fetched next to this file; in Node.js it is
// read from disk. `load(source)` takes the module's bytes, a URL or a
// Response instead, for bundlers that move it.

const GLUE = "./pkg/bitsage_verify_wasm.js";
const WASM = "./pkg/bitsage_verify_wasm_bg.wasm";

let instance = null; // Promise of the glue module, initialised.
let generation = 0; // A fresh glue module after a trap.
let source = null;

async function defaultSource() {
  const url = new URL(WASM, import.meta.url);
  if (url.protocol === "file:") {
    const { readFile } = await import("node:fs/promises");
    return readFile(url);
  }
  return url;
}

/** Loads (once) and returns the initialised wasm glue module. */
export function load(from) {
  if (from !== undefined) source = from;
  if (!instance) {
    const tag = generation ? `?generation=${generation}` : "";
    instance = (async () => {
      const glue = await import(GLUE + tag);
      await glue.default({ module_or_path: source ?? (await defaultSource()) });
      return glue;
    })();
    instance.catch(() => { instance = null; });
  }
  return instance;
}

/**
 * Verifies a receipt file's bytes. `expected` may pin `program_digest` and
 * `module` (hex SHA-256), as `bitsage-host verify --program` does.
 */
export async function verifyReceipt(bytes, expected) {
  let glue;
  try {
    glue = await load();
  } catch (e) {
    return { valid: false, error_kind: "unavailable", error: `the wasm verifier did not load: ${e && e.message || e}` };
  }
  let data;
  try {
    data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  } catch (e) {
    return { valid: false, error_kind: "malformed", error: `not bytes: ${e && e.message || e}` };
  }
  const t0 = performance.now();
  try {
    const report = glue.verifyReceipt(data, expected ?? null);
    report.verify_ms = performance.now() - t0;
    return report;
  } catch (e) {
    // The module's memory is suspect after a trap: the next call gets a
    // fresh instance.
    instance = null;
    generation += 1;
    return { valid: false, error_kind: "trap", error: `the verifier trapped: ${e && e.message || e}`, verify_ms: performance.now() - t0 };
  }
}
