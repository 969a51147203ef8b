//! The frames of `/hearth/join/1` and `/hearth/sync/3`.
//!
//! Join: the joiner opens one stream per handshake step and sends a [`JoinRequest`] naming a
//! random session id (so the inviter can keep the handshake state between the two steps) and
//! one message of [`hearth_proto::invite`]; the inviter answers with one message
//! ([`JoinResponse`]). Sync: a [`hearth_proto::sync::proof::PeerRequest`] (hello, membership
//! proof or catch-up request) answered by a [`hearth_proto::sync::proof::PeerResponse`].

use hearth_proto::entry::{CheckedEntry, EntryError};
pub use hearth_proto::invite::{
    JoinRequestFrame as JoinRequest, JoinResponseFrame as JoinResponse,
};
use hearth_proto::invite::{MAX_JOIN_REQUEST_FRAME_LEN, MAX_JOIN_RESPONSE_FRAME_LEN};
use hearth_proto::sync::proof::{
    MAX_PEER_REQUEST_BYTES, MAX_PEER_RESPONSE_BYTES, PeerRequest, PeerResponse,
};
use hearth_proto::wire::DecodeError;

use crate::codec::Frame;

/// The largest sync request frame ([`MAX_PEER_REQUEST_BYTES`]).
pub const MAX_SYNC_REQUEST_LEN: usize = MAX_PEER_REQUEST_BYTES;
/// The largest sync response frame ([`MAX_PEER_RESPONSE_BYTES`]).
pub const MAX_SYNC_RESPONSE_LEN: usize = MAX_PEER_RESPONSE_BYTES;
/// The largest join request frame ([`MAX_JOIN_REQUEST_FRAME_LEN`]).
pub const MAX_JOIN_REQUEST_LEN: usize = MAX_JOIN_REQUEST_FRAME_LEN;
/// The largest join response frame, a welcome in Noise chunks ([`MAX_JOIN_RESPONSE_FRAME_LEN`]).
pub const MAX_JOIN_RESPONSE_LEN: usize = MAX_JOIN_RESPONSE_FRAME_LEN;

// The join frames are proto's (PROTOCOL.md §13 pins them, with test vectors).
impl Frame for JoinRequest {
    const MAX_LEN: usize = MAX_JOIN_REQUEST_LEN;
    const WHAT: &'static str = "join request";
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        JoinRequest::decode(bytes)
    }
}

impl Frame for JoinResponse {
    const MAX_LEN: usize = MAX_JOIN_RESPONSE_LEN;
    const WHAT: &'static str = "join response";
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        JoinResponse::decode(bytes)
    }
}

/// A sync request (hello, proof or catch-up request) as one frame.
#[derive(Debug, Clone)]
pub struct SyncRequestFrame(pub PeerRequest);

/// A sync response (challenge, proof, refusal or batch) as one frame.
///
/// When a batch is read, its entries move to [`SyncResponseFrame::checked`], each decoded and
/// its signature verified as the frame is read: on the connection's task, so this work
/// overlaps the event loop's storing of the batch before (a sync round is one batch at a time).
#[derive(Debug, Clone)]
pub struct SyncResponseFrame {
    /// The response; a batch that was read has no entries left in it.
    pub response: PeerResponse,
    /// The entries of a batch that was read, in order, checked (empty otherwise).
    pub checked: Vec<Result<CheckedEntry, EntryError>>,
}

impl SyncResponseFrame {
    /// A frame to send.
    pub fn new(response: PeerResponse) -> Self {
        Self {
            response,
            checked: Vec::new(),
        }
    }
}

impl Frame for SyncRequestFrame {
    const MAX_LEN: usize = MAX_SYNC_REQUEST_LEN;
    const WHAT: &'static str = "sync request";
    fn to_bytes(&self) -> Vec<u8> {
        self.0.encode()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        PeerRequest::decode(bytes).map(SyncRequestFrame)
    }
}

impl Frame for SyncResponseFrame {
    const MAX_LEN: usize = MAX_SYNC_RESPONSE_LEN;
    const WHAT: &'static str = "sync response";
    fn to_bytes(&self) -> Vec<u8> {
        self.response.encode()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut response = PeerResponse::decode(bytes)?;
        let checked = match &mut response {
            PeerResponse::Sync(batch) => {
                let entries = std::mem::take(&mut batch.entries);
                crate::node::blocking(|| CheckedEntry::check_all(entries))
            }
            _ => Vec::new(),
        };
        Ok(Self { response, checked })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{read_frame, write_frame};

    #[test]
    fn frames_round_trip_and_oversized_lengths_are_refused_before_reading() {
        futures::executor::block_on(async {
            let request = JoinRequest {
                session: [7; 16],
                message: vec![1, 2, 3],
            };
            let mut buf = Vec::new();
            write_frame(&mut buf, &request).await.unwrap();
            assert_eq!(&buf[..4], &(buf.len() as u32 - 4).to_be_bytes());
            let back: JoinRequest = read_frame(&mut buf.as_slice()).await.unwrap();
            assert_eq!(back, request);

            // A length prefix over the limit fails without the body being there at all.
            let huge = ((MAX_JOIN_REQUEST_LEN + 1) as u32).to_be_bytes();
            let err = read_frame::<JoinRequest, _>(&mut huge.as_slice())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

            // Trailing bytes inside the frame are refused.
            let mut body = request.to_bytes();
            body.push(0);
            let mut framed = (body.len() as u32).to_be_bytes().to_vec();
            framed.extend(body);
            assert!(
                read_frame::<JoinRequest, _>(&mut framed.as_slice())
                    .await
                    .is_err()
            );

            // A truncated frame is an error, not a hang.
            let truncated = &buf[..buf.len() - 1];
            assert!(
                read_frame::<JoinRequest, _>(&mut &truncated[..])
                    .await
                    .is_err()
            );
        });
    }
}
