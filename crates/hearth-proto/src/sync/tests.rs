//! Tests of the sync bookkeeping, shared across its sub-modules.

use super::*;
use crate::entry::MAX_ENTRY_LEN;
use crate::ids::EntryId;
use crate::wire;
use proptest::prelude::*;

fn member(n: u8) -> MemberId {
    MemberId::from_bytes([n; 32])
}

fn eid(author: u8, seq: u64) -> EntryId {
    let mut bytes = [0u8; 32];
    bytes[0] = author;
    bytes[1..9].copy_from_slice(&seq.to_le_bytes());
    EntryId::from_bytes(bytes)
}

fn other(author: u8, seq: u64) -> EntryId {
    let mut bytes = *eid(author, seq).as_bytes();
    bytes[31] = 0xff;
    EntryId::from_bytes(bytes)
}

/// A log of `n` entries of author `a`, ids from [`eid`].
fn with_log(logs: &mut AuthorLogs, a: u8, n: u64) {
    for seq in 0..n {
        let prev = seq.checked_sub(1).map(|p| eid(a, p));
        assert_eq!(
            logs.classify(&member(a), seq, prev, eid(a, seq)),
            Placement::Next
        );
        logs.append(member(a), seq, eid(a, seq)).unwrap();
    }
}

fn classify(logs: &AuthorLogs, a: u8, seq: u64, id: EntryId) -> Placement {
    let prev = seq.checked_sub(1).map(|p| eid(a, p));
    logs.classify(&member(a), seq, prev, id)
}

#[test]
fn next_at_zero_and_after_head() {
    let mut logs = AuthorLogs::new();
    assert_eq!(classify(&logs, 1, 0, eid(1, 0)), Placement::Next);
    with_log(&mut logs, 1, 3);
    assert_eq!(classify(&logs, 1, 3, eid(1, 3)), Placement::Next);
    assert_eq!(logs.head(&member(1)), Some((2, eid(1, 2))));
    assert_eq!(logs.id_at(&member(1), 1), Some(eid(1, 1)));
    assert_eq!(logs.id_at(&member(1), 3), None);
    assert_eq!(logs.len(), 3);
    assert_eq!(logs.authors().collect::<Vec<_>>(), vec![member(1)]);
}

#[test]
fn duplicate_is_the_same_id_at_a_filled_position() {
    let mut logs = AuthorLogs::new();
    with_log(&mut logs, 1, 3);
    assert_eq!(classify(&logs, 1, 0, eid(1, 0)), Placement::Duplicate);
    assert_eq!(classify(&logs, 1, 2, eid(1, 2)), Placement::Duplicate);
}

#[test]
fn a_different_id_at_a_filled_position_is_equivocation() {
    let mut logs = AuthorLogs::new();
    with_log(&mut logs, 1, 3);
    let Placement::Equivocation(e) = classify(&logs, 1, 1, other(1, 1)) else {
        panic!("expected equivocation");
    };
    assert_eq!(
        e,
        Equivocation {
            author: member(1),
            seq: 1,
            first: eid(1, 1),
            second: other(1, 1),
        }
    );
}

#[test]
fn a_prev_that_is_not_the_head_is_equivocation_at_the_head() {
    let mut logs = AuthorLogs::new();
    with_log(&mut logs, 1, 3);
    let placement = logs.classify(&member(1), 3, Some(other(1, 2)), eid(1, 3));
    assert_eq!(
        placement,
        Placement::Equivocation(Equivocation {
            author: member(1),
            seq: 2,
            first: eid(1, 2),
            second: other(1, 2),
        })
    );
    assert!(
        placement
            .to_string()
            .contains("two different entries at seq 2")
    );
}

#[test]
fn gaps_with_and_without_a_log() {
    let mut logs = AuthorLogs::new();
    assert_eq!(
        classify(&logs, 1, 4, eid(1, 4)),
        Placement::Gap {
            author: member(1),
            missing: 0..=3
        }
    );
    with_log(&mut logs, 1, 2);
    assert_eq!(
        classify(&logs, 1, 5, eid(1, 5)),
        Placement::Gap {
            author: member(1),
            missing: 2..=4
        }
    );
}

