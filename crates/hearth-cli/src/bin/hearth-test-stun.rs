//! A minimal STUN server (RFC 5389 Binding) for the reachability tests.
//!
//! miniupnpd refuses to map ports when its router's address is in a reserved range, which
//! every address of a simulated internet is, unless it learns its public address with STUN.
//! `hearth-test-stun <ip> <port>` answers every Binding request on that UDP address with the
//! address it came from (MAPPED-ADDRESS, and XOR-MAPPED-ADDRESS), ignoring CHANGE-REQUEST.
//! It prints `ready` on stdout once listening, then runs until killed.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use anyhow::Context;

/// The RFC 5389 magic cookie.
const COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// The Binding success response to `request` from `from`, if it is a Binding request.
fn reply(request: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    if request.len() < 20 || request[0..2] != [0x00, 0x01] {
        return None;
    }
    let SocketAddr::V4(from) = from else {
        return None;
    };
    let port = from.port().to_be_bytes();
    let ip = from.ip().octets();
    let mut out = Vec::with_capacity(44);
    out.extend_from_slice(&[0x01, 0x01, 0x00, 24]);
    // The cookie (or the first four bytes of an RFC 3489 transaction id) and the id, echoed.
    out.extend_from_slice(&request[4..20]);
    out.extend_from_slice(&[0x00, 0x01, 0x00, 0x08, 0x00, 0x01]);
    out.extend_from_slice(&port);
    out.extend_from_slice(&ip);
    out.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
    out.extend_from_slice(&[port[0] ^ COOKIE[0], port[1] ^ COOKIE[1]]);
    for (b, c) in ip.iter().zip(COOKIE) {
        out.push(b ^ c);
    }
    Some(out)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let ip: IpAddr = args
        .next()
        .context("usage: hearth-test-stun <ip> <port>")?
        .parse()
        .context("the first argument is an IP address")?;
    let port: u16 = args
        .next()
        .context("usage: hearth-test-stun <ip> <port>")?
        .parse()
        .context("the second argument is a port")?;
    let socket = UdpSocket::bind((ip, port)).with_context(|| format!("cannot bind {ip}:{port}"))?;
    println!("ready");
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        if let Some(answer) = reply(&buf[..n], from) {
            let _ = socket.send_to(&answer, from);
        }
    }
}
