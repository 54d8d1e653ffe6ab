//! The routing table built from announcements: which services are up, and
//! what they speak.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Instant, SystemTime},
};

use parking_lot::RwLock;
use tollgate_auth::AssertionAlg;

use crate::translate::{Codec, Format};

use super::announce::{Announcement, Registration};

/// What the router needs to deliver to a service: its name and the format
/// it speaks, parsed once at registration and shared by every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceContract {
    /// Service name.
    pub service: String,
    /// Content type it accepts and replies in, as it announced it.
    pub content_type: String,
    /// Its codec and schema version.
    pub format: Format,
    /// How its assertions are signed: HS256 with its own secret once every
    /// live instance asks for it, else Ed25519 (which an instance moving to
    /// a secret still checks).
    pub assertion: AssertionAlg,
}

/// One row of `tollgate services`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// Service name.
    pub service: String,
    /// Live instances.
    pub instances: usize,
    /// Content type.
    pub content_type: String,
    /// Schema version.
    pub schema_version: String,
    /// How its assertions are signed (see [`ServiceContract::assertion`]).
    pub assertion: AssertionAlg,
    /// Seconds since the Unix epoch of the newest heartbeat.
    pub last_heartbeat: u64,
}

/// What an announcement changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A service appeared.
    ServiceAdded,
    /// An instance joined a known service.
    InstanceAdded,
    /// A known instance refreshed its lease.
    Refreshed,
    /// An instance left (its service may remain).
    InstanceRemoved,
    /// Nothing (e.g. deregistering an unknown instance, or `discover`).
    None,
}

/// One instance's lease.
#[derive(Debug, Clone, Copy)]
struct Lease {
    /// When it runs out.
    until: Instant,
    /// Asked to announce (a lapse probe's `discover`) since its last
    /// heartbeat: once it runs out, it had its chance.
    asked: bool,
}

impl Lease {
    fn new(until: Instant) -> Self {
        Self {
            until,
            asked: false,
        }
    }
}

struct Entry {
    contract: Arc<ServiceContract>,
    /// Instance id → lease.
    instances: HashMap<String, Lease>,
    /// Instances that check Ed25519 assertions (all that did not ask for HS256).
    ed25519_instances: HashSet<String>,
    last_heartbeat: SystemTime,
}

impl Entry {
    /// Records how `instance` checks assertions.
    fn note_assertion(&mut self, instance: &str, alg: AssertionAlg) {
        match alg {
            AssertionAlg::EdDSA => {
                self.ed25519_instances.insert(instance.to_owned());
            }
            AssertionAlg::HS256 => {
                self.ed25519_instances.remove(instance);
            }
        }
    }

    /// The signature every instance checks: Ed25519 while any instance asks for it.
    fn assertion(&self) -> AssertionAlg {
        if self.ed25519_instances.is_empty() {
            AssertionAlg::HS256
        } else {
            AssertionAlg::EdDSA
        }
    }

    /// Forgets instances without a lease, and signs as the remaining ones check.
    fn forget_gone_instances(&mut self) {
        let instances = &self.instances;
        self.ed25519_instances.retain(|i| instances.contains_key(i));
        let assertion = self.assertion();
        if self.contract.assertion != assertion && !self.instances.is_empty() {
            self.set_contract(ServiceContract {
                assertion,
                ..(*self.contract).clone()
            });
        }
    }

    /// Makes `contract` the service's, saying when its assertions change kind.
    fn set_contract(&mut self, contract: ServiceContract) {
        if self.contract.assertion != contract.assertion {
            tracing::info!(service = %contract.service, assertion = contract.assertion.as_str(), "Assertions for the service now signed this way.");
        }
        if *self.contract != contract {
            self.contract = Arc::new(contract);
        }
    }

    /// Instances whose lease runs past `now`.
    fn live_instances(&self, now: Instant) -> usize {
        self.instances
            .values()
            .filter(|lease| lease.until > now)
            .count()
    }

    /// Whether any instance's lease runs past `now`.
    fn is_live(&self, now: Instant) -> bool {
        self.instances.values().any(|lease| lease.until > now)
    }
}

