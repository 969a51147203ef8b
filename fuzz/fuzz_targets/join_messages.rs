//! Join handshake messages (Hello, Offer, Request, Welcome chunks, Rejected) and the
//! request-response frames of `/hearth/join/1`.
#![no_main]

use hearth_proto::invite::{JoinRequestFrame, JoinResponder, JoinResponseFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Decodes any join message, then checks it is a hello.
    let _ = JoinResponder::invite_in_hello(data);
    if let Ok(request) = JoinRequestFrame::decode(data) {
        assert_eq!(
            JoinRequestFrame::decode(&request.encode()).ok(),
            Some(request.clone())
        );
        let _ = JoinResponder::invite_in_hello(&request.message);
    }
    if let Ok(response) = JoinResponseFrame::decode(data) {
        assert_eq!(
            JoinResponseFrame::decode(&response.encode()).ok(),
            Some(response)
        );
    }
});
