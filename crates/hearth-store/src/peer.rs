//! What the device knows about peers: per-circle sync marks (the highest seq received from each
//! author, as reported to or by that peer) and known network addresses.

use std::collections::BTreeMap;

use hearth_proto::ids::MemberId;

use crate::error::StoreError;
use crate::layout::{array_at, u64_at};

/// Longest peer id (a libp2p `PeerId` is 38 bytes).
pub const MAX_PEER_ID_BYTES: usize = 128;
/// Longest address (a multiaddr in text form).
pub const MAX_ADDRESS_BYTES: usize = 512;
/// Addresses kept per peer; adding one more drops the least recently added.
pub const MAX_ADDRESSES_PER_PEER: usize = 16;
/// Most authors in one set of sync marks.
pub const MAX_MARKS: usize = 65_536;

pub(crate) fn check_peer(peer: &[u8]) -> Result<(), StoreError> {
    if peer.is_empty() || peer.len() > MAX_PEER_ID_BYTES {
        return Err(StoreError::invalid(format!(
            "a peer id must be 1 to {MAX_PEER_ID_BYTES} bytes, this one is {}",
            peer.len()
        )));
    }
    Ok(())
}

/// `0x01 ‖ (member (32) ‖ seq (u64 BE))*`
pub(crate) fn encode_marks(marks: &BTreeMap<MemberId, u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + marks.len() * 40);
    out.push(1);
    for (member, seq) in marks {
        out.extend_from_slice(member.as_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
    }
    out
}

pub(crate) fn decode_marks(b: &[u8]) -> Result<BTreeMap<MemberId, u64>, StoreError> {
    let bad = || StoreError::corrupted("a set of peer sync marks is malformed");
    if b.first() != Some(&1) || !(b.len() - 1).is_multiple_of(40) {
        return Err(bad());
    }
    let mut marks = BTreeMap::new();
    for at in (1..b.len()).step_by(40) {
        let member = MemberId::from_bytes(array_at(b, at).ok_or_else(bad)?);
        marks.insert(member, u64_at(b, at + 32).ok_or_else(bad)?);
    }
    Ok(marks)
}

/// `0x01 ‖ (length (u16 BE) ‖ UTF-8)*`, most recently added first.
pub(crate) fn encode_addresses(addrs: &[String]) -> Vec<u8> {
    let mut out = vec![1];
    for a in addrs {
        out.extend_from_slice(&(a.len() as u16).to_be_bytes());
        out.extend_from_slice(a.as_bytes());
    }
    out
}

pub(crate) fn decode_addresses(b: &[u8]) -> Result<Vec<String>, StoreError> {
    let bad = || StoreError::corrupted("a peer address list is malformed");
    if b.first() != Some(&1) {
        return Err(bad());
    }
    let mut addrs = Vec::new();
    let mut at = 1;
    while at < b.len() {
        let len = u16::from_be_bytes(array_at(b, at).ok_or_else(bad)?) as usize;
        let text = b.get(at + 2..at + 2 + len).ok_or_else(bad)?;
        addrs.push(String::from_utf8(text.to_vec()).map_err(|_| bad())?);
        at += 2 + len;
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_addresses_round_trip() {
        let marks: BTreeMap<_, _> = [
            (MemberId::from_bytes([1; 32]), 5),
            (MemberId::from_bytes([2; 32]), u64::MAX),
        ]
        .into();
        assert_eq!(decode_marks(&encode_marks(&marks)).unwrap(), marks);
        assert!(decode_marks(&encode_marks(&marks)[..50]).is_err());
        let addrs = vec!["/ip4/1.2.3.4/tcp/1".to_owned(), String::new()];
        assert_eq!(decode_addresses(&encode_addresses(&addrs)).unwrap(), addrs);
        assert!(decode_addresses(&[1, 0, 9, b'x']).is_err());
    }
}
