//! A host for your own services: everything `msa node` does, in your binary.
//!
//! [`Host`] reads the node's config the way `msa node` does (a TOML file,
//! then `MSA_*` variables, then flags: docs/deploy.md), starts the node,
//! serves the operations endpoints (`ops.bind`), spawns the ready-made
//! services the config names and then yours, starts the gateway when one is
//! configured (with your routes and policy added), prints the ready line,
//! and on SIGTERM or Ctrl-C drains and leaves the cluster gracefully. It
//! also sets up logging (`log_format`, `RUST_LOG`). `msa node` is this host
//! with no services of its own.
//!
//! Enabled by the `host` feature (the `cli` feature, on by default, turns it
//! on). It parses flags with clap, so a binary built on it carries clap and
//! toml; the plain library (`default-features = false`) carries neither.
//!
//! # Examples
//!
//! ```no_run
//! use msa::host::Host;
//! use msa::actors::echo;
//! use msa::gateway::RouteConfig;
//!
//! fn main() -> Result<(), msa::host::HostError> {
//!     Host::from_args()?                       // --config, MSA_*, --listen, --seed, ...
//!         .service(echo::echo_spec("hello"))   // your ServiceSpecs
//!         .gateway_routes([RouteConfig {
//!             method: "GET".into(),
//!             path: "/hello/{text}".into(),
//!             service: "hello".into(),
//!             message: "echo.Echo".into(),
//!         }])
//!         .run()                               // until SIGTERM / Ctrl-C
//! }
//! ```
//!
//! `examples/own_services.rs` is a complete one with two services of its
//! own, which `tests/it/host.rs` runs as a three-process cluster.

mod args;
pub(crate) mod config;
mod run;
mod stdin;

use std::ffi::OsString;
use std::future::Future;
use std::pin::Pin;

use clap::Parser;

use crate::gateway::{PolicyRule, RouteConfig};
use crate::{Node, Service, ServiceSpec, SpawnError, SupervisorSpec};

pub use args::HostArgs;
pub use config::{AccessRuleConfig, LogFormat, ServiceConfig, ServiceKind};
pub use run::{init_logging, ReadyLine, StopSignals};
pub use stdin::stdin_eof;

use config::NodeConfig;

/// Why a host could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The flags, the environment or the config file are wrong.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong, with its source chain.
        reason: String,
    },
    /// The node, a service, the gateway or the operations server did not
    /// start, or the stop did not finish in time.
    #[error("{reason}")]
    Run {
        /// What failed, with its source chain.
        reason: String,
    },
}

/// Spawns one registration on the started node.
pub(crate) type Registration =
    Box<dyn FnOnce(Node) -> Pin<Box<dyn Future<Output = Result<(), anyhow::Error>>>>>;

/// A node with your services, configured like `msa node`. Build it with
/// [`from_args`](Self::from_args) (flags, environment, file) or
/// [`from_env`](Self::from_env) (environment and file), register services,
/// then [`run`](Self::run).
pub struct Host {
    config: NodeConfig,
    registrations: Vec<Registration>,
    routes: Vec<RouteConfig>,
    policy: Vec<PolicyRule>,
    logging: bool,
    stop_on_stdin_eof: bool,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("config", &self.config)
            .field("registrations", &self.registrations.len())
            .field("routes", &self.routes.len())
            .field("policy", &self.policy.len())
            .finish()
    }
}

impl Host {
    /// The config from the process's flags (`msa node`'s: `--help` lists
    /// them), its `MSA_*` variables and the file `--config` / `MSA_CONFIG`
    /// names. `--help` and `--version` print and exit, as does a flag clap
    /// refuses (with status 2).
    ///
    /// # Errors
    /// [`HostError::Config`]: an unreadable or invalid file, a bad variable,
    /// or a bad combination (docs/deploy.md).
    pub fn from_args() -> Result<Host, HostError> {
        Self::from_host_args(args::HostCommand::parse().args)
    }

