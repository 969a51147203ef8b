//! Sync messages: the catch-up request and batch, and `/hearth/sync/3`'s request and response
//! (hello, membership proof, refusal). Whatever decodes re-encodes to the same bytes.
#![no_main]

use hearth_proto::sync::proof::{PeerRequest, PeerResponse};
use hearth_proto::sync::{SyncRequest, SyncResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SyncRequest::decode(data) {
        assert_eq!(m.encode(), data);
    }
    if let Ok(m) = SyncResponse::decode(data) {
        assert_eq!(m.encode(), data);
        assert_eq!(m.encoded_len(), data.len());
    }
    if let Ok(m) = PeerRequest::decode(data) {
        assert_eq!(m.encode(), data);
    }
    if let Ok(m) = PeerResponse::decode(data) {
        assert_eq!(m.encode(), data);
    }
});
