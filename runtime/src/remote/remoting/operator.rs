//! Fault requests from an operator, applied to this node's fault layer.

use std::time::Duration;

use super::{MembershipInput, Remoting};
use crate::remote::operator::{FaultRefusal, FaultReport, FaultRequest};

impl Remoting {
    /// Applies `request` to this node's fault rules (all of it or, when
    /// refused, none of it) and reports the rules afterwards.
    pub(super) fn fault(&self, request: &FaultRequest) -> Result<FaultReport, FaultRefusal> {
        match request {
            FaultRequest::Leave => {
                tracing::warn!("leaving the cluster on an operator's request");
                return Ok(self.report(None));
            }
            FaultRequest::Down { node } if *node == self.local.name => {
                tracing::warn!("downed by an operator; leaving the cluster");
                return Ok(self.report(None));
            }
            FaultRequest::Down { node } => {
                let members = self.status().members;
                let Some(m) = members.iter().find(|m| m.name == *node) else {
                    return Err(FaultRefusal::UnknownNode {
                        name: node.clone(),
                        known: members.iter().map(|m| m.name.clone()).collect(),
                    });
                };
                tracing::warn!(member = %node, "member downed by an operator");
                self.sbr_forget(&m.name);
                self.to_membership(MembershipInput::Down(m.name.clone()));
                return Ok(self.report(None));
            }
            _ => {}
        }
        let faults = self.transport.faults().ok_or(FaultRefusal::NoFaultLayer)?;
        match request {
            FaultRequest::Cut {
                peers,
                inbound,
                outbound,
            } => {
                let members = self.status().members;
                let mut found = Vec::with_capacity(peers.len());
                for p in peers {
                    if *p == self.local.name {
                        return Err(FaultRefusal::SelfCut { name: p.clone() });
                    }
                    let Some(m) = members.iter().find(|m| m.name == *p) else {
                        return Err(FaultRefusal::UnknownNode {
                            name: p.clone(),
                            known: members.iter().map(|m| m.name.clone()).collect(),
                        });
                    };
                    found.push(m);
                }
                for m in found {
                    faults.learn(&m.addr, &m.name);
                    faults.cut(&m.name, *inbound, *outbound);
                }
                tracing::warn!(?peers, inbound, outbound, "fault injected: cut");
            }
            FaultRequest::Slow { delay_ms } => {
                faults.set_delay(Duration::from_millis(*delay_ms));
                tracing::warn!(delay_ms, "fault injected: frames from peers delayed");
            }
            FaultRequest::Heal => {
                faults.heal();
                tracing::warn!("faults healed");
            }
            FaultRequest::Show
            | FaultRequest::Abort
            | FaultRequest::Leave
            | FaultRequest::Down { .. } => {}
        }
        Ok(self.report(Some(faults.rules())))
    }

    /// Carries out an operator's service request through the node's
    /// installed operator.
    pub(super) async fn operate_services(
        &self,
        request: crate::remote::ServiceRequest,
    ) -> Result<crate::remote::ServiceReport, String> {
        let Some(op) = self.service_operator.get().cloned() else {
            return Err("this node does not serve service requests".into());
        };
        tracing::warn!(?request, "service request from an operator");
        op.operate(request).await
    }

    /// This node's answer: its name, pid and fault rules.
    fn report(&self, rules: Option<crate::remote::transport::FaultRules>) -> FaultReport {
        let rules = rules
            .or_else(|| self.transport.faults().map(|f| f.rules()))
            .unwrap_or_default();
        FaultReport {
            node: self.local.name.clone(),
            pid: std::process::id(),
            rules,
        }
    }
}
