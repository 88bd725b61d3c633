//! The port forward's wire (`mcc local-remote serve` through the daemon):
//! one WebSocket per TCP connection. A binary frame carries bytes; an
//! *empty* binary frame says that its sender's direction ended (the TCP
//! half-close, passed on as a shutdown of the other side's write half); a
//! close frame ends the whole connection. Both ends, the CLI and the
//! daemon, splice a TCP stream to their WebSocket with [`splice`].

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes read at once from the TCP side (tokio's usual 8 KiB costs two
/// thirds of the throughput; bench/forward).
pub const BUFFER: usize = 256 << 10;

/// What a WebSocket message means to the tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Data(Bytes),
    /// The sender will send no more bytes.
    Eof,
}

impl Frame {
    /// A binary message's payload as a frame.
    pub fn from_binary(b: Bytes) -> Frame {
        if b.is_empty() {
            Frame::Eof
        } else {
            Frame::Data(b)
        }
    }

    /// The binary message's payload for a frame.
    pub fn into_binary(self) -> Bytes {
        match self {
            Frame::Data(b) => b,
            Frame::Eof => Bytes::new(),
        }
    }
}

/// Carries a TCP connection over a WebSocket (given as its two halves,
/// adapted to [`Frame`]s) until both directions have ended, or until the
/// socket closes (then the TCP connection is dropped). The socket is
/// closed at the end.
pub async fn splice<Si, St>(tcp: TcpStream, mut sink: Si, mut stream: St)
where
    Si: Sink<Frame> + Unpin,
    St: Stream<Item = Frame> + Unpin,
{
    let _ = tcp.set_nodelay(true);
    let (mut rd, mut wr) = tcp.into_split();
    {
        // TCP to socket; ends with an Eof frame (or when the socket fails).
        let up = async {
            let mut buf = bytes::BytesMut::with_capacity(BUFFER);
            loop {
                buf.reserve(BUFFER);
                match rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = sink.send(Frame::Eof).await;
                        return;
                    }
                    Ok(_) => {
                        if sink.send(Frame::Data(buf.split().freeze())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        };
        // Socket to TCP; true when the peer's direction ended cleanly,
        // false when the socket closed or the TCP side broke.
        let down = async {
            while let Some(f) = stream.next().await {
                match f {
                    Frame::Data(b) => {
                        if wr.write_all(&b).await.is_err() {
                            return false;
                        }
                    }
                    Frame::Eof => {
                        let _ = wr.shutdown().await;
                        return true;
                    }
                }
            }
            false
        };
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        while !(up_done && down_done) {
            tokio::select! {
                () = &mut up, if !up_done => up_done = true,
                clean = &mut down, if !down_done => {
                    down_done = true;
                    if !clean {
                        break;
                    }
                }
            }
        }
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;

    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    type TestSink = Pin<Box<dyn Sink<Frame, Error = ()> + Send>>;
    type TestStream = Pin<Box<dyn Stream<Item = Frame> + Send>>;

    /// A socket stand-in: the frames the tunnel sends arrive on the
    /// receiver; those sent on the sender reach the tunnel.
    fn socket() -> (
        TestSink,
        TestStream,
        mpsc::UnboundedSender<Frame>,
        mpsc::UnboundedReceiver<Frame>,
    ) {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let sink =
            futures_util::sink::unfold(out_tx, |tx: mpsc::UnboundedSender<Frame>, f| async move {
                tx.send(f).map_err(|_| ())?;
                Ok::<_, ()>(tx)
            });
        let stream = futures_util::stream::unfold(in_rx, |mut rx| async move {
            rx.recv().await.map(|f| (f, rx))
        });
        (Box::pin(sink), Box::pin(stream), in_tx, out_rx)
    }

    /// A TCP pair: (ours, the peer's).
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap());
        let (a, b) = tokio::join!(a, l.accept());
        (a.unwrap(), b.unwrap().0)
    }

    #[tokio::test]
    async fn bytes_and_half_closes_pass_each_way() {
        let (ours, mut peer) = pair().await;
        let (sink, stream, to_tunnel, mut from_tunnel) = socket();
        let task = tokio::spawn(splice(ours, sink, stream));
        // the peer's bytes, then its half-close, come out as frames
        peer.write_all(b"hello").await.unwrap();
        peer.shutdown().await.unwrap();
        let mut got = Vec::new();
        while let Frame::Data(b) = from_tunnel.recv().await.unwrap() {
            got.extend_from_slice(&b);
        }
        assert_eq!(got, b"hello");
        // the other direction still works after the half-close
        to_tunnel
            .send(Frame::Data(Bytes::from_static(b"world")))
            .unwrap();
        to_tunnel.send(Frame::Eof).unwrap();
        let mut back = Vec::new();
        peer.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"world");
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_socket_drops_the_connection() {
        let (ours, mut peer) = pair().await;
        let (sink, stream, to_tunnel, _from_tunnel) = socket();
        let task = tokio::spawn(splice(ours, sink, stream));
        drop(to_tunnel);
        task.await.unwrap();
        let mut rest = Vec::new();
        // the peer sees the connection end, without waiting for its own EOF
        peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
