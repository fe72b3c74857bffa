//! `SupervisorSpec`: a user-defined supervision subtree.

use std::fmt;
use std::sync::Arc;

use crate::error::SpawnError;
use crate::lifecycle::{Backoff, Intensity, Restart, Strategy};
use crate::registry::ServiceEntry;
use crate::service::{ErasedBlueprint, Service, ServiceSpec};

/// A supervisor over services and nested supervisors.
///
/// # Examples
/// ```
/// # use msa_runtime::{Service, ServiceSpec, Strategy, SupervisorSpec};
/// # #[derive(Default)] struct Orders; impl Service for Orders {}
/// # #[derive(Default)] struct Payments; impl Service for Payments {}
/// let tree = SupervisorSpec::new("shop", Strategy::OneForAll)
///     .intensity(5, std::time::Duration::from_secs(10))
///     .service(ServiceSpec::new("orders", Orders::default))
///     .service(ServiceSpec::new("payments", Payments::default));
/// # let _ = tree;
/// ```
pub struct SupervisorSpec {
    pub(crate) name: String,
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Intensity,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) restart: Restart,
    children: Vec<PendingChild>,
}

enum PendingChild {
    Service(Box<dyn PendingService>),
    Supervisor(SupervisorSpec),
}

/// A `ServiceSpec<S>` with `S` erased, before it is bound to a node.
trait PendingService: Send {
    fn validate(&self) -> Result<(), SpawnError>;
    fn wire_names(&self) -> Vec<(&'static str, &'static str)>;
    fn name(&self) -> &str;
    fn bind(self: Box<Self>, node: &str) -> (Arc<ServiceEntry>, Arc<dyn ErasedBlueprint>);
    fn codecs(&self) -> Vec<(std::any::TypeId, crate::message::wire_codec::WireCodec)>;
}

impl<S: Service> PendingService for ServiceSpec<S> {
    fn validate(&self) -> Result<(), SpawnError> {
        ServiceSpec::validate(self)
    }
    fn wire_names(&self) -> Vec<(&'static str, &'static str)> {
        ServiceSpec::wire_names(self)
    }
    fn name(&self) -> &str {
        ServiceSpec::name(self)
    }
    fn bind(self: Box<Self>, node: &str) -> (Arc<ServiceEntry>, Arc<dyn ErasedBlueprint>) {
        (*self).into_blueprint(node)
    }
    fn codecs(&self) -> Vec<(std::any::TypeId, crate::message::wire_codec::WireCodec)> {
        ServiceSpec::codecs(self)
    }
}

impl fmt::Debug for SupervisorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorSpec")
            .field("name", &self.name)
            .field("strategy", &self.strategy)
            .field("children", &self.children.len())
            .finish()
    }
}

impl SupervisorSpec {
    /// A supervisor named `name` with `strategy`, default intensity (3 in
    /// 5 s), no backoff, and itself [`Restart::Permanent`] under its parent.
    pub fn new(name: impl Into<String>, strategy: Strategy) -> Self {
        Self {
            name: name.into(),
            strategy,
            intensity: Intensity::default(),
            backoff: None,
            restart: Restart::Permanent,
            children: Vec::new(),
        }
    }

    /// Restart intensity: at most `max_restarts` within `within`.
    /// A period under [`Intensity::MIN_PERIOD`](crate::Intensity::MIN_PERIOD)
    /// makes the spawn fail with `SpawnError::InvalidIntensity`.
    pub fn intensity(mut self, max_restarts: u32, within: std::time::Duration) -> Self {
        self.intensity = Intensity {
            max_restarts,
            within,
        };
        self
    }

    /// Backoff between restarts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// This supervisor's own restart policy under its parent.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Adds a service as the next child.
    pub fn service<S: Service>(mut self, spec: ServiceSpec<S>) -> Self {
        self.children.push(PendingChild::Service(Box::new(spec)));
        self
    }

    /// Adds a nested supervisor as the next child.
    pub fn supervisor(mut self, spec: SupervisorSpec) -> Self {
        self.children.push(PendingChild::Supervisor(spec));
        self
    }

