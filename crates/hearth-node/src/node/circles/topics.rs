//! The gossip topics and rendezvous keys each circle is followed on, as proto names them for
//! its live epochs, and what changes when this device stops being a member.

use hearth_proto::CircleId;
use libp2p::gossipsub::IdentTopic;

use crate::behaviour::topic_score_params;
use crate::event::NodeEvent;
use crate::node::EventLoop;

impl EventLoop {
    /// Leaves every topic and rendezvous key of a circle this device forgets.
    pub(super) fn leave_topics(&mut self, circle: CircleId) {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        let behaviour = self.swarm.behaviour_mut();
        for topic in std::mem::take(&mut slot.topics) {
            if slot.subscribed {
                behaviour.gossipsub.unsubscribe(&topic);
            }
            self.topics.remove(&topic.hash());
        }
        slot.subscribed = false;
        for key in std::mem::take(&mut slot.rendezvous) {
            behaviour
                .kad
                .stop_providing(&libp2p::kad::RecordKey::new(&key));
        }
    }

    /// Follows the circle's live topics and rendezvous keys as proto names them
    /// (`Circle::topics`, `Circle::rendezvous_keys`: the current epoch's and the newest others
    /// held; PROTOCOL.md §13, "Topics"). A member subscribes to the topics and announces the
    /// keys; a device that is no longer a member only recognises the topics (a leaver still
    /// offers her log to members subscribed to them). Cheap when nothing changed, so it runs
    /// after every change of the fold.
    pub(crate) fn refresh_topics(&mut self, circle: CircleId) {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        let member = slot.circle.am_member();
        let topics: Vec<IdentTopic> = slot
            .circle
            .topics()
            .into_iter()
            .map(IdentTopic::new)
            .collect();
        let keys = if member {
            slot.circle.rendezvous_keys()
        } else {
            Vec::new()
        };
        let same_topics = topics.len() == slot.topics.len()
            && topics
                .iter()
                .zip(&slot.topics)
                .all(|(a, b)| a.hash() == b.hash());
        if same_topics && keys == slot.rendezvous && member == slot.subscribed {
            return;
        }
        let old_topics = std::mem::replace(&mut slot.topics, topics.clone());
        let old_keys = std::mem::replace(&mut slot.rendezvous, keys.clone());
        let was_subscribed = std::mem::replace(&mut slot.subscribed, member);
        let behaviour = self.swarm.behaviour_mut();
        for topic in &old_topics {
            let stays = topics.iter().any(|t| t.hash() == topic.hash());
            if was_subscribed && (!stays || !member) {
                behaviour.gossipsub.unsubscribe(topic);
            }
            if !stays {
                self.topics.remove(&topic.hash());
            }
        }
        for topic in &topics {
            self.topics.insert(topic.hash(), circle);
            let had = was_subscribed && old_topics.iter().any(|t| t.hash() == topic.hash());
            if !member || had {
                continue;
            }
            if let Err(e) = behaviour.gossipsub.subscribe(topic) {
                tracing::warn!(circle = %circle.short(), error = %e, "cannot subscribe");
            }
            if let Err(e) = behaviour
                .gossipsub
                .set_topic_params(topic.clone(), topic_score_params())
            {
                tracing::warn!(error = %e, "invalid topic score parameters");
            }
        }
        for key in &old_keys {
            if !keys.contains(key) {
                behaviour
                    .kad
                    .stop_providing(&libp2p::kad::RecordKey::new(key));
            }
        }
        for key in &keys {
            if old_keys.contains(key) {
                continue;
            }
            let key = libp2p::kad::RecordKey::new(key);
            if let Err(e) = behaviour.kad.start_providing(key.clone()) {
                tracing::debug!(error = ?e, "cannot announce the rendezvous key yet");
            }
            behaviour.kad.get_providers(key);
        }
    }

    /// If this device just stopped being a member: stop gossiping and announcing the
    /// circle, and tell the UIs.
    pub(crate) fn check_still_member(&mut self, circle: CircleId) {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        if !slot.was_member || slot.circle.am_member() {
            return;
        }
        slot.was_member = false;
        let removed = slot
            .circle
            .my_departure()
            .is_some_and(|d| d.removed_by.is_some());
        tracing::info!(circle = %circle.short(), removed, "this device is no longer a member");
        self.refresh_topics(circle);
        self.emit(NodeEvent::NoLongerMember { circle, removed });
    }
}
