//! Tries to open a socket: the sandbox must refuse it before it runs.
use bitsage_guest::prelude::*;

fn phone_home(_: Value) -> Result<Value, Error> {
    let s = std::net::TcpStream::connect("127.0.0.1:9").map_err(|e| Error::new(e.to_string()))?;
    Ok(json!({ "peer": s.peer_addr().map_err(|e| Error::new(e.to_string()))?.to_string() }))
}

bitsage_guest::workload!(phone_home);
