//! The catch-up frames ([`SyncRequest`], [`SyncResponse`]): their limits, encoding and
//! decoding.

use serde::{Deserialize, Serialize};

use super::{
    HighWaterMarks, MAX_SYNC_BATCH_BYTES, MAX_SYNC_BATCH_ENTRIES, MAX_SYNC_MARKS,
    MAX_SYNC_REQUEST_BYTES, MAX_SYNC_WANTS, SyncError, Want,
};
use crate::entry::MAX_ENTRY_LEN;
use crate::ids::CircleId;
use crate::wire::{self, DecodeError};

/// Catch-up request: "here is what I hold; send me what I lack".
///
/// Limits: at most [`MAX_SYNC_MARKS`] marks and [`MAX_SYNC_WANTS`] wants, one want per author
/// in ascending author order with `from_seq <= to_seq`, at most [`MAX_SYNC_REQUEST_BYTES`]
/// encoded, canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The circle.
    pub circle: CircleId,
    /// The requester's high-water marks (an absent author: nothing held).
    pub marks: HighWaterMarks,
    /// Explicit ranges wanted (e.g. to fill a detected gap). Empty: everything the marks
    /// show lacking.
    pub want: Vec<Want>,
    /// The most entries the requester takes in one response (the responder also caps at
    /// [`MAX_SYNC_BATCH_ENTRIES`]). 0 announces the marks without asking for entries.
    pub max_entries: u32,
}

impl SyncRequest {
    /// Builds a request, checking the limits.
    pub fn new(
        circle: CircleId,
        marks: HighWaterMarks,
        want: Vec<Want>,
        max_entries: u32,
    ) -> Result<Self, SyncError> {
        let request = SyncRequest {
            circle,
            marks,
            want,
            max_entries,
        };
        request.check()?;
        Ok(request)
    }

    /// Checks the limits stated on [`SyncRequest`] (all but the encoding's).
    pub fn check(&self) -> Result<(), SyncError> {
        if self.marks.len() > MAX_SYNC_MARKS {
            return Err(SyncError::TooMany {
                what: "sync request's marks",
                count: self.marks.len(),
                max: MAX_SYNC_MARKS,
            });
        }
        if self.want.len() > MAX_SYNC_WANTS {
            return Err(SyncError::TooMany {
                what: "sync request's wants",
                count: self.want.len(),
                max: MAX_SYNC_WANTS,
            });
        }
        let ascending = self.want.windows(2).all(|w| w[0].author < w[1].author);
        if !ascending || self.want.iter().any(|w| w.from_seq > w.to_seq) {
            return Err(SyncError::BadWants);
        }
        Ok(())
    }

    /// The version byte and postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and validates a request from a peer. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "sync request";
        let request: SyncRequest = wire::decode(bytes, MAX_SYNC_REQUEST_BYTES, WHAT)?;
        request.check().map_err(|e| DecodeError::Invalid {
            what: WHAT,
            reason: e.to_string(),
        })?;
        canonical(&request, bytes, WHAT)?;
        Ok(request)
    }

    /// [`SyncRequest::decode`], then checks that it names `circle`.
    pub fn decode_for(bytes: &[u8], circle: CircleId) -> Result<Self, SyncError> {
        let request = Self::decode(bytes)?;
        same_circle(circle, request.circle)?;
        Ok(request)
    }
}

/// One batch of catch-up entries, each author's in ascending seq.
///
/// Limits: at most [`MAX_SYNC_BATCH_ENTRIES`] entries, each 1 to
/// [`crate::entry::MAX_ENTRY_LEN`] bytes, at most [`MAX_SYNC_BATCH_BYTES`] encoded,
/// canonical encoding. The entries are opaque here; the receiver decodes, verifies and
/// classifies each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// The circle.
    pub circle: CircleId,
    /// Encoded entries, in the order to apply them.
    pub entries: Vec<Vec<u8>>,
    /// Whether the responder holds more that the requester lacks: ask again with new marks.
    pub more: bool,
}

impl SyncResponse {
    /// An empty batch.
    pub fn new(circle: CircleId) -> Self {
        SyncResponse {
            circle,
            entries: Vec::new(),
            more: false,
        }
    }

    /// The exact length of [`SyncResponse::encode`], without encoding.
    pub fn encoded_len(&self) -> usize {
        let entries: usize = self
            .entries
            .iter()
            .map(|e| varint_len(e.len() as u64) + e.len())
            .sum();
        1 + CircleId::LEN + varint_len(self.entries.len() as u64) + entries + 1
    }

    /// Adds an encoded entry if the batch stays within its limits; otherwise gives it back
    /// unchanged (the batch is full, or the entry is empty or longer than an entry may be).
    pub fn try_push(&mut self, entry: Vec<u8>) -> Result<(), Vec<u8>> {
        let count = self.entries.len();
        if entry.is_empty() || entry.len() > MAX_ENTRY_LEN || count >= MAX_SYNC_BATCH_ENTRIES {
            return Err(entry);
        }
        let grows = varint_len(entry.len() as u64) + entry.len() + varint_len(count as u64 + 1)
            - varint_len(count as u64);
        if self.encoded_len() + grows > MAX_SYNC_BATCH_BYTES {
            return Err(entry);
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Checks the limits stated on [`SyncResponse`] (all but the encoding's).
    pub(super) fn check(&self) -> Result<(), String> {
        if self.entries.len() > MAX_SYNC_BATCH_ENTRIES {
            return Err(format!(
                "it has {} entries, more than the limit of {MAX_SYNC_BATCH_ENTRIES}",
                self.entries.len()
            ));
        }
        if let Some(i) = self
            .entries
            .iter()
            .position(|e| e.is_empty() || e.len() > MAX_ENTRY_LEN)
        {
            return Err(format!(
                "entry {i} is empty or longer than {MAX_ENTRY_LEN} bytes"
            ));
        }
        Ok(())
    }

    /// The version byte and postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and validates a response from a peer. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "sync response";
        let response: SyncResponse = wire::decode(bytes, MAX_SYNC_BATCH_BYTES, WHAT)?;
        response
            .check()
            .map_err(|reason| DecodeError::Invalid { what: WHAT, reason })?;
        canonical(&response, bytes, WHAT)?;
        Ok(response)
    }

    /// [`SyncResponse::decode`], then checks that it names `circle`.
    pub fn decode_for(bytes: &[u8], circle: CircleId) -> Result<Self, SyncError> {
        let response = Self::decode(bytes)?;
        same_circle(circle, response.circle)?;
        Ok(response)
    }
}

fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

fn same_circle(expected: CircleId, got: CircleId) -> Result<(), SyncError> {
    if expected == got {
        Ok(())
    } else {
        Err(SyncError::WrongCircle { expected, got })
    }
}

pub(super) use crate::wire::canonical;
