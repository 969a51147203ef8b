//! The length-prefixed framing of `/hearth/sync/2` (and `/hearth/join/1`): any byte stream
//! gives one frame or an IO error, never a panic and never a buffer beyond the limit.
#![no_main]

use hearth_node::codec::read_frame;
use hearth_node::protocol::{JoinRequest, SyncRequestFrame, SyncResponseFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    futures::executor::block_on(async {
        let _ = read_frame::<SyncRequestFrame, _>(&mut &data[..]).await;
        let _ = read_frame::<SyncResponseFrame, _>(&mut &data[..]).await;
        let _ = read_frame::<JoinRequest, _>(&mut &data[..]).await;
    });
});
