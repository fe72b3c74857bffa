//! Process groups as they travel: a group is carried by an internal topic
//! (`"\u{1}pg:" + group + "\u{1}" + wire name`) whose consumer groups are
//! the members' labels (`service`, or `service#slot.incarnation` for one
//! instance). The names are checked here, both when a member joins on this
//! node and when another node's `Topics` frame brings them.

use super::{InstanceId, TopicAd};

/// The prefix of a group's internal topic (a control character: no
/// group name contains one, see [`check_name`]).
pub(crate) const GROUP_TOPIC_PREFIX: &str = "\u{1}pg:";
const SEP: char = '\u{1}';

/// The longest group (or service, or wire) name accepted, in bytes.
pub(crate) const MAX_GROUP_NAME: usize = 255;

/// Why a group, service or wire name is refused (`Ok`: it is fine).
pub(crate) fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.len() > MAX_GROUP_NAME {
        Err("it is longer than 255 bytes")
    } else if name.chars().any(char::is_control) {
        Err("it contains a control character")
    } else {
        Ok(())
    }
}

/// The internal topic of `group` for messages with wire name `wire`.
pub(crate) fn group_topic(group: &str, wire: &str) -> String {
    format!("{GROUP_TOPIC_PREFIX}{group}{SEP}{wire}")
}

/// (group, wire name) of an internal group topic; `None` for a user topic.
pub(crate) fn parse_group_topic(topic: &str) -> Option<(&str, &str)> {
    topic.strip_prefix(GROUP_TOPIC_PREFIX)?.split_once(SEP)
}

/// The label of a member: its service, and its instance if one joined.
pub(crate) fn member_label(service: &str, instance: Option<InstanceId>) -> String {
    match instance {
        Some(i) => format!("{service}#{}.{}", i.slot, i.incarnation),
        None => service.to_string(),
    }
}

/// A label back to (service, instance); `None` when it is malformed.
pub(crate) fn parse_label(label: &str) -> Option<(&str, Option<InstanceId>)> {
    let (service, instance) = match label.rsplit_once('#') {
        None => (label, None),
        Some((service, id)) => {
            let (slot, incarnation) = id.split_once('.')?;
            let id = InstanceId {
                slot: slot.parse().ok()?,
                incarnation: incarnation.parse().ok()?,
            };
            (service, Some(id))
        }
    };
    check_name(service).ok()?;
    Some((service, instance))
}

/// Checks the group memberships in another node's topic ads: every
/// internal group topic must name a valid group and wire name, have no
/// plain subscriber, and list members under valid labels with at least
/// one id. `Err` says what is wrong (the whole frame is refused).
pub(crate) fn check_group_ads(ads: &[TopicAd]) -> Result<(), String> {
    for ad in ads {
        if !ad.topic.starts_with(GROUP_TOPIC_PREFIX) {
            continue;
        }
        let Some((group, wire)) = parse_group_topic(&ad.topic) else {
            return Err(format!("group topic {:?} names no message type", ad.topic));
        };
        check_name(group).map_err(|r| format!("group name {group:?}: {r}"))?;
        check_name(wire).map_err(|r| format!("message name {wire:?} of group {group:?}: {r}"))?;
        if ad.plain {
            return Err(format!(
                "group {group:?} advertised with a plain subscriber"
            ));
        }
        if ad.groups.is_empty() {
            return Err(format!("group {group:?} advertised without members"));
        }
        for (label, ids) in &ad.groups {
            if parse_label(label).is_none() {
                return Err(format!(
                    "member label {label:?} of group {group:?} is malformed"
                ));
            }
            if ids.is_empty() {
                return Err(format!("member {label:?} of group {group:?} has no id"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(topic: &str, plain: bool, groups: Vec<(&str, Vec<u64>)>) -> TopicAd {
        TopicAd {
            topic: topic.into(),
            plain,
            groups: groups
                .into_iter()
                .map(|(l, ids)| (l.to_string(), ids))
                .collect(),
        }
    }

    #[test]
    fn names_labels_and_topics_round_trip() {
        assert!(check_name("workers").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(256)).is_err());
        assert!(check_name(&"x".repeat(255)).is_ok());
        assert!(check_name("a\u{1}b").is_err());
        let t = group_topic("workers", "t.Job");
        assert_eq!(parse_group_topic(&t), Some(("workers", "t.Job")));
        assert_eq!(parse_group_topic("workers"), None);
        let id = InstanceId {
            slot: 2,
            incarnation: 5,
        };
        assert_eq!(
            parse_label(&member_label("svc", Some(id))),
            Some(("svc", Some(id)))
        );
        assert_eq!(parse_label("svc"), Some(("svc", None)));
        assert_eq!(parse_label("svc#x.1"), None);
        assert_eq!(parse_label("#1.1"), None);
    }

    #[derive(Debug)]
    struct Nothing;
    impl crate::registry::TopicSink for Nothing {
        fn deliver(&self, _: &str, _: crate::registry::TopicEvent<'_>) {}
    }

    #[test]
    fn a_plain_subscriber_of_a_group_topic_is_not_advertised() {
        let hub = crate::registry::TopicHub::new("n");
        let t = group_topic("g", "t.M");
        let plain = hub.subscribe(&t, None, std::sync::Arc::new(Nothing));
        assert!(hub.local_ads().is_empty(), "a group with no member");
        hub.subscribe(&t, Some("svc#0.0"), std::sync::Arc::new(Nothing));
        hub.subscribe("user", None, std::sync::Arc::new(Nothing));
        let ads = hub.local_ads();
        assert!(check_group_ads(&ads).is_ok(), "{ads:?}");
        assert_eq!(ads.len(), 2);
        assert!(ads.iter().any(|a| a.topic == "user" && a.plain));
        assert!(ads.iter().any(|a| a.topic == t && !a.plain));
        hub.unsubscribe(&t, plain);
    }

    #[test]
    fn malformed_group_ads_are_refused_and_user_topics_pass() {
        let good = ad(&group_topic("g", "t.M"), false, vec![("svc#0.0", vec![1])]);
        let user = ad("orders", true, vec![]);
        assert!(check_group_ads(&[good.clone(), user]).is_ok());
        for bad in [
            ad(&group_topic("", "t.M"), false, vec![("svc", vec![1])]),
            ad(
                &group_topic(&"g".repeat(300), "t.M"),
                false,
                vec![("svc", vec![1])],
            ),
            ad(
                &format!("{GROUP_TOPIC_PREFIX}g"),
                false,
                vec![("svc", vec![1])],
            ),
            ad(&group_topic("g", "t.M"), true, vec![("svc", vec![1])]),
            ad(&group_topic("g", "t.M"), false, vec![]),
            ad(&group_topic("g", "t.M"), false, vec![("svc#zz", vec![1])]),
            ad(&group_topic("g", "t.M"), false, vec![("svc", vec![])]),
        ] {
            assert!(
                check_group_ads(&[good.clone(), bad.clone()]).is_err(),
                "{bad:?}"
            );
        }
    }
}
