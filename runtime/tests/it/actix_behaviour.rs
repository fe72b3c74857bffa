//! Pins what plain actix 0.13 does on a panic, which msa builds on: if an
//! actix upgrade changes it, these fail and msa's failure detection must be
//! revisited.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;

#[derive(Message)]
#[rtype(result = "u32")]
struct Ping;
#[derive(Message)]
#[rtype(result = "()")]
struct Panic;

struct Plain {
    stopped: Arc<AtomicUsize>,
}
impl Actor for Plain {
    type Context = Context<Self>;
    fn stopped(&mut self, _: &mut Context<Self>) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}
impl actix::Supervised for Plain {}
impl Handler<Ping> for Plain {
    type Result = u32;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u32 {
        1
    }
}
impl Handler<Panic> for Plain {
    type Result = ();
    fn handle(&mut self, _: Panic, _: &mut Context<Self>) {
        panic!("plain actix panic");
    }
}

#[actix::test]
async fn a_panicking_handler_kills_only_its_actor_and_callers_see_closed() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let victim = Plain {
        stopped: stopped.clone(),
    }
    .start();
    let neighbour = Plain {
        stopped: Arc::new(AtomicUsize::new(0)),
    }
    .start();
    assert_eq!(victim.send(Panic).await, Err(MailboxError::Closed));
    assert_eq!(victim.send(Ping).await, Err(MailboxError::Closed));
    assert_eq!(stopped.load(Ordering::SeqCst), 1, "stopped() still ran");
    assert_eq!(
        neighbour.send(Ping).await,
        Ok(1),
        "same thread, still serving"
    );
}

#[actix::test]
async fn actix_supervisor_does_not_restart_after_a_panic() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s2 = stopped.clone();
    let addr = actix::Supervisor::start(move |_| Plain {
        stopped: s2.clone(),
    });
    assert_eq!(addr.send(Panic).await, Err(MailboxError::Closed));
    assert_eq!(
        addr.send(Ping).await,
        Err(MailboxError::Closed),
        "no restart"
    );
}
