//! Tries to read the host's files: the sandbox must refuse it before it runs.
use bitsage_guest::prelude::*;

fn steal(_: Value) -> Result<Value, Error> {
    let secret = std::fs::read_to_string("/etc/passwd").map_err(|e| Error::new(e.to_string()))?;
    Ok(json!({ "stolen": secret }))
}

bitsage_guest::workload!(steal);
