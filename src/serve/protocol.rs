//! Which HTTP a connection speaks, from its first bytes, looked at without taking them: HTTP/2
//! when it opens with the connection preface (RFC 9113 §3.4, "prior knowledge"), else HTTP/1.
//! Deciding once, before hyper sees the connection, lets each connection be served by hyper's own
//! HTTP/1 or HTTP/2 connection, so an HTTP/1 request pays nothing for the choice.

use std::time::Duration;
use tokio::net::TcpStream;

/// The HTTP/2 connection preface.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// What `stream` speaks; `None` when it sent nothing within `idle` (or closed, or failed), or
/// began the preface without finishing it within `head` (the connection is then dropped).
pub(crate) async fn detect(stream: &TcpStream, idle: Duration, head: Duration) -> Option<Protocol> {
    let mut buf = [0u8; PREFACE.len()];
    let n = tokio::time::timeout(idle, stream.peek(&mut buf)).await.ok()?.ok()?;
    match decide(buf.get(..n).unwrap_or_default())? {
        Decided::Is(p) => return Some(p),
        Decided::Partial => {}
    }
    // Part of the preface so far (a client writing it in pieces): look again, less and less
    // often, until the rest comes or `head` has passed.
    let rest = async {
        let mut wait = Duration::from_millis(1);
        loop {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(100));
            let n = stream.peek(&mut buf).await.ok()?;
            if let Decided::Is(p) = decide(buf.get(..n).unwrap_or_default())? {
                return Some(p);
            }
        }
    };
    tokio::time::timeout(head, rest).await.ok()?
}

enum Decided {
    Is(Protocol),
    /// A beginning of the preface: more bytes decide.
    Partial,
}

/// `None`: the peer closed before sending anything.
fn decide(first: &[u8]) -> Option<Decided> {
    if first.is_empty() {
        return None;
    }
    if !PREFACE.starts_with(first) {
        return Some(Decided::Is(Protocol::Http1));
    }
    Some(if first.len() == PREFACE.len() { Decided::Is(Protocol::Http2) } else { Decided::Partial })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    const LONG: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_request_line_is_http1_and_the_preface_is_http2_without_taking_bytes() {
        let (mut client, server) = pair().await;
        client.write_all(b"POST /hooks HTTP/1.1\r\n").await.expect("write");
        assert_eq!(detect(&server, LONG, LONG).await, Some(Protocol::Http1));
        let mut buf = [0u8; 4];
        assert_eq!(server.peek(&mut buf).await.expect("peek"), 4, "the bytes stay for hyper");
        assert_eq!(&buf, b"POST");

        let (mut client, server) = pair().await;
        client.write_all(PREFACE).await.expect("write");
        assert_eq!(detect(&server, LONG, LONG).await, Some(Protocol::Http2));
    }

    #[tokio::test]
    async fn a_preface_written_in_pieces_is_http2_and_a_wrong_byte_after_its_start_is_http1() {
        let (mut client, server) = pair().await;
        let writer = tokio::spawn(async move {
            for chunk in PREFACE.chunks(5) {
                client.write_all(chunk).await.expect("write");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            client
        });
        assert_eq!(detect(&server, LONG, LONG).await, Some(Protocol::Http2));
        drop(writer.await);

        let (mut client, server) = pair().await;
        client.write_all(b"PRI").await.expect("write");
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            client.write_all(b"NT / HTTP/1.1\r\n").await.expect("write");
            client
        });
        assert_eq!(detect(&server, LONG, LONG).await, Some(Protocol::Http1));
        drop(writer.await);
    }

    #[tokio::test]
    async fn silence_a_close_and_a_preface_never_finished_decide_nothing() {
        let (_client, server) = pair().await;
        assert_eq!(detect(&server, Duration::from_millis(50), LONG).await, None);

        let (client, server) = pair().await;
        drop(client);
        assert_eq!(detect(&server, LONG, LONG).await, None);

        let (mut client, server) = pair().await;
        client.write_all(b"PRI * HT").await.expect("write");
        let started = std::time::Instant::now();
        assert_eq!(detect(&server, LONG, Duration::from_millis(100)).await, None);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
