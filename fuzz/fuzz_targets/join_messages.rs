//! Join handshake messages (Hello, Offer, Request, Welcome chunks, Rejected) and the
//! request-response wrappers of `/hearth/join/1`.
#![no_main]

use hearth_node::codec::Frame;
use hearth_node::protocol::{JoinRequest, JoinResponse};
use hearth_proto::invite::JoinResponder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Decodes any join message, then checks it is a hello.
    let _ = JoinResponder::invite_in_hello(data);
    if let Ok(request) = JoinRequest::from_bytes(data) {
        assert_eq!(JoinRequest::from_bytes(&request.to_bytes()).ok(), Some(request.clone()));
        let _ = JoinResponder::invite_in_hello(&request.message);
    }
    if let Ok(response) = JoinResponse::from_bytes(data) {
        assert_eq!(JoinResponse::from_bytes(&response.to_bytes()).ok(), Some(response));
    }
});
