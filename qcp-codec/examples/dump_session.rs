//! Prints every message of a captured PostgreSQL byte stream, one per line.
//!
//! ```text
//! cargo run -p qcp-codec --example dump_session -- frontend client.bin
//! cargo run -p qcp-codec --example dump_session -- backend server.bin
//! ```
//!
//! A frontend stream starts with untagged startup-phase packets (SSLRequest, GSSENCRequest,
//! CancelRequest, StartupMessage) and continues with tagged messages after the
//! StartupMessage. A backend stream is tagged messages only. Each line shows the byte offset,
//! the frame length and the decoded message; secrets are printed as their length only.

use std::process::ExitCode;

use qcp_codec::{BackendMessage, DecodeError, FrontendMessage, Limits, StartupPacket};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [direction, path] = args.as_slice() else {
        eprintln!("usage: dump_session frontend|backend PATH");
        return ExitCode::from(2);
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match direction.as_str() {
        "frontend" => dump_frontend(&data),
        "backend" => dump_backend(&data),
        other => {
            eprintln!("unknown direction {other:?}: expected frontend or backend");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((offset, e)) => {
            eprintln!("{offset:>8}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Decodes startup-phase packets until the StartupMessage, then tagged messages.
fn dump_frontend(data: &[u8]) -> Result<(), (usize, DecodeError)> {
    let limits = Limits::default();
    let mut offset = 0;
    loop {
        let rest = &data[offset..];
        match StartupPacket::decode(rest, &limits).map_err(|e| (offset, e))? {
            None => return incomplete(offset, rest),
            Some((packet, used)) => {
                println!("{offset:>8}: [{used:>5}] {packet:?}");
                offset += used;
                match packet {
                    // After these the client waits for a one-byte answer, then sends another
                    // startup-phase packet (in clear if the answer was 'N').
                    StartupPacket::SslRequest | StartupPacket::GssEncRequest => continue,
                    StartupPacket::Cancel(_) => return done(offset, data),
                    StartupPacket::Startup(_) => break,
                }
            }
        }
    }
    while offset < data.len() {
        let rest = &data[offset..];
        match FrontendMessage::decode(rest, &limits).map_err(|e| (offset, e))? {
            None => return incomplete(offset, rest),
            Some((msg, used)) => {
                println!("{offset:>8}: [{used:>5}] {msg:?}");
                offset += used;
            }
        }
    }
    Ok(())
}

/// Decodes tagged backend messages.
fn dump_backend(data: &[u8]) -> Result<(), (usize, DecodeError)> {
    let limits = Limits::default();
    let mut offset = 0;
    while offset < data.len() {
        let rest = &data[offset..];
        match BackendMessage::decode(rest, &limits).map_err(|e| (offset, e))? {
            None => return incomplete(offset, rest),
            Some((msg, used)) => {
                println!("{offset:>8}: [{used:>5}] {msg:?}");
                offset += used;
            }
        }
    }
    Ok(())
}

fn incomplete(offset: usize, rest: &[u8]) -> Result<(), (usize, DecodeError)> {
    println!("{offset:>8}: incomplete message, {} bytes left", rest.len());
    Ok(())
}

fn done(offset: usize, data: &[u8]) -> Result<(), (usize, DecodeError)> {
    if offset < data.len() {
        println!(
            "{offset:>8}: {} bytes after CancelRequest",
            data.len() - offset
        );
    }
    Ok(())
}
