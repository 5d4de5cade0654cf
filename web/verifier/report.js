// Renders a verifyReceipt report the way `bitsage-host verify` prints it:
// the verdict line, then the statement and the attestation. Used by the
// standalone page (web/verify.html) and the node's dashboard.

function words(w) {
  if (!w) return "—";
  const shown = JSON.stringify(w.slice(0, 64)).replaceAll(",", ", ");
  return w.length > 64 ? `${shown} … and ${w.length - 64} more words (${w.length} in all)` : shown;
}

/** Fills `verdict` (text, class valid/invalid) and `fields` (a <dl>). */
export function showReport(report, verdict, fields, name) {
  const ms = report.verify_ms !== undefined ? ` (${report.verify_ms.toFixed(2)} ms)` : "";
  verdict.className = report.valid ? "valid" : "invalid";
  verdict.dataset.kind = report.error_kind || "";
  verdict.textContent = report.valid
    ? `valid: ${name} proves program ${report.program_digest} on its input gives output ${words(report.output)}${ms}`
    : `invalid: ${report.error}${ms}`;
  const rows = [
    ["receipt digest", report.digest],
    ["program", report.program_digest],
    ["module", report.module ? report.module + " (attested, not proven)" : null],
    ["input", report.input && words(report.input)],
    ["output", report.output && words(report.output)],
    ["security", report.security_bits && report.security_bits + " bits"],
    ["proof size", report.proof_bytes && report.proof_bytes + " bytes"],
  ];
  const a = report.attestation;
  if (a) {
    rows.push(["attested", `job ${a.job_id} by worker ${a.worker} (key ${a.public_key}, ${a.evidence})`], ["nonce", a.nonce]);
  } else if (report.valid) {
    rows.push(["attested", "no (an unsigned receipt)"]);
  }
  fields.replaceChildren();
  for (const [k, v] of rows) {
    if (v === null || v === undefined) continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    dd.className = "mono";
    dd.dataset.field = k;
    fields.append(dt, dd);
  }
}
