//! Invite ticket parsing: any text gives a ticket or an error; a parsed ticket round-trips.
//!
//! Random text almost never passes the ticket's checksum, so most inputs are taken as a
//! ticket's *payload* instead: the target appends the right checksum, encodes it as a ticket
//! text would be (prefix, base32, mixed case, dashes and spaces), and so reaches the field
//! decoder and the limits behind the checksum.
#![no_main]

use data_encoding::BASE32_NOPAD;
use hearth_proto::invite::{TICKET_CHECKSUM_LABEL, TICKET_CHECKSUM_LEN, TICKET_PREFIX, Ticket};
use libfuzzer_sys::fuzz_target;

fn round_trips(text: &str) {
    if let Ok(ticket) = Ticket::parse(text) {
        let again = Ticket::parse(&ticket.to_text()).expect("a ticket's own text parses");
        assert_eq!(again.to_text(), ticket.to_text());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 4 == 0 {
        round_trips(&String::from_utf8_lossy(rest));
        return;
    }
    let mut bytes = rest.to_vec();
    let sum = blake3::derive_key(TICKET_CHECKSUM_LABEL, &bytes);
    bytes.extend_from_slice(&sum[..TICKET_CHECKSUM_LEN]);
    let body = BASE32_NOPAD.encode(&bytes);
    let mut text = String::from(TICKET_PREFIX);
    for (n, c) in body.chars().enumerate() {
        // Chat apps wrap and hyphenate tickets, and people retype them in either case.
        if mode % 4 == 2 && n % 7 == 3 {
            text.push('-');
        }
        if mode % 4 == 3 && n % 11 == 5 {
            text.push_str(" \n");
        }
        text.push(if (usize::from(mode / 4) + n) % 3 == 0 {
            c
        } else {
            c.to_ascii_lowercase()
        });
    }
    round_trips(&text);
    // A parsed ticket is exactly the payload it came from.
    if let Ok(ticket) = Ticket::parse(&text) {
        assert_eq!(ticket.to_text(), {
            let mut lower = String::from(TICKET_PREFIX);
            lower.push_str(&body.to_ascii_lowercase());
            lower
        });
    }
});