/// The registry table; every router instance builds the same one.
#[derive(Default)]
pub struct RegistryTable {
    entries: RwLock<HashMap<String, Entry>>,
}

impl RegistryTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies an already authenticated and authorized announcement at `now`.
    ///
    /// The newest registration of a service decides its contract (all
    /// instances of a service share one queue, so they must agree; a change is
    /// logged as the rollout it is).
    pub fn apply(&self, announcement: &Announcement, now: Instant) -> Change {
        match announcement {
            Announcement::Register(r) | Announcement::Heartbeat(r) => self.register(r, now),
            Announcement::Deregister { service, instance } => self.deregister(service, instance),
            Announcement::Discover
            | Announcement::SessionsEnded { .. }
            | Announcement::TrustChanged(_) => Change::None,
        }
    }

    fn register(&self, r: &Registration, now: Instant) -> Change {
        let lease = Lease::new(now + r.ttl());
        let Some(codec) = Codec::from_content_type(&r.content_type) else {
            // The listener refuses these before they get here.
            tracing::warn!(service = %r.service, content_type = %r.content_type, "Registration with an unsupported content type ignored.");
            return Change::None;
        };
        let mut contract = ServiceContract {
            service: r.service.clone(),
            content_type: r.content_type.clone(),
            format: Format {
                codec,
                schema_version: r.schema_version.clone(),
            },
            assertion: r.assertion,
        };
        let mut entries = self.entries.write();
        let Some(entry) = entries.get_mut(&r.service) else {
            let instances = HashMap::from([(r.instance.clone(), lease)]);
            let mut entry = Entry {
                contract: Arc::new(contract),
                instances,
                ed25519_instances: HashSet::new(),
                last_heartbeat: SystemTime::now(),
            };
            entry.note_assertion(&r.instance, r.assertion);
            entries.insert(r.service.clone(), entry);
            return Change::ServiceAdded;
        };
        entry.note_assertion(&r.instance, r.assertion);
        contract.assertion = entry.assertion();
        if entry.contract.content_type != contract.content_type
            || entry.contract.format != contract.format
        {
            tracing::warn!(
                service = %r.service, instance = %r.instance,
                content_type = %r.content_type, schema_version = %r.schema_version,
                "Service contract changed."
            );
        }
        entry.set_contract(contract);
        entry.last_heartbeat = SystemTime::now();
        match entry.instances.insert(r.instance.clone(), lease) {
            Some(_) => Change::Refreshed,
            None => Change::InstanceAdded,
        }
    }

    fn deregister(&self, service: &str, instance: &str) -> Change {
        let mut entries = self.entries.write();
        let Some(entry) = entries.get_mut(service) else {
            return Change::None;
        };
        if entry.instances.remove(instance).is_none() {
            return Change::None;
        }
        if entry.instances.is_empty() {
            entries.remove(service);
        } else {
            entry.forget_gone_instances();
        }
        Change::InstanceRemoved
    }

    /// The contract of `service` while it is in the table: from its first
    /// announcement until its last instance deregisters or the sweep lets it
    /// go ([`expire`](Self::expire)).
    ///
    /// A lease whose time has passed does not turn messages away by itself:
    /// the heartbeat may be held by the broker (an alarm, an outage), and the
    /// sweep, which runs every second, first checks that and asks the service
    /// to announce. Answering by the clock here would refuse messages
    /// `no_route` in the gap before that sweep.
    pub fn resolve(&self, service: &str) -> Option<Arc<ServiceContract>> {
        let entries = self.entries.read();
        entries
            .get(service)
            .map(|entry| Arc::clone(&entry.contract))
    }

    /// Extends every lease to run at least until `until`: while a router is
    /// cut off from the broker it hears no heartbeat, so their absence says
    /// nothing of the services, and once it is back they need time to
    /// announce again. A `discover` sent before may not have reached them
    /// either: a lease that runs out after this hold is probed again.
    pub fn hold_leases(&self, until: Instant) {
        self.hold(until, false);
    }

    /// Holds every lease until `until`, as [`hold_leases`](Self::hold_leases),
    /// and notes that every instance was asked to announce: a lapse probe
    /// sends its `discover`.
    pub fn ask_all(&self, until: Instant) {
        self.hold(until, true);
    }

    /// Every lease runs at least until `until`, each instance `asked` or not.
    fn hold(&self, until: Instant, asked: bool) {
        for entry in self.entries.write().values_mut() {
            for lease in entry.instances.values_mut() {
                lease.until = lease.until.max(until);
                lease.asked = asked;
            }
        }
    }

    /// Whether some instance's lease ran out by `now` without it being
    /// asked to announce since its last heartbeat: a lapse no probe has
    /// covered yet.
    pub fn has_unasked_lapse(&self, now: Instant) -> bool {
        self.entries.read().values().any(|e| {
            e.instances
                .values()
                .any(|lease| lease.until <= now && !lease.asked)
        })
    }

    /// Drops expired instances and services without any; returns the services that left.
    pub fn expire(&self, now: Instant) -> Vec<String> {
        let mut entries = self.entries.write();
        let mut gone = Vec::new();
        entries.retain(|name, entry| {
            entry.instances.retain(|_, lease| lease.until > now);
            entry.forget_gone_instances();
            let keep = !entry.instances.is_empty();
            if !keep {
                gone.push(name.clone());
            }
            keep
        });
        gone
    }

    /// Live services, sorted by name.
    pub fn snapshot(&self, now: Instant) -> Vec<ServiceView> {
        let entries = self.entries.read();
        let mut views: Vec<ServiceView> = entries
            .values()
            .filter_map(|e| {
                let instances = e.live_instances(now);
                (instances > 0).then(|| ServiceView {
                    service: e.contract.service.clone(),
                    instances,
                    content_type: e.contract.content_type.clone(),
                    schema_version: e.contract.format.schema_version.clone(),
                    assertion: e.contract.assertion,
                    last_heartbeat: crate::time::unix_secs(e.last_heartbeat),
                })
            })
            .collect();
        views.sort_by(|a, b| a.service.cmp(&b.service));
        views
    }

    /// Number of services with a live instance.
    pub fn len(&self, now: Instant) -> usize {
        self.entries
            .read()
            .values()
            .filter(|e| e.is_live(now))
            .count()
    }

    /// Whether no service is live.
    pub fn is_empty(&self, now: Instant) -> bool {
        self.len(now) == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn reg(service: &str, instance: &str, version: &str, ttl: u64) -> Announcement {
        Announcement::Register(Registration {
            service: service.into(),
            instance: instance.into(),
            content_type: "application/json".into(),
            schema_version: version.into(),
            ttl_secs: ttl,
            assertion: Default::default(),
        })
    }

    #[test]
    fn a_registered_service_resolves_until_its_lease_ends() {
        let t = RegistryTable::new();
        let now = Instant::now();
        assert_eq!(
            t.apply(&reg("orders", "a", "2", 10), now),
            Change::ServiceAdded
        );
        assert_eq!(t.resolve("orders").unwrap().format.schema_version, "2");
        let later = now + Duration::from_secs(11);
        assert!(t.has_unasked_lapse(later));
        // Routable until the sweep lets it go, not until the clock passes.
        assert!(t.resolve("orders").is_some());
        assert_eq!(
            t.expire(now + Duration::from_secs(11)),
            vec!["orders".to_string()]
        );
        assert!(t.is_empty(now));
    }

    fn reg_asking(instance: &str, assertion: AssertionAlg, ttl: u64) -> Announcement {
        Announcement::Register(Registration {
            assertion,
            ..match reg("orders", instance, "2", ttl) {
                Announcement::Register(r) => r,
                _ => unreachable!(),
            }
        })
    }

    #[test]
    fn hs256_is_signed_only_while_every_live_instance_asks_for_it() {
        let t = RegistryTable::new();
        let now = Instant::now();
        let signed = || t.resolve("orders").unwrap().assertion;
        t.apply(&reg_asking("a", AssertionAlg::HS256, 10), now);
        assert_eq!(signed(), AssertionAlg::HS256);
        // An instance that checks Ed25519 joins, with a shorter lease.
        t.apply(&reg_asking("b", AssertionAlg::EdDSA, 5), now);
        assert_eq!(signed(), AssertionAlg::EdDSA);
        t.apply(&reg_asking("a", AssertionAlg::HS256, 10), now);
        assert_eq!(
            signed(),
            AssertionAlg::EdDSA,
            "a's heartbeat changes nothing"
        );
        // Its lease ends: the sweep drops it and HS256 is back.
        let later = now + Duration::from_secs(6);
        assert!(t.expire(later).is_empty());
        assert_eq!(signed(), AssertionAlg::HS256);
        // It comes back, then leaves properly.
        t.apply(&reg_asking("b", AssertionAlg::EdDSA, 10), later);
        assert_eq!(signed(), AssertionAlg::EdDSA);
        let bye = Announcement::Deregister {
            service: "orders".into(),
            instance: "b".into(),
        };
        t.apply(&bye, later);
        assert_eq!(signed(), AssertionAlg::HS256);
    }

    #[test]
    fn heartbeats_extend_the_lease_and_instances_share_a_service() {
        let t = RegistryTable::new();
        let now = Instant::now();
        t.apply(&reg("orders", "a", "2", 10), now);
        assert_eq!(
            t.apply(&reg("orders", "b", "2", 10), now),
            Change::InstanceAdded
        );
        let later = now + Duration::from_secs(8);
        assert_eq!(
            t.apply(&reg("orders", "a", "2", 10), later),
            Change::Refreshed
        );
        let view = &t.snapshot(later)[0];
        assert_eq!(view.instances, 2);
        assert_eq!(t.snapshot(now + Duration::from_secs(15))[0].instances, 1);
    }

    #[test]
    fn deregistering_the_last_instance_removes_the_service() {
        let t = RegistryTable::new();
        let now = Instant::now();
        t.apply(&reg("orders", "a", "2", 10), now);
        let bye = Announcement::Deregister {
            service: "orders".into(),
            instance: "a".into(),
        };
        assert_eq!(t.apply(&bye, now), Change::InstanceRemoved);
        assert_eq!(t.resolve("orders"), None);
        assert_eq!(t.apply(&bye, now), Change::None);
    }

    #[test]
    fn the_newest_registration_sets_the_contract() {
        let t = RegistryTable::new();
        let now = Instant::now();
        t.apply(&reg("orders", "a", "1", 10), now);
        t.apply(&reg("orders", "b", "2", 10), now);
        assert_eq!(t.resolve("orders").unwrap().format.schema_version, "2");
    }

    #[test]
    fn a_lapse_is_probed_once_per_heartbeat() {
        let t = RegistryTable::new();
        let now = Instant::now();
        t.apply(&reg("dead", "d", "1", 1), now);
        let probe = now + Duration::from_secs(2);
        assert!(t.has_unasked_lapse(probe));
        // The probe asks every instance and holds its lease for the grace.
        let held = probe + Duration::from_secs(4);
        t.ask_all(held);
        assert!(!t.has_unasked_lapse(probe));
        // `other` registers after the probe with a shorter lease than its hold.
        t.apply(&reg("other", "o", "1", 1), probe + Duration::from_secs(1));
        // It runs out unasked: a lapse of its own, though `dead` was probed.
        let later = probe + Duration::from_secs(3);
        assert!(t.has_unasked_lapse(later));
        // `dead`, asked and silent, goes once its hold is over; its heartbeat
        // would have made it unasked again.
        t.ask_all(later + Duration::from_secs(4));
        assert_eq!(t.expire(held + Duration::from_secs(5)).len(), 2);
        t.apply(&reg("back", "b", "1", 1), later);
        assert!(t.has_unasked_lapse(later + Duration::from_secs(2)));
    }

    #[test]
    fn held_leases_outlive_an_outage() {
        let t = RegistryTable::new();
        let now = Instant::now();
        t.apply(&reg("orders", "i-1", "1", 10), now);
        let back = now + Duration::from_secs(30);
        t.hold_leases(back + Duration::from_secs(15));
        assert!(t.expire(back).is_empty());
        assert!(t.resolve("orders").is_some());
        assert_eq!(t.expire(back + Duration::from_secs(16)), ["orders"]);
        assert!(t.resolve("orders").is_none());
    }
}
