//! The WASI side: `wasi:http/incoming-handler` exported, the connector's `source` imported.
//!
//! A read's answer is streamed: the head goes out with the first batch, each batch is written
//! and flushed as the reader hands it over, so a platform's client sees records within moments
//! and the function holds one batch at a time, whatever the sync's size.

use crate::{Command, MAX_REQUEST_BYTES, NDJSON, Refusal, config_error, parse, route};
use sfm_wire::redact::{Redactor, config_secrets};
use std::io::{Read, Write};
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({ path: "../../wit", world: "http-function" });

use airbyte::source_facebook_marketing::source::{self as source, LogLevel, Message, Status};
sfm_wire::message_lines!();

struct Function;

wasip2::http::proxy::export!(Function);

impl wasip2::exports::http::incoming_handler::Guest for Function {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let command = route(&method_name(&request.method()), &path)
            .and_then(|endpoint| parse(endpoint, &path, &read_body(request)?));
        match command {
            Ok(command) => answer(command, out),
            Err(refusal) => refuse(out, &refusal),
        }
    }
}

fn method_name(m: &Method) -> String {
    match m {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(o) => o.clone(),
    }
}

/// The whole request body, at most [`MAX_REQUEST_BYTES`].
fn read_body(request: IncomingRequest) -> Result<Vec<u8>, Refusal> {
    let unreadable = |e: String| Refusal { status: 400, message: format!("the request body could not be read: {e}") };
    let body: IncomingBody = request.consume().map_err(|()| unreadable("no body".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| unreadable("no body stream".into()))?;
        let mut limited = stream.take(MAX_REQUEST_BYTES as u64 + 1);
        let read = limited.read_to_end(&mut bytes);
        drop(limited);
        read.map_err(|e| unreadable(e.to_string()))?;
    }
    drop(IncomingBody::finish(body));
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(Refusal {
            status: 413,
            message: format!("the request body is over {} MiB", MAX_REQUEST_BYTES >> 20),
        });
    }
    Ok(bytes)
}

/// Sends a refusal as `{"error": ...}`.
fn refuse(out: ResponseOutparam, refusal: &Refusal) {
    eprintln!("refused ({}): {}", refusal.status, refusal.message);
    let body = format!("{}\n", refusal.body());
    if let Some(mut writer) = Writer::start(out, refusal.status, "application/json") {
        let _ = writer.write(body.as_bytes());
        writer.finish();
    }
}

/// Runs the command and streams its lines.
fn answer(command: Command, out: ResponseOutparam) {
    let redactor = match &command {
        Command::Spec => Redactor::default(),
        Command::Check { config } | Command::Discover { config } | Command::Read { config, .. } => {
            Redactor::new(config_secrets(config))
        }
    };
    let lines = |messages: &[Message]| -> Vec<String> { messages.iter().map(|m| redactor.redact(line(m))).collect() };
    let (first, reader) = match &command {
        Command::Spec => (lines(&source::spec()), None),
        Command::Check { config } => (lines(&source::check(config)), None),
        Command::Discover { config } => (lines(&source::discover(config)), None),
        Command::Read { config, catalog, state } => {
            let reader = source::Reader::new(config, catalog, state.as_deref());
            let first = reader.next().map(|batch| lines(&batch)).unwrap_or_default();
            (first, Some(reader))
        }
    };
    // A config the connector refused before reading (or discovering) is the request's fault.
    if !matches!(command, Command::Check { .. })
        && let Some(message) = first.iter().find_map(|l| config_error(l))
    {
        return refuse(out, &Refusal { status: 400, message });
    }
    let Some(mut writer) = Writer::start(out, 200, NDJSON) else { return };
    let mut records = 0u64;
    let mut write = |writer: &mut Writer, batch: Vec<String>| -> bool {
        let mut text = String::new();
        for l in batch {
            records += u64::from(l.starts_with("{\"type\":\"RECORD\""));
            text.push_str(&l);
            text.push('\n');
        }
        writer.write(text.as_bytes())
    };
    let mut open = write(&mut writer, first);
    if let Some(reader) = reader {
        while open && let Some(batch) = reader.next() {
            open = write(&mut writer, lines(&batch));
        }
        eprintln!("read {records} records{}", if open { "" } else { "; the client went away" });
    }
    writer.finish();
}

/// A response being written.
struct Writer {
    body: OutgoingBody,
    stream: Option<wasip2::io::streams::OutputStream>,
}

impl Writer {
    fn start(out: ResponseOutparam, status: u16, content_type: &str) -> Option<Writer> {
        let headers = Fields::from_list(&[("content-type".to_string(), content_type.as_bytes().to_vec())]).ok()?;
        let response = OutgoingResponse::new(headers);
        response.set_status_code(status).ok()?;
        let body = response.body().ok()?;
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().ok()?;
        Some(Writer { body, stream: Some(stream) })
    }

    /// Writes and flushes `bytes`; `false` once the client is gone.
    fn write(&mut self, bytes: &[u8]) -> bool {
        let Some(stream) = &mut self.stream else { return false };
        stream.write_all(bytes).and_then(|()| stream.flush()).is_ok()
    }

    fn finish(mut self) {
        // The stream is dropped before its body is finished, as wasi:http requires.
        drop(self.stream.take());
        let _ = OutgoingBody::finish(self.body, None);
    }
}