    /// [`from_args`](Self::from_args) with the arguments given (the first
    /// is the program's name); a bad flag is an error here, not an exit.
    ///
    /// # Errors
    /// As [`from_args`](Self::from_args), and a flag clap refuses.
    pub fn try_from_args<I, T>(args: I) -> Result<Host, HostError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cmd = args::HostCommand::try_parse_from(args).map_err(|e| HostError::Config {
            reason: e.to_string(),
        })?;
        Self::from_host_args(cmd.args)
    }

    /// The config from the `MSA_*` variables and the file `MSA_CONFIG`
    /// names, without looking at the command line.
    ///
    /// # Errors
    /// As [`from_args`](Self::from_args).
    pub fn from_env() -> Result<Host, HostError> {
        let file = std::env::var_os("MSA_CONFIG").filter(|f| !f.is_empty());
        let cfg = NodeConfig::resolve(
            file.as_deref().map(std::path::Path::new),
            config::Overrides::default(),
        )
        .map_err(config_error)?;
        Ok(Self::with_config(cfg))
    }

    /// From flags parsed already: [`HostArgs`] flattened into a parser of
    /// your own.
    ///
    /// # Errors
    /// As [`from_args`](Self::from_args).
    pub fn from_host_args(args: HostArgs) -> Result<Host, HostError> {
        let cfg =
            NodeConfig::resolve(args.config.as_deref(), args.overrides()).map_err(config_error)?;
        let mut host = Self::with_config(cfg);
        host.stop_on_stdin_eof = args.stop_on_stdin_eof;
        Ok(host)
    }

    fn with_config(config: NodeConfig) -> Host {
        Host {
            config,
            registrations: Vec::new(),
            routes: Vec::new(),
            policy: Vec::new(),
            logging: true,
            stop_on_stdin_eof: false,
        }
    }

    /// The node's name (from the config, or `node-<pid>`).
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the config starts the gateway.
    pub fn has_gateway(&self) -> bool {
        self.config.gateway.is_some()
    }

    /// Spawns `spec` once the node runs, after the services the config
    /// names, in the order registered.
    pub fn service<S: Service>(mut self, spec: ServiceSpec<S>) -> Self {
        self.registrations.push(Box::new(move |node: Node| {
            Box::pin(async move {
                let name = spec.name().to_string();
                node.spawn(spec).await.map_err(|e| spawn_error(&name, e))?;
                tracing::info!(service = %name, "service started");
                Ok(())
            })
        }));
        self
    }

    /// Spawns the supervision tree `spec` once the node runs, in the order
    /// registered.
    pub fn supervisor(mut self, spec: SupervisorSpec) -> Self {
        self.registrations.push(Box::new(move |node: Node| {
            Box::pin(async move {
                node.spawn_supervisor(spec)
                    .await
                    .map_err(|e| spawn_error("a supervision tree", e))?;
                Ok(())
            })
        }));
        self
    }

    /// Runs `f` on the started node after the services registered before
    /// it: for setup that needs the node (seeding data, watching events).
    pub fn on_start<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(Node) -> Fut + 'static,
        Fut: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + 'static,
    {
        self.registrations.push(Box::new(move |node: Node| {
            Box::pin(async move { f(node).await.map_err(|e| anyhow::anyhow!(e)) })
        }));
        self
    }

    /// Adds gateway routes (`[[gateway.routes]]`) after the configured
    /// ones. Without a configured gateway they are unused (logged).
    pub fn gateway_routes(mut self, routes: impl IntoIterator<Item = RouteConfig>) -> Self {
        self.routes.extend(routes);
        self
    }

    /// Adds access rules (`[[access]]`) after the configured ones: checked
    /// by this node's instances of the services the config names
    /// (docs/security.md, "Access rules at each service"). Services you
    /// register with [`service`](Self::service) take theirs from their
    /// spec ([`ServiceSpec::access`]).
    ///
    /// # Errors
    /// [`HostError::Config`] for a rule that names no service or message,
    /// or admits nobody.
    pub fn access(
        mut self,
        rules: impl IntoIterator<Item = AccessRuleConfig>,
    ) -> Result<Self, HostError> {
        for r in rules {
            r.check().map_err(|e| HostError::Config {
                reason: format!("{e:#}"),
            })?;
            self.config.access.push(r);
        }
        Ok(self)
    }

    /// Adds gateway policy rules (`[[gateway.policy]]`) after the
    /// configured ones; they apply when gateway auth is on.
    pub fn policy(mut self, rules: impl IntoIterator<Item = PolicyRule>) -> Self {
        self.policy.extend(rules);
        self
    }

    /// Whether [`run`](Self::run) sets up logging (default: yes). Turn it
    /// off to install a `tracing` subscriber of your own.
    pub fn logging(mut self, on: bool) -> Self {
        self.logging = on;
        self
    }

    /// Also stops gracefully when stdin reaches end of file (how `msa
    /// cluster up` keeps its nodes from outliving it).
    pub fn stop_on_stdin_eof(mut self, on: bool) -> Self {
        self.stop_on_stdin_eof = on;
        self
    }

    /// Runs the host on a runtime of its own until SIGTERM or Ctrl-C, then
    /// stops gracefully. Blocks; call it from `main`, outside any async
    /// runtime (else use [`serve`](Self::serve)).
    ///
    /// # Errors
    /// [`HostError::Run`]: the node, a service, the gateway or the
    /// operations server did not start, or the stop did not finish.
    pub fn run(self) -> Result<(), HostError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HostError::Run {
                reason: format!("cannot build a runtime: {e}"),
            })?;
        rt.block_on(self.serve())
    }

    /// [`run`](Self::run) from inside a tokio runtime.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn serve(self) -> Result<(), HostError> {
        let Host {
            mut config,
            registrations,
            routes,
            policy,
            logging,
            stop_on_stdin_eof,
        } = self;
        if logging {
            init_logging(config.log_format, "info");
        }
        match config.gateway.as_mut() {
            Some(g) => {
                g.routes.extend(routes);
                g.policy.extend(policy);
            }
            None if !routes.is_empty() || !policy.is_empty() => {
                tracing::warn!("gateway routes or policy given, but no gateway is configured");
            }
            None => {}
        }
        run::serve(config, registrations, stop_on_stdin_eof)
            .await
            .map_err(|e| HostError::Run {
                reason: format!("{e:#}"),
            })
    }
}

fn config_error(e: anyhow::Error) -> HostError {
    HostError::Config {
        reason: format!("{e:#}"),
    }
}

fn spawn_error(what: &str, e: SpawnError) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("cannot start {what}"))
}
