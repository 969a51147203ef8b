//! # hearth-node
//!
//! A member's device in the network: the only Hearth crate with sockets. Proto decides, the
//! node carries out.
//!
//! One task, the [`EventLoop`], owns the libp2p swarm, the store and the state machine
//! ([`hearth_proto::circle::Circle`]) of every circle this device is in. The rest of the
//! program talks to it through a cloneable [`Client`] (a bounded channel of commands with
//! oneshot replies) and listens to [`NodeEvent`]s on a broadcast channel.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hearth_node::NodeError> {
//! use hearth_node::{NodeConfig, spawn};
//! use hearth_proto::content::Content;
//! use hearth_proto::membership::CircleSettings;
//!
//! let config = NodeConfig::new("/tmp/hearth-demo", "a passphrase".into());
//! let (client, _task) = spawn(config).await?;
//! let circle = client.create_circle("Tuesday group", "Be kind.", CircleSettings::default(), "Ana").await?;
//! let body = "Hello".parse().expect("a valid message body"); // a blank body would not parse
//! let text = Content::Text { body, reply_to: None, content_warning: None };
//! client.post(circle, text).await?; // returns once the entry is durable
//! # Ok(()) }
//! ```
//!
//! Network: TCP and QUIC with Noise and Yamux; identify and ping; gossipsub with one topic per
//! circle (anonymous messages, message id = entry id, every message validated by proto before
//! it is forwarded, peer scoring); request-response protocols `/hearth/join/1` and
//! `/hearth/sync/3`; Kademlia rendezvous, mDNS, stored addresses and bootstrap peers for
//! discovery; AutoNAT, circuit relay v2 (client, and optionally server for circle peers) and
//! DCUtR for reachability; per-peer rate limits. PROTOCOL.md §13 is the exact
//! description.

mod behaviour;
mod candidates;
mod client;
pub mod codec;
mod config;
mod error;
mod event;
mod node;
mod portmap;
pub mod protocol;
pub mod rate;
mod repair;

pub use behaviour::{
    IDENTIFY_VERSION, JOIN_PROTOCOL, KAD_PROTOCOL, MAX_TRANSMIT_SIZE, SYNC_PROTOCOL, gossip_config,
    message_id, score_params, topic_score_params,
};
pub use client::Client;
pub use config::NodeConfig;
pub use error::NodeError;
pub use event::{
    CircleStatus, CircleSummary, ConnectionInfo, ItemBody, JoinPreview, MemberView, MembersView,
    NodeEvent, NodeStatus, PeerLag, Reachability, RetentionReport, RoundStatus, TimelineItem,
    TimelinePage,
};
pub use node::{EventLoop, new, new_in_memory, spawn, spawn_in_memory};
pub use portmap::PortMapEvent;
pub use repair::{salvage, stored_entry_is_authentic};

/// The timeline read model, which lives in proto (the node only walks its store for it).
pub use hearth_proto::view;

/// Address ranges, as [`NodeConfig::public_ranges`] takes them.
pub use ipnet;
/// The libp2p version this node is built with, for tests and tools that build their own peers.
pub use libp2p;
