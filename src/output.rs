//! What paystate writes to lightningd, shaped where cln-plugin's own
//! framing is not lightningd's: cln-plugin answers a failed method with
//! `"data": null` in its error object, where lightningd's errors carry
//! `data` only when they have some. Frames pass through untouched but for
//! that member of a method's error.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// The tail of a method error as cln-plugin frames it (compact JSON, the
/// error object last: `{"jsonrpc":..,"id":..,"error":{"code":..,"message":..,"data":null}}`).
const NULL_DATA: &[u8] = b",\"data\":null}}\n\n";

pub struct Shaped<W> {
    inner: W,
    /// Bytes of a frame not yet complete.
    partial: Vec<u8>,
    /// Shaped bytes not yet written to `inner`.
    out: Vec<u8>,
}

impl<W> Shaped<W> {
    pub fn new(inner: W) -> Self {
        Shaped {
            inner,
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

impl<W: AsyncWrite + Unpin> Shaped<W> {
    fn take(&mut self, buf: &[u8]) {
        self.partial.extend_from_slice(buf);
        let mut start = 0;
        let mut i = 0;
        while i + 1 < self.partial.len() {
            if self.partial[i] == b'\n' && self.partial[i + 1] == b'\n' {
                let end = i + 2;
                let shaped = shape(&self.partial[start..end]);
                self.out.extend_from_slice(&shaped);
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
}