#[test]
fn invalid_prev_shapes() {
    let logs = AuthorLogs::new();
    assert_eq!(
        logs.classify(&member(1), 0, Some(eid(1, 0)), eid(1, 0)),
        Placement::Invalid
    );
    assert_eq!(
        logs.classify(&member(1), 3, None, eid(1, 3)),
        Placement::Invalid
    );
}

#[test]
fn anchor_sets_a_horizon() {
    let mut logs = AuthorLogs::new();
    logs.anchor(member(1), 10, eid(1, 10)).unwrap();
    assert_eq!(classify(&logs, 1, 9, eid(1, 9)), Placement::BelowHorizon);
    assert_eq!(classify(&logs, 1, 0, eid(1, 0)), Placement::BelowHorizon);
    // Below the horizon wins over a malformed prev: such entries are ignored either way.
    assert_eq!(
        logs.classify(&member(1), 5, None, eid(1, 5)),
        Placement::BelowHorizon
    );
    assert_eq!(classify(&logs, 1, 10, eid(1, 10)), Placement::Duplicate);
    assert!(matches!(
        classify(&logs, 1, 10, other(1, 10)),
        Placement::Equivocation(_)
    ));
    assert_eq!(classify(&logs, 1, 11, eid(1, 11)), Placement::Next);
    assert_eq!(
        classify(&logs, 1, 13, eid(1, 13)),
        Placement::Gap {
            author: member(1),
            missing: 11..=12
        }
    );
    assert_eq!(logs.head(&member(1)), Some((10, eid(1, 10))));
    assert_eq!(logs.anchor_of(&member(1)), Some((10, eid(1, 10))));
    assert_eq!(logs.len(), 0, "an anchor is not a held entry");
    assert!(logs.is_empty());
    logs.append(member(1), 11, eid(1, 11)).unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs.marks(), HighWaterMarks::from([(member(1), 11)]));
}

#[test]
fn anchoring_a_started_log_fails_and_changes_nothing() {
    let mut logs = AuthorLogs::new();
    with_log(&mut logs, 1, 2);
    let before = logs.clone();
    let err = logs.anchor(member(1), 5, eid(1, 5)).unwrap_err();
    assert_eq!(err, SyncError::AlreadyStarted { author: member(1) });
    assert!(err.to_string().contains("already started"));
    assert_eq!(logs, before);
    logs.anchor(member(2), 5, eid(2, 5)).unwrap();
    assert!(logs.anchor(member(2), 6, eid(2, 6)).is_err());
}

#[test]
fn raising_a_floor_forgets_the_prefix_and_keeps_the_head() {
    let mut logs = AuthorLogs::new();
    with_log(&mut logs, 1, 5);
    let marks = logs.marks();
    // Not held positions: nothing changes.
    assert_eq!(logs.raise_floor(&member(1), 5, eid(1, 5)), None);
    assert_eq!(logs.raise_floor(&member(2), 0, eid(2, 0)), None);
    assert_eq!(
        logs.raise_floor(&member(1), 0, eid(1, 0)),
        Some((0, eid(1, 0)))
    );
    assert_eq!(
        logs.raise_floor(&member(1), 0, eid(1, 0)),
        None,
        "already the anchor"
    );
    assert_eq!(
        logs.raise_floor(&member(1), 2, eid(1, 2)),
        Some((2, eid(1, 2)))
    );
    assert_eq!(
        logs.raise_floor(&member(1), 1, eid(1, 1)),
        None,
        "below the anchor"
    );
    assert_eq!(logs.marks(), marks, "the head does not move");
    assert_eq!(logs.len(), 2, "3 and 4 are held");
    assert_eq!(logs.anchor_of(&member(1)), Some((2, eid(1, 2))));
    assert_eq!(classify(&logs, 1, 1, eid(1, 1)), Placement::BelowHorizon);
    assert_eq!(classify(&logs, 1, 2, eid(1, 2)), Placement::Duplicate);
    assert_eq!(classify(&logs, 1, 4, eid(1, 4)), Placement::Duplicate);
    assert_eq!(classify(&logs, 1, 5, eid(1, 5)), Placement::Next);
    // Peers are offered only what is held, and nothing below the floor is wanted.
    assert_eq!(
        logs.lacking(&HighWaterMarks::new()),
        vec![Want {
            author: member(1),
            from_seq: 3,
            to_seq: 4
        }]
    );
    assert!(
        logs.wants_from(&HighWaterMarks::from([(member(1), 4)]))
            .is_empty()
    );
    // The whole log, up to its head.
    assert_eq!(
        logs.raise_floor(&member(1), 4, eid(1, 4)),
        Some((4, eid(1, 4)))
    );
    assert!(logs.is_empty());
    assert_eq!(logs.head(&member(1)), Some((4, eid(1, 4))));
}

