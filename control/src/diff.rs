//! A commit applies the difference between the running configuration and the candidate, never
//! the whole file: changing one route touches no SA, adding a tunnel moves no other.

use channel::{Change, ObjectKey};
use std::collections::BTreeMap;

/// The changes that turn `running` into `candidate` (both as `config::changes` makes them):
/// first the deletes of what the candidate no longer has, what refers to others first; then
/// the sets of what is new or different, in the candidate's order (interfaces before the
/// tunnels on them, tunnels before their routes and SAs).
pub fn diff(running: &[Change], candidate: &[Change]) -> Vec<Change> {
    let keyed = |cs: &[Change]| -> BTreeMap<ObjectKey, usize> {
        cs.iter()
            .enumerate()
            .filter_map(|(i, c)| ObjectKey::of_set(c).map(|k| (k, i)))
            .collect()
    };
    let (old, new) = (keyed(running), keyed(candidate));
    // BTreeMap order is ObjectKey's order: routes, SAs, tunnels, neighbors, interfaces.
    let mut out: Vec<Change> = old
        .keys()
        .filter(|k| !new.contains_key(k))
        .map(|k| k.delete())
        .collect();
    for c in candidate {
        let Some(k) = ObjectKey::of_set(c) else {
            continue;
        };
        if old.get(&k).map(|&i| &running[i]) != Some(c) {
            out.push(c.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use channel::{Name, RouteVia};

    fn route(p: &str, t: &str) -> Change {
        Change::SetRoute {
            prefix: p.parse().unwrap(),
            via: RouteVia::Tunnel(Name::new(t).unwrap()),
        }
    }

    #[test]
    fn only_what_differs_is_sent_deletes_first() {
        let running = vec![route("10.1.0.0/16", "a"), route("10.2.0.0/16", "a")];
        let candidate = vec![route("10.1.0.0/16", "a"), route("10.3.0.0/16", "b")];
        let d = diff(&running, &candidate);
        assert_eq!(
            d,
            vec![
                Change::DeleteRoute {
                    prefix: "10.2.0.0/16".parse().unwrap()
                },
                route("10.3.0.0/16", "b"),
            ]
        );
        assert!(diff(&candidate, &candidate).is_empty());
        // The same prefix to another tunnel: one set, no delete.
        let moved = vec![route("10.1.0.0/16", "b"), route("10.3.0.0/16", "b")];
        assert_eq!(diff(&candidate, &moved), vec![route("10.1.0.0/16", "b")]);
    }
}
