//! Invite ticket parsing: any text gives a ticket or an error; a parsed ticket round-trips.
#![no_main]

use hearth_proto::invite::Ticket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ticket) = Ticket::parse(&text) {
        let again = Ticket::parse(&ticket.to_text()).expect("a ticket's own text parses");
        assert_eq!(again.to_text(), ticket.to_text());
    }
});