#[test]
fn append_only_takes_the_next_and_changes_nothing_otherwise() {
    let mut logs = AuthorLogs::new();
    with_log(&mut logs, 1, 2);
    let before = logs.clone();
    for (seq, id) in [(1, eid(1, 1)), (1, other(1, 1)), (5, eid(1, 5))] {
        let err = logs.append(member(1), seq, id).unwrap_err();
        assert!(matches!(err, SyncError::NotNext(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("the entry cannot be appended because")
        );
    }
    assert!(logs.append(member(2), 1, eid(2, 1)).is_err());
    assert_eq!(logs, before);
}

#[test]
fn gap_then_fill() {
    let mut logs = AuthorLogs::new();
    with_log(&mut logs, 1, 1);
    // Seq 3 arrives first: held by the caller.
    let held = (3, eid(1, 3));
    assert_eq!(
        classify(&logs, 1, held.0, held.1),
        Placement::Gap {
            author: member(1),
            missing: 1..=2
        }
    );
    assert!(logs.append(member(1), held.0, held.1).is_err());
    // The gap is filled in order, then the held entry fits.
    for seq in 1..=2 {
        assert_eq!(classify(&logs, 1, seq, eid(1, seq)), Placement::Next);
        logs.append(member(1), seq, eid(1, seq)).unwrap();
    }
    assert_eq!(classify(&logs, 1, held.0, held.1), Placement::Next);
    logs.append(member(1), held.0, held.1).unwrap();
    assert_eq!(logs.head(&member(1)), Some((3, eid(1, 3))));
    assert_eq!(logs.len(), 4);
}

#[test]
fn lacking_and_wants_from() {
    let mut mine = AuthorLogs::new();
    with_log(&mut mine, 1, 5);
    with_log(&mut mine, 2, 2);
    let mut theirs = AuthorLogs::new();
    with_log(&mut theirs, 1, 3);
    with_log(&mut theirs, 3, 4);
    assert_eq!(
        mine.lacking(&theirs.marks()),
        vec![
            Want {
                author: member(1),
                from_seq: 3,
                to_seq: 4
            },
            Want {
                author: member(2),
                from_seq: 0,
                to_seq: 1
            },
        ]
    );
    assert_eq!(
        mine.wants_from(&theirs.marks()),
        vec![Want {
            author: member(3),
            from_seq: 0,
            to_seq: 3
        }]
    );
    assert_eq!(
        mine.wants_from(&theirs.marks()),
        theirs.lacking(&mine.marks())
    );
    assert_eq!(mine.lacking(&mine.marks()), vec![]);
}

#[test]
fn lacking_never_offers_what_is_below_or_at_the_horizon() {
    let mut newcomer = AuthorLogs::new();
    newcomer.anchor(member(1), 10, eid(1, 10)).unwrap();
    newcomer.anchor(member(2), 4, eid(2, 4)).unwrap();
    for seq in 11..=12 {
        newcomer.append(member(1), seq, eid(1, seq)).unwrap();
    }
    // A peer that holds nothing: only the held entries 11..=12 are offered.
    assert_eq!(
        newcomer.lacking(&HighWaterMarks::new()),
        vec![Want {
            author: member(1),
            from_seq: 11,
            to_seq: 12
        }]
    );
    // The newcomer asks only for what follows her horizon.
    let old = HighWaterMarks::from([(member(1), 20), (member(2), 4)]);
    assert_eq!(
        newcomer.wants_from(&old),
        vec![Want {
            author: member(1),
            from_seq: 13,
            to_seq: 20
        }]
    );
}

#[test]
fn serving_uses_explicit_wants_clamped_to_what_is_held() {
    let mut logs = AuthorLogs::new();
    with_log(&mut logs, 1, 10);
    with_log(&mut logs, 2, 3);
    let circle = CircleId::from_bytes([9; 32]);
    let by_marks =
        SyncRequest::new(circle, HighWaterMarks::from([(member(1), 7)]), vec![], 100).unwrap();
    assert_eq!(logs.serving(&by_marks), logs.lacking(&by_marks.marks));
    let explicit = SyncRequest::new(
        circle,
        HighWaterMarks::new(),
        vec![
            Want {
                author: member(1),
                from_seq: 8,
                to_seq: 50,
            },
            Want {
                author: member(2),
                from_seq: 5,
                to_seq: 6,
            },
            Want {
                author: member(3),
                from_seq: 0,
                to_seq: 6,
            },
        ],
        100,
    )
    .unwrap();
    assert_eq!(
        logs.serving(&explicit),
        vec![Want {
            author: member(1),
            from_seq: 8,
            to_seq: 9
        }]
    );
}

#[test]
fn plan_batch_round_robins_by_rank_and_caps() {
    let wants = [
        Want {
            author: member(1),
            from_seq: 5,
            to_seq: 7,
        },
        Want {
            author: member(2),
            from_seq: 0,
            to_seq: 0,
        },
        Want {
            author: member(3),
            from_seq: 2,
            to_seq: 3,
        },
    ];
    assert_eq!(
        plan_batch(&wants, 100),
        vec![
            (member(1), 5),
            (member(2), 0),
            (member(3), 2),
            (member(1), 6),
            (member(3), 3),
            (member(1), 7),
        ]
    );
    assert_eq!(plan_batch(&wants, 2), vec![(member(1), 5), (member(2), 0)]);
    let huge = [Want {
        author: member(1),
        from_seq: 0,
        to_seq: u64::MAX,
    }];
    assert_eq!(plan_batch(&huge, usize::MAX).len(), MAX_SYNC_BATCH_ENTRIES);
    assert_eq!(plan_batch(&huge, 0), vec![]);
}

#[test]
fn plan_batch_causal_merges_by_lamport_and_stops_at_missing_entries() {
    let wants = [
        Want {
            author: member(1),
            from_seq: 0,
            to_seq: 2,
        },
        Want {
            author: member(2),
            from_seq: 0,
            to_seq: 2,
        },
    ];
    // Author 1 wrote at lamports 1, 2, 9; author 2 at 3, 4, 5 (she saw 1's first two).
    let lamport = |a: MemberId, seq: u64| -> Option<u64> {
        Some(if a == member(1) {
            [1, 2, 9][seq as usize]
        } else {
            [3, 4, 5][seq as usize]
        })
    };
    assert_eq!(
        plan_batch_causal(&wants, 100, lamport),
        vec![
            (member(1), 0),
            (member(1), 1),
            (member(2), 0),
            (member(2), 1),
            (member(2), 2),
            (member(1), 2),
        ]
    );
    assert_eq!(plan_batch_causal(&wants, 3, lamport).len(), 3);
    let missing = |a: MemberId, seq: u64| (a != member(2) || seq == 0).then_some(seq);
    assert_eq!(
        plan_batch_causal(&wants, 100, missing),
        vec![
            (member(1), 0),
            (member(2), 0),
            (member(1), 1),
            (member(1), 2)
        ]
    );
}

fn fork(a: u8, seq: u64) -> Equivocation {
    Equivocation {
        author: member(a),
        seq,
        first: eid(a, seq),
        second: other(a, seq),
    }
}

#[test]
fn equivocation_evidence_is_deduplicated_and_bounded() {
    let mut log = EquivocationLog::new();
    assert!(log.is_empty());
    assert!(log.record(fork(1, 2)));
    assert!(!log.record(fork(1, 2)), "same evidence again");
    assert_eq!(log.of(&member(1)), &[fork(1, 2)]);
    // The same two ids in the other order are the same fork.
    let mut swapped = fork(1, 2);
    std::mem::swap(&mut swapped.first, &mut swapped.second);
    assert!(!log.record(swapped));
    // Not an equivocation at all.
    let mut same = fork(1, 4);
    same.second = same.first;
    assert!(!log.record(same));
    for seq in 10..20 {
        log.record(fork(1, seq));
    }
    assert_eq!(log.of(&member(1)).len(), MAX_EVIDENCE_PER_AUTHOR);
    assert!(log.record(fork(2, 0)));
    assert!(log.is_equivocator(&member(1)));
    assert!(!log.is_equivocator(&member(3)));
    assert_eq!(
        log.equivocators().collect::<Vec<_>>(),
        vec![member(1), member(2)]
    );
    assert_eq!(log.len(), MAX_EVIDENCE_PER_AUTHOR + 1);
    assert_eq!(log.iter().count(), log.len());
    let bytes = wire::encode(&log);
    assert_eq!(
        wire::decode::<EquivocationLog>(&bytes, 1 << 20, "evidence").unwrap(),
        log
    );
}

#[test]
fn classify_feeds_the_evidence_log() {
    let mut logs = AuthorLogs::new();
    with_log(&mut logs, 1, 3);
    let mut evidence = EquivocationLog::new();
    for placement in [
        classify(&logs, 1, 1, other(1, 1)),
        classify(&logs, 1, 1, other(1, 1)),
        logs.classify(&member(1), 3, Some(other(1, 2)), eid(1, 3)),
    ] {
        let Placement::Equivocation(e) = placement else {
            panic!("expected equivocation");
        };
        evidence.record(e);
    }
    assert_eq!(evidence.len(), 2);
    assert_eq!(
        logs.head(&member(1)),
        Some((2, eid(1, 2))),
        "the log keeps the first branch"
    );
}

fn sample_request() -> SyncRequest {
    SyncRequest::new(
        CircleId::from_bytes([0xc1; 32]),
        HighWaterMarks::from([(member(1), 300), (member(2), 0)]),
        vec![Want {
            author: member(2),
            from_seq: 1,
            to_seq: 2,
        }],
        512,
    )
    .unwrap()
}

#[test]
fn request_round_trip_and_exact_bytes() {
    let request = sample_request();
    let bytes = request.encode();
    assert_eq!(SyncRequest::decode(&bytes).unwrap(), request);
    let mut expected = vec![0x01];
    expected.extend([0xc1; 32]);
    expected.push(2);
    expected.extend([1; 32]);
    expected.extend([0xac, 0x02]);
    expected.extend([2; 32]);
    expected.push(0);
    expected.push(1);
    expected.extend([2; 32]);
    expected.extend([1, 2]);
    expected.extend([0x80, 0x04]);
    assert_eq!(hex::encode(&bytes), hex::encode(&expected));
    assert_eq!(
        SyncRequest::decode_for(&bytes, CircleId::from_bytes([0; 32])),
        Err(SyncError::WrongCircle {
            expected: CircleId::from_bytes([0; 32]),
            got: request.circle
        })
    );
    assert!(SyncRequest::decode_for(&bytes, request.circle).is_ok());
}

#[test]
fn request_limits_are_enforced_both_ways() {
    let circle = CircleId::from_bytes([1; 32]);
    let marks: HighWaterMarks = (0..=MAX_SYNC_MARKS as u16)
        .map(|i| {
            let mut b = [0u8; 32];
            b[..2].copy_from_slice(&i.to_be_bytes());
            (MemberId::from_bytes(b), u64::MAX)
        })
        .collect();
    let too_many = SyncRequest {
        circle,
        marks: marks.clone(),
        want: vec![],
        max_entries: 1,
    };
    assert!(matches!(
        too_many.check(),
        Err(SyncError::TooMany { count: 1025, .. })
    ));
    assert!(matches!(
        SyncRequest::decode(&too_many.encode()),
        Err(DecodeError::TooLarge { .. } | DecodeError::Invalid { .. })
    ));
    // The largest valid request fits the byte limit.
    let mut marks = marks;
    marks.pop_last();
    let want: Vec<Want> = marks
        .keys()
        .map(|a| Want {
            author: *a,
            from_seq: u64::MAX,
            to_seq: u64::MAX,
        })
        .collect();
    let largest = SyncRequest::new(circle, marks, want, u32::MAX).unwrap();
    let bytes = largest.encode();
    assert_eq!(bytes.len(), 96_298);
    assert!(bytes.len() <= MAX_SYNC_REQUEST_BYTES);
    assert_eq!(SyncRequest::decode(&bytes).unwrap(), largest);
    // Wants out of order, repeated, or backwards.
    let w = |a, f, t| Want {
        author: member(a),
        from_seq: f,
        to_seq: t,
    };
    for want in [
        vec![w(2, 0, 1), w(1, 0, 1)],
        vec![w(1, 0, 1), w(1, 3, 4)],
        vec![w(1, 5, 4)],
    ] {
        let bad = SyncRequest {
            circle,
            marks: HighWaterMarks::new(),
            want,
            max_entries: 1,
        };
        assert_eq!(bad.check(), Err(SyncError::BadWants));
        assert!(matches!(
            SyncRequest::decode(&bad.encode()),
            Err(DecodeError::Invalid { .. })
        ));
    }
}

#[test]
fn non_canonical_requests_are_rejected() {
    let circle = [0xc1; 32];
    // Marks with the keys in descending order (postcard would accept them).
    let mut bytes = vec![0x01];
    bytes.extend(circle);
    bytes.push(2);
    bytes.extend([2; 32]);
    bytes.push(0);
    bytes.extend([1; 32]);
    bytes.push(0);
    bytes.push(0);
    bytes.push(1);
    let err = SyncRequest::decode(&bytes).unwrap_err();
    assert!(err.to_string().contains("not canonical"), "{err}");
    // An over-long varint for max_entries.
    let mut long = sample_request().encode();
    let n = long.len();
    long[n - 1] = 0x84;
    long.push(0);
    assert!(SyncRequest::decode(&long).is_err());
}

#[test]
fn response_round_trip_exact_bytes_and_limits() {
    let circle = CircleId::from_bytes([0xc1; 32]);
    let mut response = SyncResponse::new(circle);
    response.try_push(vec![0xaa, 0xbb]).unwrap();
    response.try_push(vec![0xcc]).unwrap();
    response.more = true;
    let bytes = response.encode();
    assert_eq!(bytes.len(), response.encoded_len());
    let mut expected = vec![0x01];
    expected.extend([0xc1; 32]);
    expected.extend([2, 2, 0xaa, 0xbb, 1, 0xcc, 1]);
    assert_eq!(bytes, expected);
    assert_eq!(SyncResponse::decode(&bytes).unwrap(), response);
    assert!(SyncResponse::decode_for(&bytes, circle).is_ok());
    assert!(matches!(
        SyncResponse::decode_for(&bytes, CircleId::from_bytes([0; 32])),
        Err(SyncError::WrongCircle { .. })
    ));
    // Empty and oversized entries are refused both when building and when decoding.
    assert!(response.try_push(vec![]).is_err());
    assert!(response.try_push(vec![0; MAX_ENTRY_LEN + 1]).is_err());
    for entries in [vec![vec![]], vec![vec![0; MAX_ENTRY_LEN + 1]]] {
        let bad = SyncResponse {
            circle,
            entries,
            more: false,
        };
        assert!(matches!(
            SyncResponse::decode(&bad.encode()),
            Err(DecodeError::Invalid { .. })
        ));
    }
    let too_many = SyncResponse {
        circle,
        entries: vec![vec![1]; MAX_SYNC_BATCH_ENTRIES + 1],
        more: false,
    };
    assert!(matches!(
        SyncResponse::decode(&too_many.encode()),
        Err(DecodeError::Invalid { .. })
    ));
    // A bool other than 0 or 1.
    let mut bad_bool = bytes.clone();
    *bad_bool.last_mut().unwrap() = 2;
    assert!(SyncResponse::decode(&bad_bool).is_err());
}

#[test]
fn try_push_stops_at_the_byte_and_count_limits() {
    let mut response = SyncResponse::new(CircleId::from_bytes([1; 32]));
    let mut pushed = 0;
    while response.try_push(vec![7; MAX_ENTRY_LEN]).is_ok() {
        pushed += 1;
        assert_eq!(response.encoded_len(), response.encode().len());
    }
    assert_eq!(pushed, MAX_SYNC_BATCH_BYTES / (MAX_ENTRY_LEN + 3));
    assert!(response.encoded_len() <= MAX_SYNC_BATCH_BYTES);
    // A smaller entry may still fit.
    response.try_push(vec![7; 1000]).unwrap();
    assert!(SyncResponse::decode(&response.encode()).is_ok());

    let mut small = SyncResponse::new(CircleId::from_bytes([1; 32]));
    for _ in 0..MAX_SYNC_BATCH_ENTRIES {
        small.try_push(vec![1; 100]).unwrap();
    }
    assert_eq!(small.try_push(vec![1; 100]), Err(vec![1; 100]));
    assert_eq!(small.encoded_len(), small.encode().len());
}

#[test]
fn errors_read_as_sentences() {
    let err = SyncError::NotNext(Box::new(Placement::Gap {
        author: member(1),
        missing: 2..=4,
    }));
    assert_eq!(
        err.to_string(),
        "the entry cannot be appended because entries 2 to 4 of author 01010101 are missing"
    );
    assert!(
        SyncError::BadWants
            .to_string()
            .starts_with("the wanted ranges")
    );
}

/// A common history: per author, a chain of ids.
fn history(lengths: &[u64]) -> Vec<Vec<EntryId>> {
    lengths
        .iter()
        .enumerate()
        .map(|(a, n)| (0..*n).map(|seq| eid(a as u8 + 1, seq)).collect())
        .collect()
}

/// A member holding `prefix[a]` entries of author `a` (0: none), or, when `anchor[a]` is
/// set, the entries after the anchor up to the prefix.
fn holding(history: &[Vec<EntryId>], prefix: &[usize], anchor: &[Option<usize>]) -> AuthorLogs {
    let mut logs = AuthorLogs::new();
    for (a, chain) in history.iter().enumerate() {
        let author = member(a as u8 + 1);
        let start = match anchor[a] {
            Some(at) => {
                logs.anchor(author, at as u64, chain[at]).unwrap();
                at + 1
            }
            None => 0,
        };
        for (seq, id) in chain.iter().enumerate().take(prefix[a]).skip(start) {
            logs.append(author, seq as u64, *id).unwrap();
        }
    }
    logs
}

/// Applies `plan` from `history` to `to`, in order, asserting every entry is next.
fn apply(to: &mut AuthorLogs, history: &[Vec<EntryId>], plan: &[(MemberId, u64)]) {
    for (author, seq) in plan {
        let chain = &history[author.as_bytes()[0] as usize - 1];
        let prev = seq.checked_sub(1).map(|p| chain[p as usize]);
        let id = chain[*seq as usize];
        assert_eq!(
            to.classify(author, *seq, prev, id),
            Placement::Next,
            "{author:?} {seq}"
        );
        to.append(*author, *seq, id).unwrap();
    }
}

/// A common history, the prefixes two members hold of it, and shared anchors.
type Scenario = (
    Vec<Vec<EntryId>>,
    Vec<usize>,
    Vec<usize>,
    Vec<Option<usize>>,
);

fn scenario() -> impl Strategy<Value = Scenario> {
    proptest::collection::vec(
        (
            1u64..40,
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
            any::<bool>(),
        ),
        1..8,
    )
    .prop_map(|authors| {
        let lengths: Vec<u64> = authors.iter().map(|a| a.0).collect();
        let h = history(&lengths);
        let mut a_prefix = Vec::new();
        let mut b_prefix = Vec::new();
        let mut anchors = Vec::new();
        for (n, pa, pb, anc, anchored) in authors {
            let n = n as usize;
            let anchor = anchored.then_some(anc as usize % n);
            // With an anchor, both members hold at least up to it.
            let low = anchor.map_or(0, |at| at + 1);
            a_prefix.push(low + pa as usize % (n + 1 - low));
            b_prefix.push(low + pb as usize % (n + 1 - low));
            anchors.push(anchor);
        }
        (h, a_prefix, b_prefix, anchors)
    })
}

proptest! {
    #[test]
    fn exchanging_lacking_ranges_makes_marks_equal((h, pa, pb, anchors) in scenario()) {
        let mut a = holding(&h, &pa, &anchors);
        let mut b = holding(&h, &pb, &anchors);
        // Symmetry: what A lacks from B is what B finds A lacking.
        prop_assert_eq!(a.wants_from(&b.marks()), b.lacking(&a.marks()));
        prop_assert_eq!(b.wants_from(&a.marks()), a.lacking(&b.marks()));
        let to_b = a.lacking(&b.marks());
        let to_a = b.lacking(&a.marks());
        for want in &to_b {
            let plan: Vec<_> = want.seqs().map(|s| (want.author, s)).collect();
            apply(&mut b, &h, &plan);
        }
        for want in &to_a {
            let plan: Vec<_> = want.seqs().map(|s| (want.author, s)).collect();
            apply(&mut a, &h, &plan);
        }
        prop_assert_eq!(a.marks(), b.marks());
        prop_assert_eq!(a.len(), b.len());
        prop_assert!(a.lacking(&b.marks()).is_empty());
    }

    #[test]
    fn batches_in_plan_order_always_apply((h, pa, pb, anchors) in scenario(), per_batch in 1usize..20, causal in any::<bool>()) {
        let a = holding(&h, &pa, &anchors);
        let mut b = holding(&h, &pb, &anchors);
        let lamport = |author: MemberId, seq: u64| Some(seq * 7 + u64::from(author.as_bytes()[0]));
        for _round in 0..10_000 {
            let wants = a.lacking(&b.marks());
            if wants.is_empty() {
                break;
            }
            let plan = if causal {
                plan_batch_causal(&wants, per_batch, lamport)
            } else {
                plan_batch(&wants, per_batch)
            };
            prop_assert_eq!(plan.len() as u64, wants.iter().map(Want::count).sum::<u64>().min(per_batch as u64));
            apply(&mut b, &h, &plan);
        }
        let mut merged = b.marks();
        for (author, mark) in a.marks() {
            let slot = merged.entry(author).or_insert(mark);
            *slot = (*slot).max(mark);
        }
        prop_assert_eq!(b.marks(), merged);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = SyncRequest::decode(&bytes);
        let _ = SyncResponse::decode(&bytes);
        let mut versioned = vec![wire::WIRE_VERSION];
        versioned.extend_from_slice(&bytes);
        let _ = SyncRequest::decode(&versioned);
        let _ = SyncResponse::decode(&versioned);
        let _ = wire::decode::<EquivocationLog>(&versioned, 1 << 20, "evidence");
    }

    #[test]
    fn mutated_requests_never_panic_and_valid_ones_round_trip(
        marks in proptest::collection::btree_map(any::<[u8; 32]>(), any::<u64>(), 0..20),
        want in proptest::collection::btree_map(any::<[u8; 32]>(), (any::<u64>(), any::<u64>()), 0..20),
        max_entries in any::<u32>(),
        flip in any::<(usize, u8)>(),
    ) {
        let request = SyncRequest::new(
            CircleId::from_bytes([3; 32]),
            marks.into_iter().map(|(a, m)| (MemberId::from_bytes(a), m)).collect(),
            want.into_iter().map(|(a, (x, y))| Want { author: MemberId::from_bytes(a), from_seq: x.min(y), to_seq: x.max(y) }).collect(),
            max_entries,
        ).unwrap();
        let mut bytes = request.encode();
        prop_assert_eq!(SyncRequest::decode(&bytes).unwrap(), request);
        let at = flip.0 % bytes.len();
        bytes[at] ^= flip.1;
        let _ = SyncRequest::decode(&bytes);
        bytes.truncate(at);
        let _ = SyncRequest::decode(&bytes);
    }

    #[test]
    fn responses_round_trip(entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..40), more in any::<bool>()) {
        let mut response = SyncResponse::new(CircleId::from_bytes([4; 32]));
        for e in entries {
            response.try_push(e).unwrap();
        }
        response.more = more;
        let bytes = response.encode();
        prop_assert_eq!(bytes.len(), response.encoded_len());
        prop_assert_eq!(SyncResponse::decode(&bytes).unwrap(), response);
    }
}
