//! The flags every host takes (`msa node`'s), parsed by clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::config::{LogFormat, Overrides, ServiceConfig};

/// The command-line flags of a host: the same as `msa node`'s. Each key
/// can also come from the config file and its `MSA_*` variable; flags win
/// over the environment, which wins over the file.
///
/// Flatten it into your own clap parser (`#[command(flatten)]`) to add
/// flags of your own, then hand it to [`Host::from_host_args`](crate::host::Host::from_host_args).
#[derive(Debug, Args)]
#[command(after_help = "\
Precedence: --config file < MSA_* environment < flags.
Every config key reads from MSA_ + the key upper-cased, dots as underscores
(name: MSA_NAME, ops.bind: MSA_OPS_BIND, gateway.bind: MSA_GATEWAY_BIND);
lists are comma-separated (MSA_SEEDS, MSA_SERVICES=kv:store:2,echo).
Without mutual TLS or a secret the node may only listen on loopback (the default, 127.0.0.1:0).
SIGHUP re-reads the TLS CA, certificate and key (new connections use them).
Once listening, it prints `msa-node name=.. addr=.. incarnation=.. services=..` on stdout
(with ` gateway=IP:PORT` when it runs the HTTP gateway, ` ops=IP:PORT` when it serves
the operations endpoints). SIGTERM or Ctrl-C: drain (shutdown.drain), leave, exit 0.")]
pub struct HostArgs {
    /// TOML config file (name, listen, seeds, cluster, secret, arbiters, [[services]], [gateway])
    #[arg(long, short, env = "MSA_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Node name, unique in the cluster [default: node-<pid>]
    #[arg(long)]
    name: Option<String>,
    /// Remoting address to listen on (port 0 picks a free one) [default: 127.0.0.1:0]
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<SocketAddr>,
    /// Seed node to join through (repeatable; MSA_SEEDS is comma-separated)
    #[arg(long = "seed", value_delimiter = ',', value_name = "HOST:PORT")]
    seeds: Vec<String>,
    /// Address other nodes dial to reach this one, when it differs from
    /// --listen (needed with 0.0.0.0; port 0 means the bound port)
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Resolve seed names again this often (500ms, 10s, 1m) [default: 10s]
    #[arg(long, value_name = "DURATION")]
    discovery_interval: Option<String>,
    /// DNS server for seed names (discovery.dns_server) [default: the system's resolver]
    #[arg(long, value_name = "IP:PORT")]
    dns_server: Option<SocketAddr>,
    /// Cluster name; nodes of other clusters are refused [default: msa]
    #[arg(long)]
    cluster: Option<String>,
    /// Shared cluster secret (prefer MSA_SECRET: flags show up in `ps`)
    #[arg(long)]
    secret: Option<String>,
    /// Read the cluster secret from this file, trailing newline trimmed (a
    /// mounted Kubernetes Secret; MSA_SECRET_FILE); not with --secret
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Mutual TLS: the cluster CA (PEM; tls.ca, MSA_TLS_CA). With
    /// --tls-cert and --tls-key; SIGHUP re-reads the three files
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Mutual TLS: this node's certificate, SAN URI msa://node/<name>
    /// (tls.cert, MSA_TLS_CERT; `msa cert node` makes one)
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// Mutual TLS: the certificate's private key (tls.key, MSA_TLS_KEY)
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Arbiter threads [default: one per core]
    #[arg(long)]
    arbiters: Option<usize>,
    /// Declare a crashed or partitioned member down within about this many
    /// milliseconds [default: 5000]
    #[arg(long)]
    failure_detection_ms: Option<u64>,
    /// Service to run, kind[:name[:instances[:max_instances]]] with kind one
    /// of kv, echo, counter, orders, inventory, payments, notifications (repeatable;
    /// MSA_SERVICES is comma-separated; replaces the file's list)
    #[arg(
        long = "service",
        value_delimiter = ',',
        value_name = "KIND[:NAME[:N[:MAX]]]"
    )]
    services: Vec<ServiceConfig>,
    /// Run the HTTP gateway on this address (port 0 picks a free one;
    /// overrides the file's [gateway] bind and MSA_GATEWAY_BIND)
    #[arg(long, env = "MSA_GATEWAY", value_name = "IP:PORT")]
    gateway: Option<SocketAddr>,
    /// Serve gRPC (msa.v1.Gateway, health, reflection) on this address beside
    /// the HTTP gateway (port 0 picks a free one; overrides the file's [grpc]
    /// bind and MSA_GRPC_BIND; needs a gateway)
    #[arg(long, env = "MSA_GRPC", value_name = "IP:PORT")]
    grpc: Option<SocketAddr>,
    /// Serve /healthz, /readyz and /metrics on this address, gateway or not
    /// (port 0 picks a free one; ops.bind, MSA_OPS_BIND)
    #[arg(long, value_name = "IP:PORT")]
    ops_bind: Option<SocketAddr>,
    /// Log lines as `text` or `json` (one object per line) [default: text]
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// On SIGTERM, how long calls in flight may take to finish, e.g. 10s
    /// (shutdown.drain, MSA_SHUTDOWN_DRAIN) [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = crate::host::config::parse_duration)]
    shutdown_drain: Option<Duration>,
    /// Turn gateway auth on: JWTs signed HS256 with this secret, its UTF-8
    /// bytes (prefer MSA_JWT_SECRET: flags show up in `ps`)
    #[arg(long, env = "MSA_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Stop gracefully when stdin reaches end of file (used by `msa cluster
    /// up`, so that nodes never outlive it)
    #[arg(long, hide = true)]
    pub(crate) stop_on_stdin_eof: bool,
}

impl HostArgs {
    pub(crate) fn overrides(&self) -> Overrides {
        Overrides {
            name: self.name.clone(),
            listen: self.listen,
            seeds: self.seeds.clone(),
            advertise: self.advertise.clone(),
            discovery_interval: self.discovery_interval.clone(),
            dns_server: self.dns_server,
            cluster: self.cluster.clone(),
            secret: self.secret.clone(),
            secret_file: self.secret_file.clone(),
            log_format: self.log_format,
            ops_bind: self.ops_bind,
            drain: self.shutdown_drain,
            arbiters: self.arbiters,
            failure_detection_ms: self.failure_detection_ms,
            services: self.services.clone(),
            gateway: self.gateway,
            grpc: self.grpc,
            jwt_secret: self.jwt_secret.clone(),
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }
}

/// A host's whole command line: its flags and nothing else.
#[derive(Debug, clap::Parser)]
#[command(about = "An msa node with its own services (msa::host)")]
pub(crate) struct HostCommand {
    #[command(flatten)]
    pub(crate) args: HostArgs,
}
