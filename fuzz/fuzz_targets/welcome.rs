//! A welcome (the circle state a newcomer receives): any bytes give a circle or an error.
#![no_main]

use hearth_proto::circle::Circle;
use hearth_proto::identity::MemberSecret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let me = MemberSecret::from_bytes(&[7u8; 64]);
    let _ = Circle::join(data, me);
});
