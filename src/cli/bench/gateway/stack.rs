//! The side under test, configured as a user would run it: an msa node with
//! the echo service, and the msa gateway in front of it with JWT (HS256)
//! authentication, a policy rule that lets the bench's role call
//! `echo.Ping`, and its always-on request metrics.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use msa::access::{Access, Rule};
use msa::actors::echo::{self, Ping};
use msa::gateway::{
    hs256_token, AuthConfig, Gateway, GatewayConfig, GatewayHandle, GrpcConfig, PolicyRule,
};
use msa::{Node, RemoteMessage};

/// The echo service's name, which is also the first URL segment.
pub(crate) const SERVICE: &str = "echo";
/// The role the bench's token carries and the policy asks for.
const ROLE: &str = "bench";
/// The gateway's admin role (its default `admin_roles`), which the live
/// view needs.
const ADMIN_ROLE: &str = "admin";
/// How long the bench's token is valid.
const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// How long the node may drain at the end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The node and its gateway.
#[derive(Debug)]
pub(crate) struct Stack {
    node: Node,
    gateway: GatewayHandle,
    /// A token the gateway accepts for `echo.Ping`.
    pub(crate) token: String,
    /// A token of the gateway's admin role, for the live view.
    pub(crate) admin_token: String,
}

impl Stack {
    /// Starts a node with `arbiters` threads and the echo service, then the
    /// gateway on 127.0.0.1:0 with `workers` workers (and with `grpc`, its
    /// gRPC ingress on 127.0.0.1:0 with as many threads).
    pub(crate) async fn start(
        workers: usize,
        arbiters: usize,
        access_rules: bool,
        grpc: bool,
    ) -> anyhow::Result<Self> {
        let node = Node::builder()
            .name("bench-gateway")
            .arbiters(arbiters)
            // As `msa node` runs a node with a gateway: metrics complete.
            .track_mailbox_depth(true)
            .start()
            .context("starting the msa node")?;
        match Self::start_on(&node, workers, access_rules, grpc).await {
            Ok((gateway, token, admin_token)) => Ok(Self {
                node,
                gateway,
                token,
                admin_token,
            }),
            Err(e) => {
                let _ = node.shutdown(SHUTDOWN_GRACE).await;
                Err(e)
            }
        }
    }

    async fn start_on(
        node: &Node,
        workers: usize,
        access_rules: bool,
        grpc: bool,
    ) -> anyhow::Result<(GatewayHandle, String, String)> {
        let mut spec = echo::echo_spec(SERVICE);
        if access_rules {
            spec = spec.access(Access::new().default_rule(Rule::roles([ROLE])));
        }
        node.spawn(spec)
            .await
            .context("spawning the echo service")?;
        let secret = random_secret()?;
        let token = hs256_token(&secret, "msa-bench", &[ROLE], TOKEN_TTL)
            .map_err(|e| anyhow!("making the bench's token: {e}"))?;
        let admin_token = hs256_token(&secret, "msa-bench-live-view", &[ADMIN_ROLE], TOKEN_TTL)
            .map_err(|e| anyhow!("making the live view's token: {e}"))?;
        let config = GatewayConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers,
            auth: Some(AuthConfig::hs256(secret)),
            policy: vec![PolicyRule {
                service: SERVICE.into(),
                message: Ping::NAME.into(),
                roles: vec![ROLE.into()],
            }],
            grpc: grpc.then(|| GrpcConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                workers,
                ..GrpcConfig::default()
            }),
            ..GatewayConfig::default()
        };
        let gateway = Gateway::start(node.clone(), config)
            .map_err(|e| anyhow!("starting the gateway: {e}"))?;
        Ok((gateway, token, admin_token))
    }

    /// The gRPC ingress's bound address, when started with it.
    pub(crate) fn grpc_addr(&self) -> Option<SocketAddr> {
        self.gateway.grpc_addr()
    }

    /// The gateway's bound address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.gateway.local_addr()
    }

    /// Stops the gateway, then the node.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.gateway.stop().await;
        self.node
            .shutdown(SHUTDOWN_GRACE)
            .await
            .context("shutting the node down")
    }
}

/// A fresh HS256 secret: 32 random bytes as hex.
fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness for the secret: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
