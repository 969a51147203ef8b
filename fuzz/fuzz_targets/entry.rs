//! Entry decoding and signature check: any bytes give an entry or an error, never a panic.
#![no_main]

use hearth_proto::entry::Entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Entry::decode_and_verify(data);
});
