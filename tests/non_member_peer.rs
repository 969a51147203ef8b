//! A non-member libp2p peer that connects to a member, subscribes to the circle's topic and
//! speaks the sync protocol (with no proof, a forged proof, and a valid signature of a key
//! that is not a member's) gets no entry, no marks and no byte string containing the circle
//! id over sync, and is told nothing durable was kept about it; members still sync.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::*;
use futures::StreamExt;
use hearth_node::SYNC_PROTOCOL;
use hearth_node::codec::Codec;
use hearth_node::libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use hearth_node::libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use hearth_node::libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use hearth_node::libp2p::{self, Multiaddr, PeerId, Swarm, noise, tcp, yamux};
use hearth_node::protocol::{SyncRequestFrame, SyncResponseFrame};
use hearth_proto::epoch::CircleSecret;
use hearth_proto::identity::MemberSecret;
use hearth_proto::sync::proof::{
    self, Binding, PeerRequest, PeerResponse, SEALED_PROOF_LEN, SealedProof, Side,
};
use hearth_proto::sync::{HighWaterMarks, SyncRequest, Want};
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot};

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "hearth_node::libp2p::swarm::derive_prelude")]
struct Outsider {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<Codec<SyncRequestFrame, SyncResponseFrame>>,
}

/// What the outsider saw: every sync message it was sent (encoded), and how its own
/// requests were answered.
#[derive(Default)]
struct Seen {
    inbound_requests: Vec<PeerRequest>,
    responses: Vec<PeerResponse>,
    /// Entries that reached it by gossip.
    gossip: Vec<Vec<u8>>,
}

enum Cmd {
    Dial(Multiaddr),
    Subscribe(String),
    Request(
        PeerId,
        PeerRequest,
        oneshot::Sender<Result<PeerResponse, String>>,
    ),
    Seen(oneshot::Sender<Seen>),
}

/// A raw libp2p swarm with gossipsub and Hearth's sync codec. It answers a member's hello
/// with a challenge, a member's proof with a forged proof, and anything else with `Refused`.
struct OutsiderPeer {
    peer_id: PeerId,
    commands: mpsc::Sender<Cmd>,
    task: tokio::task::JoinHandle<()>,
}

