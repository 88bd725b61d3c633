//! A stand-in registry on the loopback that has no image at all: it
//! answers `/v2/` as a registry does and every other path 404
//! `NAME_UNKNOWN`, so a pull of `127.0.0.1:PORT/…` fails as a real
//! registry's "no such image" does, without leaving the machine (the
//! engine takes 127.0.0.0/8 as an insecure registry by default).

use std::io::{Read, Write};
use std::net::TcpListener;

/// Serves until the process ends; its `host:port`.
pub fn empty_registry() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let root = head.starts_with(b"GET /v2/ ") || head.starts_with(b"HEAD /v2/ ");
            let (status, body) = if root {
                ("200 OK", "{}".to_string())
            } else {
                (
                    "404 Not Found",
                    r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#
                        .to_string(),
                )
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Docker-Distribution-API-Version: registry/2.0\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr.to_string()
}
