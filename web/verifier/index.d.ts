/** Why a receipt is not valid. */
export type Rejection =
  | "malformed"
  | "proof-rejected"
  | "attestation-rejected"
  | "wrong-program"
  | "wrong-module"
  | "bad-expectation"
  | "unavailable"
  | "trap";

/** The worker's attestation, checked against the receipt (felts as 0x hex). */
export interface Attestation {
  job_id: string;
  worker: string;
  public_key: string;
  evidence: string;
  nonce: string;
}

/** The verdict; the statement's fields are set whenever the receipt decodes. */
export interface Report {
  valid: boolean;
  error_kind: Rejection | null;
  /** Each cause once, outermost first. */
  error: string | null;
  /** SHA-256 of the receipt body (hex). */
  digest?: string | null;
  program_digest?: string | null;
  module?: string | null;
  input?: number[] | null;
  output?: number[] | null;
  security_bits?: number | null;
  proof_bytes?: number | null;
  attestation?: Attestation | null;
  /** Wall time of the check in this runtime, in milliseconds. */
  verify_ms?: number;
}

/** Digests (hex SHA-256) the receipt must match. */
export interface Expected {
  program_digest?: string;
  module?: string;
}

/** Loads the wasm module once; `source` overrides where it comes from. */
export function load(source?: BufferSource | URL | string | Response | Promise<Response>): Promise<unknown>;

/** Verifies a receipt file's bytes. Never throws. */
export function verifyReceipt(bytes: Uint8Array | ArrayBuffer, expected?: Expected): Promise<Report>;
