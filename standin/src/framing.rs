//! JSON-RPC frames as lightningd reads and writes them: one JSON value
//! after another, each answer ended by a blank line.

/// The end of the first blank line (`\n\n`) at or after `from`.
pub fn blank_line(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| from + i + 2)
}

/// The `params` of one request frame as the client wrote them.
pub fn raw_params(frame: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Req<'a> {
        #[serde(borrow)]
        params: Option<&'a serde_json::value::RawValue>,
    }
    let req: Req = serde_json::from_slice(frame).ok()?;
    req.params.map(|p| p.get().to_string())
}
