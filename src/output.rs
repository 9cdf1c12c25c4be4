//! What paystate writes to lightningd, shaped where cln-plugin's own
//! framing is not lightningd's: cln-plugin answers a failed method with
//! `"data": null` in its error object, where lightningd's errors carry
//! `data` only when they have some; and its manifest cannot say
//! `cancheck` (lightningd then passes `check` of paystate's commands on to
//! paystate, which cln-plugin routes to the method `check`, left out of
//! the manifest's methods: a plugin method named as a built-in is refused).
//! Frames pass through untouched but for those.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// The tail of a method error as cln-plugin frames it (compact JSON, the
/// error object last: `{"jsonrpc":..,"id":..,"error":{"code":..,"message":..,"data":null}}`).
const NULL_DATA: &[u8] = b",\"data\":null}}\n\n";

pub struct Shaped<W> {
    inner: W,
    /// The manifest went out (the first frame with methods is it).
    manifested: bool,
    /// Bytes of a frame not yet complete.
    partial: Vec<u8>,
    /// Shaped bytes not yet written to `inner`.
    out: Vec<u8>,
}

impl<W> Shaped<W> {
    pub fn new(inner: W) -> Self {
        Shaped {
            inner,
            manifested: false,
            partial: Vec::new(),
            out: Vec::new(),
        }
    }
}

/// A frame (ending with its blank line) as lightningd should see it.
fn shape(frame: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !frame.ends_with(NULL_DATA) || !frame.starts_with(b"{\"jsonrpc\":\"2.0\",\"id\":") {
        return frame.into();
    }
    // Only a response whose error object is its last member: parse to be
    // sure the `data` is the error's and not something inside a result.
    let body = &frame[..frame.len() - 2];
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut m))
            if m.len() == 3
                && m.get("error").and_then(|e| e.get("data")) == Some(&serde_json::Value::Null) =>
        {
            if let Some(serde_json::Value::Object(e)) = m.get_mut("error") {
                e.shift_remove("data");
            }
            let mut v = serde_json::to_vec(&m).expect("a value serializes");
            v.extend_from_slice(b"\n\n");
            v.into()
        }
        _ => frame.into(),
    }
}

/// The manifest, if `frame` is it, with `cancheck` and without the
/// `check` method.
fn manifest(frame: &[u8]) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(&frame[..frame.len() - 2]).ok()?;
    let result = v.get_mut("result")?.as_object_mut()?;
    let methods = result.get_mut("rpcmethods")?.as_array_mut()?;
    methods.retain(|m| m["name"] != crate::commands::check::METHOD);
    result.insert("cancheck".into(), serde_json::Value::Bool(true));
    let mut out = serde_json::to_vec(&v).expect("a value serializes");
    out.extend_from_slice(b"\n\n");
    Some(out)
}

impl<W: AsyncWrite + Unpin> Shaped<W> {
    fn take(&mut self, buf: &[u8]) {
        self.partial.extend_from_slice(buf);
        let mut start = 0;
        let mut i = 0;
        while i + 1 < self.partial.len() {
            if self.partial[i] == b'\n' && self.partial[i + 1] == b'\n' {
                let end = i + 2;
                let frame = &self.partial[start..end];
                match (!self.manifested).then(|| manifest(frame)).flatten() {
                    Some(m) => {
                        self.manifested = true;
                        self.out.extend_from_slice(&m);
                    }
                    None => self.out.extend_from_slice(&shape(frame)),
                }
                start = end;
                i = end;
            } else {
                i += 1;
            }
        }
        self.partial.drain(..start);
    }

    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.out.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Shaped<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Earlier bytes first; then take these, and pass on what can go now.
        if let Poll::Ready(Err(e)) = this.drain(cx) {
            return Poll::Ready(Err(e));
        }
        if !this.out.is_empty() {
            return Poll::Pending;
        }
        this.take(buf);
        match this.drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn through(chunks: &[&[u8]]) -> Vec<u8> {
        let mut w = Shaped::new(Vec::new());
        for c in chunks {
            w.write_all(c).await.unwrap();
        }
        w.flush().await.unwrap();
        w.inner
    }

    #[tokio::test]
    async fn a_method_errors_null_data_goes_and_all_else_stays() {
        let err = b"{\"jsonrpc\":\"2.0\",\"id\":\"cli:x#1\",\"error\":{\"code\":208,\"message\":\"m\",\"data\":null}}\n\n";
        let with_data = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":204,\"message\":\"m\",\"data\":{\"a\":1}}}\n\n";
        let result = b"{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"x\":{\"code\":1,\"message\":\"m\",\"data\":null}}}\n\n";
        let log = b"{\"jsonrpc\":\"2.0\",\"method\":\"log\",\"params\":{\"level\":\"info\",\"message\":\"\\\"data\\\":null}}\"}}\n\n";
        // Split across writes, several frames in one write.
        let (a, b) = err.split_at(30);
        let out = through(&[a, b, with_data, &[&result[..], &log[..]].concat()]).await;
        let expected = [
            &b"{\"jsonrpc\":\"2.0\",\"id\":\"cli:x#1\",\"error\":{\"code\":208,\"message\":\"m\"}}\n\n"[..],
            with_data,
            result,
            log,
        ]
        .concat();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[tokio::test]
    async fn the_manifest_says_cancheck_and_lists_no_check_method() {
        let m = b"{\"jsonrpc\":\"2.0\",\"id\":\"cln:getmanifest#1\",\"result\":{\"options\":[],\"rpcmethods\":[{\"name\":\"paystate-status\"},{\"name\":\"check\"}],\"subscriptions\":[],\"dynamic\":true}}\n\n";
        let later = b"{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"rpcmethods\":[{\"name\":\"check\"}]}}\n\n";
        let out = through(&[m, later]).await;
        let text = String::from_utf8(out).unwrap();
        let (first, rest) = text.split_once("\n\n").unwrap();
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["result"]["cancheck"], true);
        assert_eq!(
            v["result"]["rpcmethods"],
            serde_json::json!([{"name": "paystate-status"}])
        );
        // Only the manifest is shaped so.
        assert_eq!(rest.as_bytes(), &later[..]);
    }
}
