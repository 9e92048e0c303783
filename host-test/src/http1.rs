//! A small blocking HTTP/1.1 server for loopback: one thread per connection, keep-alive, bodies
//! by `content-length` or chunked, each answer sent in one write with `TCP_NODELAY`.
//!
//! The simulator needs a server that never leaves a connection unserved while a client keeps
//! many open at once. tiny_http 0.12 hands each new connection to a thread pool that can lose a
//! wake-up when connections arrive in a burst (a queued connection then waits until some other
//! connection closes: a request "timed out" after 60 s with its bytes unread in the socket), and
//! it writes a head and a large body in two writes, which Nagle's algorithm delays by the
//! client's delayed ACK. Here every connection has its own thread from the moment it is
//! accepted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// 64 KiB: the longest request head accepted.
const MAX_HEAD: usize = 64 << 10;
/// 256 MiB: the largest request body accepted.
const MAX_BODY: usize = 256 << 20;
/// How often an idle connection looks whether the server stopped.
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// A request as read off the wire.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Incoming {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// What to do with a request.
pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close the connection without an answer (a transport fault).
    Drop,
}

/// A listening socket on 127.0.0.1.
pub struct Server {
    listener: TcpListener,
    stopped: Arc<AtomicBool>,
}

impl Server {
    /// Listens on 127.0.0.1:`port` (0: any free port).
    pub fn bind(port: u16) -> std::io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        Ok(Server { listener, stopped: Arc::new(AtomicBool::new(false)) })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// A handle that stops [`Server::serve`] from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper { stopped: self.stopped.clone(), port: self.port() }
    }

    /// Serves until stopped: each connection on a thread of its own, each request through
    /// `handle`. Returns once every connection has ended.
    pub fn serve<H>(&self, handle: H) -> std::io::Result<()>
    where
        H: Fn(Incoming) -> Reply + Sync,
    {
        let handle = &handle;
        let stopped = &self.stopped;
        std::thread::scope(|scope| {
            for stream in self.listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                let spawned = std::thread::Builder::new()
                    .name("sim-connection".into())
                    .spawn_scoped(scope, move || serve_connection(stream, handle, stopped));
                if let Err(e) = spawned {
                    eprintln!("simulate: cannot start a connection thread: {e}");
                }
            }
            Ok(())
        })
    }
}

/// Stops a [`Server`]: no new connection is accepted, idle ones close.
#[derive(Clone)]
pub struct Stopper {
    stopped: Arc<AtomicBool>,
    port: u16,
}

impl Stopper {
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_connection<H>(stream: TcpStream, handle: &H, stopped: &AtomicBool)
where
    H: Fn(Incoming) -> Reply + Sync,
{
    let Ok(write_half) = stream.try_clone() else { return };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    while let Ok(Some(request)) = read_request(&mut reader, &mut writer, stopped) {
        let keep_alive = wants_keep_alive(&request);
        match handle(request) {
            Reply::Answer { status, headers, body } => {
                if writer.write_all(&encode_response(status, &headers, &body, keep_alive)).is_err() || !keep_alive {
                    break;
                }
            }
            Reply::Drop => break,
        }
        if stopped.load(Ordering::SeqCst) {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

fn wants_keep_alive(r: &Incoming) -> bool {
    let connection = header(&r.headers, "connection").map(str::to_ascii_lowercase);
    !connection.is_some_and(|c| c.contains("close"))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Reads one request; `None` when the client closed the connection (or the server stopped)
/// between requests.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    stopped: &AtomicBool,
) -> std::io::Result<Option<Incoming>> {
    let mut head = Vec::new();
    // Wait for the first byte of a request, looking now and then whether the server stopped.
    let _ = reader.get_ref().set_read_timeout(Some(IDLE_CHECK));
    loop {
        match reader.fill_buf() {
            Ok([]) => return Ok(None),
            Ok(_) => break,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if stopped.load(Ordering::SeqCst) {
                    return Ok(None);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let _ = reader.get_ref().set_read_timeout(Some(Duration::from_secs(60)));
    while !head.ends_with(b"\r\n\r\n") {
        let mut line = Vec::new();
        if reader.by_ref().take((MAX_HEAD - head.len()) as u64).read_until(b'\n', &mut line)? == 0 {
            return Err(bad("the connection closed inside a request head"));
        }
        head.extend_from_slice(&line);
        if head.len() >= MAX_HEAD {
            return Err(bad("request head too large"));
        }
    }
    let mut parsed_headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut parsed_headers);
    req.parse(&head).map_err(|e| bad(&format!("bad request head: {e}")))?;
    let method = req.method.unwrap_or("GET").to_string();
    let target = req.path.unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    if header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = header(&headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let len: usize = header(&headers, "content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        if len > MAX_BODY {
            return Err(bad("request body too large"));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(Incoming { method, target, headers, body }))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("request body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// The whole response, head and body, as one buffer (one write).
fn encode_response(status: u16, headers: &[(String, String)], body: &[u8], keep_alive: bool) -> Vec<u8> {
    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Unknown");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    for (k, v) in headers {
        let lower = k.to_ascii_lowercase();
        if matches!(lower.as_str(), "content-length" | "transfer-encoding" | "connection") {
            continue;
        }
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(if keep_alive { b"connection: keep-alive\r\n\r\n" } else { b"connection: close\r\n\r\n" });
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_many_kept_alive_connections_at_once_and_posts_with_either_body_framing() {
        let server = Server::bind(0).unwrap();
        let port = server.port();
        let stopper = server.stopper();
        std::thread::scope(|s| {
            s.spawn(|| {
                server
                    .serve(|r| Reply::Answer {
                        status: 200,
                        headers: vec![("content-type".into(), "text/plain".into())],
                        body: format!("{} {} {}", r.method, r.target, String::from_utf8_lossy(&r.body)).into_bytes(),
                    })
                    .unwrap()
            });
            // Sixteen connections open at once, each asking twice.
            let mut conns: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
            for round in 0..2 {
                for (i, c) in conns.iter_mut().enumerate() {
                    write!(c, "GET /x/{i}?r={round} HTTP/1.1\r\nhost: a\r\n\r\n").unwrap();
                }
                for (i, c) in conns.iter_mut().enumerate() {
                    let mut reader = BufReader::new(c.try_clone().unwrap());
                    let mut head = String::new();
                    while !head.ends_with("\r\n\r\n") {
                        reader.read_line(&mut head).unwrap();
                    }
                    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
                    let want = format!("GET /x/{i}?r={round} ");
                    let mut body = vec![0; want.len()];
                    reader.read_exact(&mut body).unwrap();
                    assert_eq!(String::from_utf8(body).unwrap(), want);
                }
            }
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(c, "POST /p HTTP/1.1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .unwrap();
            let mut all = String::new();
            c.read_to_string(&mut all).unwrap();
            assert!(all.ends_with("POST /p abcde"), "{all}");
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(c, "POST /q HTTP/1.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi").unwrap();
            let mut all = String::new();
            c.read_to_string(&mut all).unwrap();
            assert!(all.ends_with("POST /q hi"), "{all}");
            stopper.stop();
        });
    }
}