    pub(crate) fn validate(&self, names: &mut Vec<String>) -> Result<(), SpawnError> {
        self.intensity.validate(&self.name)?;
        for c in &self.children {
            match c {
                PendingChild::Service(s) => {
                    s.validate()?;
                    if names.iter().any(|n| n == s.name()) {
                        // Both in this spec: the tree that holds it twice.
                        return Err(SpawnError::DuplicateService {
                            service: s.name().to_string(),
                            owner: self.name.clone(),
                        });
                    }
                    names.push(s.name().to_string());
                }
                PendingChild::Supervisor(s) => s.validate(names)?,
            }
        }
        Ok(())
    }

    pub(crate) fn codecs(
        &self,
        out: &mut Vec<(std::any::TypeId, crate::message::wire_codec::WireCodec)>,
    ) {
        for c in &self.children {
            match c {
                PendingChild::Service(s) => out.extend(s.codecs()),
                PendingChild::Supervisor(s) => s.codecs(out),
            }
        }
    }

    pub(crate) fn wire_names(&self, out: &mut Vec<(&'static str, &'static str)>) {
        for c in &self.children {
            match c {
                PendingChild::Service(s) => out.extend(s.wire_names()),
                PendingChild::Supervisor(s) => s.wire_names(out),
            }
        }
    }

    /// Binds every service to a registry entry.
    pub(crate) fn bind(
        self,
        node: &str,
        entries: &mut Vec<Arc<ServiceEntry>>,
    ) -> Arc<ResolvedSupervisor> {
        let children = self
            .children
            .into_iter()
            .map(|c| match c {
                PendingChild::Service(s) => {
                    let (entry, bp) = s.bind(node);
                    entry.set_owner(&self.name);
                    entries.push(entry);
                    ChildSpec::Service(bp)
                }
                PendingChild::Supervisor(s) => ChildSpec::Supervisor(s.bind(node, entries)),
            })
            .collect();
        Arc::new(ResolvedSupervisor {
            name: self.name,
            strategy: self.strategy,
            intensity: self.intensity,
            backoff: self.backoff,
            restart: self.restart,
            children,
        })
    }
}

/// A supervisor spec whose services are bound to registry entries.
#[derive(Debug)]
pub(crate) struct ResolvedSupervisor {
    pub(crate) name: String,
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Intensity,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) restart: Restart,
    pub(crate) children: Vec<ChildSpec>,
}

/// A child as a supervisor holds it.
#[derive(Debug, Clone)]
pub(crate) enum ChildSpec {
    /// A whole service: run by its own supervisor over its instances.
    Service(Arc<dyn ErasedBlueprint>),
    /// A nested user supervisor.
    Supervisor(Arc<ResolvedSupervisor>),
    /// One instance of a service (children of a service's supervisor).
    Instance {
        blueprint: Arc<dyn ErasedBlueprint>,
        slot: usize,
    },
}

impl ChildSpec {
    pub(crate) fn restart(&self) -> Restart {
        match self {
            // A service's supervisor follows the service's policy under its
            // parent (as its instances do under it): a temporary service
            // is never restarted by a group restart or after its
            // supervisor gave up; a transient one only after a failure.
            Self::Service(b) => b.restart(),
            Self::Supervisor(s) => s.restart,
            Self::Instance { blueprint, .. } => blueprint.restart(),
        }
    }

    /// The registry entries of the services this child runs (all of a
    /// nested tree's), so that a deleted child frees their names.
    pub(crate) fn entries(&self, out: &mut Vec<Arc<ServiceEntry>>) {
        match self {
            Self::Service(b) => out.push(b.entry().clone()),
            Self::Supervisor(s) => s.children.iter().for_each(|c| c.entries(out)),
            Self::Instance { .. } => {}
        }
    }

    pub(crate) fn label(&self) -> String {
        match self {
            Self::Service(b) => b.entry().name().to_string(),
            Self::Supervisor(s) => s.name.clone(),
            Self::Instance { blueprint, slot } => format!("{}#{slot}", blueprint.entry().name()),
        }
    }
}
