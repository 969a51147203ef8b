//! Decrypted entry content: any bytes give content or an error.
#![no_main]

use hearth_proto::content::Content;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Content::decode(data);
});