impl OutsiderPeer {
    async fn start() -> Result<OutsiderPeer> {
        let gossip_config =
            hearth_node::gossip_config(Duration::from_millis(200), Duration::from_secs(60))
                .map_err(anyhow::Error::msg)?;
        let mut swarm: Swarm<Outsider> = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|_| Outsider {
                gossipsub: gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)
                    .expect("valid gossipsub config"),
                sync: request_response::Behaviour::new(
                    [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(10)),
                ),
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
        let peer_id = *swarm.local_peer_id();
        let (commands, mut rx) = mpsc::channel::<Cmd>(16);
        let task = tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut waiting: std::collections::HashMap<
                OutboundRequestId,
                oneshot::Sender<Result<PeerResponse, String>>,
            > = Default::default();
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(Cmd::Dial(addr)) => { let _ = swarm.dial(addr); }
                        Some(Cmd::Subscribe(topic)) => {
                            let _ = swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(topic));
                        }
                        Some(Cmd::Request(peer, request, reply)) => {
                            let id = swarm.behaviour_mut().sync.send_request(&peer, SyncRequestFrame(request));
                            waiting.insert(id, reply);
                        }
                        Some(Cmd::Seen(reply)) => { let _ = reply.send(std::mem::take(&mut seen)); }
                        None => break,
                    },
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::Behaviour(OutsiderEvent::Sync(request_response::Event::Message { message, .. })) => match message {
                            request_response::Message::Request { request, channel, .. } => {
                                let answer = match &request.0 {
                                    PeerRequest::Hello { .. } => PeerResponse::Challenge { challenge: [5; 32] },
                                    // A "proof" it cannot seal: it never held the circle secret.
                                    PeerRequest::Prove(_) => PeerResponse::Proved(SealedProof(vec![0x5a; SEALED_PROOF_LEN])),
                                    PeerRequest::Sync(_) => PeerResponse::Refused,
                                };
                                seen.inbound_requests.push(request.0);
                                let _ = swarm.behaviour_mut().sync.send_response(channel, SyncResponseFrame::new(answer));
                            }
                            request_response::Message::Response { request_id, response } => {
                                seen.responses.push(response.response.clone());
                                if let Some(reply) = waiting.remove(&request_id) {
                                    let _ = reply.send(Ok(response.response));
                                }
                            }
                        },
                        SwarmEvent::Behaviour(OutsiderEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                            seen.gossip.push(message.data);
                        }
                        SwarmEvent::Behaviour(OutsiderEvent::Sync(request_response::Event::OutboundFailure { request_id, error, .. })) => {
                            if let Some(reply) = waiting.remove(&request_id) {
                                let _ = reply.send(Err(error.to_string()));
                            }
                        }
                        _ => {}
                    },
                }
            }
        });
        Ok(OutsiderPeer {
            peer_id,
            commands,
            task,
        })
    }

    async fn request(&self, peer: PeerId, request: PeerRequest) -> Result<PeerResponse> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Cmd::Request(peer, request, tx)).await?;
        tokio::time::timeout(Duration::from_secs(15), rx)
            .await
            .context("no answer to a sync request")??
            .map_err(anyhow::Error::msg)
    }

    async fn seen(&self) -> Result<Seen> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Cmd::Seen(tx)).await?;
        Ok(rx.await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_peer_gets_no_entry_no_marks_and_no_circle_id() -> Result<()> {
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 2).await?;
    let circle = circle_of(&nodes, "closed").await?;
    let (a, b) = (nodes[0].client.clone(), nodes[1].client.clone());
    a.post(circle, text("written before the outsider came"))
        .await?;
    wait_for_texts(&b, circle, 1, Duration::from_secs(10)).await?;
    let topic = a.topic(circle).await?;
    let a_peer = a.peer_id();
    let members = a.members(circle).await?;
    let member_ids: Vec<_> = members.members.iter().map(|m| m.member).collect();
    // The topic name is derived from the circle's secret, not from its id.
    assert!(!topic.contains(&circle.to_string()));

    let outsider = OutsiderPeer::start().await?;
    outsider
        .commands
        .send(Cmd::Subscribe(topic.clone()))
        .await?;
    outsider
        .commands
        .send(Cmd::Dial(nodes[0].address().await?))
        .await?;

    // 1. A catch-up request without any proof, naming the circle and asking for everything.
    let everything = SyncRequest::new(circle, HighWaterMarks::new(), Vec::new(), 512)?;
    let mut answers = Vec::new();
    let mut connected = false;
    for _ in 0..40 {
        match outsider
            .request(a_peer, PeerRequest::Sync(everything.clone()))
            .await
        {
            Ok(answer) => {
                answers.push(answer);
                connected = true;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(connected, "the outsider reached the member");
    // Explicit ranges of every member's log, too.
    let mut wants: Vec<Want> = member_ids
        .iter()
        .map(|m| Want {
            author: *m,
            from_seq: 0,
            to_seq: 1000,
        })
        .collect();
    wants.sort();
    let ranges = SyncRequest::new(circle, HighWaterMarks::new(), wants, 512)?;
    answers.push(
        outsider
            .request(a_peer, PeerRequest::Sync(ranges.clone()))
            .await?,
    );

    // 2. A hello, then a forged proof: a member's id with a signature by another key.
    let me = outsider.peer_id.to_bytes();
    let them = a_peer.to_bytes();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let stranger = MemberSecret::generate(&mut rng);
    let hello = outsider
        .request(a_peer, PeerRequest::Hello { challenge: [1; 32] })
        .await?;
    let PeerResponse::Challenge { challenge } = hello else {
        bail!("a hello is answered with a challenge, not {hello:?}");
    };
    let binding = Binding {
        requester: &me,
        responder: &them,
        requester_challenge: [1; 32],
        responder_challenge: challenge,
    };
    // It knows the circle id (a test shortcut) but not the circle secret, so it seals under
    // a key of its own guessing.
    let guessed = CircleSecret::from_bytes([0x77; 32]).proof_seal_key();
    let mut forged = proof::sign(&stranger, Side::Requester, &circle, &binding)?;
    forged.member = member_ids[0];
    let forged = proof::seal(&forged, &guessed, Side::Requester, &circle, &binding)?;
    answers.push(outsider.request(a_peer, PeerRequest::Prove(forged)).await?);
    answers.push(
        outsider
            .request(a_peer, PeerRequest::Sync(everything.clone()))
            .await?,
    );

    // 3. A valid signature over the right transcript, by a key that is not a member's.
    let hello = outsider
        .request(a_peer, PeerRequest::Hello { challenge: [2; 32] })
        .await?;
    let PeerResponse::Challenge { challenge } = hello else {
        bail!("a hello is answered with a challenge, not {hello:?}");
    };
    let binding = Binding {
        requester_challenge: [2; 32],
        responder_challenge: challenge,
        ..binding
    };
    let own = proof::prove(&stranger, &guessed, Side::Requester, &circle, &binding)?;
    answers.push(outsider.request(a_peer, PeerRequest::Prove(own)).await?);
    answers.push(outsider.request(a_peer, PeerRequest::Sync(ranges)).await?);
    // 4. A garbage signature with a member's id, without asking for a challenge first.
    answers.push(
        outsider
            .request(
                a_peer,
                PeerRequest::Prove(SealedProof(vec![0; SEALED_PROOF_LEN])),
            )
            .await?,
    );

    for answer in &answers {
        assert_eq!(
            answer,
            &PeerResponse::Refused,
            "a peer that did not prove membership is refused"
        );
    }

    // Let the member's own sync attempts towards the subscribed outsider run (it starts one
    // on subscription and one every sync interval).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = outsider.seen().await?;
    let circle_bytes = circle.as_bytes();
    for request in &seen.inbound_requests {
        assert!(
            !matches!(request, PeerRequest::Sync(_)),
            "a member sent its marks to a peer that did not prove membership"
        );
        assert!(!contains(&request.encode(), circle_bytes));
        // The member proves first, sealed: the unproven subscriber cannot read who she is
        // (a member id is stable for the circle's life, so it would link her across epochs).
        for member in &member_ids {
            assert!(
                !contains(&request.encode(), member.as_bytes()),
                "a member id reached a peer that did not prove membership"
            );
        }
    }
    for response in &seen.responses {
        assert!(!matches!(response, PeerResponse::Sync(_)), "no entry");
        assert!(!contains(&response.encode(), circle_bytes));
    }
    assert!(
        seen.inbound_requests
            .iter()
            .any(|r| matches!(r, PeerRequest::Prove(_))),
        "the member tried to sync with the subscriber (and stopped at its forged proof)"
    );
    // Gossip: the member keeps the subscribed outsider below gossipsub's publish threshold
    // (nothing is published, meshed or gossiped to it) and the proven member b at zero or
    // above.
    let status = a.status().await?;
    let score_of = |peer: PeerId| {
        status
            .connected
            .iter()
            .find(|(p, _)| *p == peer)
            .and_then(|(_, score)| *score)
    };
    let outsider_score = score_of(outsider.peer_id).context("the outsider is connected")?;
    assert!(
        outsider_score < -50.0,
        "an unproven subscriber scores {outsider_score}"
    );
    let b_score = score_of(b.peer_id()).context("b is connected")?;
    assert!(b_score >= 0.0, "the proven member b scores {b_score}");
    // No marks were kept for the outsider.
    let status = a.status().await?;
    assert!(
        status.circles[0]
            .lag
            .iter()
            .all(|l| l.peer != outsider.peer_id),
        "marks kept for a non-member"
    );

    // Members still sync with each other: b misses three posts while stopped and catches up
    // from a by sync when it comes back.
    let mut nodes = nodes;
    let b_node = nodes.pop().context("two nodes")?;
    let b_dir = b_node.stop().await?;
    for n in 0..3 {
        a.post(circle, text(&format!("while b was away {n}")))
            .await?;
    }
    let b = start(config(&b_dir)).await?;
    b.client.dial(nodes[0].address().await?).await?;
    let got = wait_for_texts(&b.client, circle, 4, Duration::from_secs(20)).await?;
    assert_eq!(got.len(), 4);
    // The outsider stayed subscribed and connected through those posts and got none of them
    // (nor the first) by gossip.
    let late = outsider.seen().await?;
    assert!(
        seen.gossip.is_empty() && late.gossip.is_empty(),
        "{} entries reached a non-member by gossip",
        seen.gossip.len() + late.gossip.len()
    );
    assert!(
        a.status()
            .await?
            .connected
            .iter()
            .any(|(p, _)| *p == outsider.peer_id),
        "the outsider was still connected to the member while she posted"
    );

    outsider.task.abort();
    b.stop().await?;
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
