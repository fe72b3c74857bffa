//! A connection's call lane: tells and asks, encoded by their callers
//! straight into one byte buffer that the connection's writer takes whole.
//!
//! A remote call used to become a `Frame` (its payload a vector of its own,
//! its route two strings), go through a bounded channel, and be encoded by
//! the writer. Now the caller appends the finished frame's bytes, route id
//! and all, under the lane's lock (a thread's own calls do not contend:
//! the writer holds the lock only to swap buffers), and the writer swaps
//! the buffer for its empty one and writes it. No allocation per call, no
//! channel slot, and the order of the bytes is the order of the calls,
//! which is what route ids need (the first call of a pair names it).
//!
//! The lane is bounded by frames (`RemoteConfig::outbound_queue`, counted
//! until the writer takes them) and, through the `admit` check its callers
//! pass, by the connection's queued bytes (`max_data_queue_bytes`, counted
//! until the writer has written them).
//!
//! Topic events (protocol 11) go as `PublishRun` frames: an event of the
//! same topic and wire name as the run at the end of the buffer joins it
//! (its count and length prefix rewritten in place) instead of opening a
//! frame of its own, so a burst of publishes to one node costs one frame,
//! and one pass of the receiver, per run. Each event still counts as one
//! frame against the bound, as a tell does.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::frame::{
    append_call, append_run_event, encode_into, open_run, seal_run, AppendError, Frame, FrameError,
    RunAt, WireMeta, MAX_RUN_EVENTS, RUN_BYTES,
};
use super::routes::OutboundRoutes;
use crate::message::CodecError;

/// Why a call was not queued.
#[derive(Debug)]
pub(crate) enum LaneRefusal {
    /// No room: the lane holds its bound of frames, or `admit` said no.
    Full,
    /// The connection is gone, or retired: its last call was queued.
    Closed,
    /// The call does not make a frame: its payload did not encode, or the
    /// frame exceeds the frame limit.
    Frame(FrameError),
}

#[derive(Debug)]
struct LaneState {
    /// Whole frames, length prefixes included, in call order.
    buf: Vec<u8>,
    /// Frames in `buf`.
    frames: usize,
    /// What counts against the bound: calls and other frames, and each
    /// event of a `PublishRun`.
    entries: usize,
    /// The `PublishRun` that later events of its topic and wire name join.
    run: OpenRun,
    /// The route ids given on this connection.
    routes: OutboundRoutes,
    closed: bool,
}

/// The `PublishRun` frame last opened in the lane's buffer: later events
/// join it while it ends where the buffer ends (nothing was queued after
/// it), it has room, and they name its topic and wire name.
#[derive(Debug, Default)]
struct OpenRun {
    /// Where it is; `None` when there is none (taken by the writer).
    at: Option<RunAt>,
    /// Where it ends (the buffer's length after its last event).
    end: usize,
    /// Its events.
    count: u8,
    /// Its topic and wire name (buffers kept from run to run).
    topic: String,
    message: String,
}

impl OpenRun {
    /// The run an event of `topic` and `message` joins when the buffer is
    /// `len` bytes long.
    fn joinable(&self, len: usize, topic: &str, message: &str) -> Option<RunAt> {
        let at = self.at?;
        (self.end == len
            && self.count < MAX_RUN_EVENTS
            && len - at.start < RUN_BYTES
            && self.message == message
            && self.topic == topic)
            .then_some(at)
    }

    fn open(&mut self, at: RunAt, topic: &str, message: &str) {
        self.at = Some(at);
        self.count = 0;
        self.topic.clear();
        self.topic.push_str(topic);
        self.message.clear();
        self.message.push_str(message);
    }
}

/// The call lane of one connection.
#[derive(Debug)]
pub(crate) struct CallLane {
    state: Mutex<LaneState>,
    /// Wakes the writer when the lane stops being empty.
    ready: Notify,
    max_frames: usize,
    max_frame_bytes: usize,
}

/// A call about to be queued: its pair, metadata and (for an ask) its id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutCall<'a> {
    /// The ask's id; `None` for a tell.
    pub(crate) id: Option<u64>,
    /// The service called.
    pub(crate) service: &'a Arc<str>,
    /// The message's wire name.
    pub(crate) message: &'static str,
    /// What travels with the call.
    pub(crate) meta: &'a WireMeta,
}

/// A topic event about to be queued: its topic and wire name (those of
/// its `PublishRun` frame) and its fields but the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutPublish<'a> {
    /// The topic.
    pub(crate) topic: &'a str,
    /// The event's wire name.
    pub(crate) message: &'a str,
    /// Whether the receiver's plain subscribers take it.
    pub(crate) plain: bool,
    /// The receiver's consumer-group members that take it.
    pub(crate) members: &'a [u64],
}

/// The outcome of appending one frame at `start` of `buf`: the frame stays
/// if it was appended whole and `admit` takes its size in bytes; a frame
/// `admit` refuses is taken off again (`Full`), one that could not be
/// appended is refused as a frame error.
fn admitted(
    appended: Result<(), AppendError<CodecError>>,
    buf: &mut Vec<u8>,
    start: usize,
    admit: impl FnOnce(u64) -> bool,
) -> Result<(), LaneRefusal> {
    match appended {
        Ok(()) if admit((buf.len() - start) as u64) => Ok(()),
        Ok(()) => {
            buf.truncate(start);
            Err(LaneRefusal::Full)
        }
        Err(e) => Err(refusal(e)),
    }
}

/// The refusal of a frame that could not be appended.
fn refusal(e: AppendError<CodecError>) -> LaneRefusal {
    match e {
        AppendError::Payload(e) => LaneRefusal::Frame(FrameError::Malformed(e)),
        AppendError::TooLarge { len, max } => LaneRefusal::Frame(FrameError::TooLarge { len, max }),
    }
}

impl CallLane {
    /// An empty lane taking at most `max_frames` frames (at least one) of at
    /// most `max_frame_bytes` each.
    pub(crate) fn new(max_frames: usize, max_frame_bytes: usize) -> Self {
        Self {
            state: Mutex::new(LaneState {
                buf: Vec::new(),
                frames: 0,
                entries: 0,
                run: OpenRun::default(),
                routes: OutboundRoutes::default(),
                closed: false,
            }),
            ready: Notify::new(),
            max_frames: max_frames.max(1),
            max_frame_bytes,
        }
    }

    /// Appends `call`, its payload written by `payload`, if the lane is
    /// open, below its frame bound, and `admit` takes the frame's size in
    /// bytes (an `admit` that said yes is never undone here: on success
    /// only).
    pub(crate) fn push_call(
        &self,
        call: OutCall<'_>,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
        admit: impl FnOnce(u64) -> bool,
    ) -> Result<(), LaneRefusal> {
        let mut st = self.open()?;
        let start = st.buf.len();
        let LaneState { buf, routes, .. } = &mut *st;
        let form = routes.form(call.service, call.message);
        let named = !matches!(form, super::frame::RouteForm::Id(_));
        let appended = append_call(buf, call.id, form, call.meta, self.max_frame_bytes, payload);
        if let Err(r) = admitted(appended, buf, start, admit) {
            if named {
                // The peer never learns the id this frame gave the pair.
                routes.forget_pair(call.service, call.message);
            }
            return Err(r);
        }
        self.queued(st, start);
        Ok(())
    }

    /// Queues a topic event, written in place by `payload`, on the terms
    /// of [`push_call`](Self::push_call) (`admit` takes the bytes it adds):
    /// appended to the `PublishRun` at the end of the buffer when that run
    /// names the same topic and wire name and has room, else as a new
    /// `PublishRun` frame. No `Frame`, no copies of the topic, wire name or
    /// payload.
    pub(crate) fn push_publish(
        &self,
        p: OutPublish<'_>,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
        admit: impl FnOnce(u64) -> bool,
    ) -> Result<(), LaneRefusal> {
        let mut st = self.open()?;
        let LaneState {
            buf,
            run,
            frames,
            entries,
            ..
        } = &mut *st;
        let at = buf.len();
        let joined = run.joinable(at, p.topic, p.message);
        let (mut frame, mut count) = match joined {
            Some(frame) => (frame, run.count),
            None => (open_run(buf, p.topic, p.message), 0),
        };
        let event_at = buf.len();
        if let Err(e) = append_run_event(buf, p.plain, p.members, payload) {
            buf.truncate(at);
            return Err(refusal(e));
        }
        let mut opened = joined.is_none();
        if let Err(e) = seal_run(buf, frame, count + 1, self.max_frame_bytes) {
            if opened {
                buf.truncate(at);
                return Err(refusal(e));
            }
            // The run would grow past the frame limit: the event opens a
            // run of its own (the run before it is left as it was sealed).
            let event = buf.split_off(event_at);
            frame = open_run(buf, p.topic, p.message);
            buf.extend_from_slice(&event);
            count = 0;
            opened = true;
            if let Err(e) = seal_run(buf, frame, 1, self.max_frame_bytes) {
                buf.truncate(at);
                return Err(refusal(e));
            }
        }
        if !admit((buf.len() - at) as u64) {
            buf.truncate(at);
            if !opened {
                // Its length and count as they were before this event.
                let _ = seal_run::<CodecError>(buf, frame, count, self.max_frame_bytes);
            }
            return Err(LaneRefusal::Full);
        }
        if opened {
            run.open(frame, p.topic, p.message);
            *frames += 1;
        }
        run.count = count + 1;
        run.end = buf.len();
        *entries += 1;
        drop(st);
        if at == 0 {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Appends any other data-lane frame (a JSON ask, or a call given as a
    /// frame), on the same terms as [`push_call`](Self::push_call). The
    /// frame is left as it was, so a refused one can be pushed again.
    pub(crate) fn push_frame(
        &self,
        frame: &mut Frame,
        admit: impl FnOnce(u64) -> bool,
    ) -> Result<(), LaneRefusal> {
        let mut st = self.open()?;
        let start = st.buf.len();
        let LaneState { buf, routes, .. } = &mut *st;
        // The route's wire form is for this push only.
        let original = frame.route_mut().map(|r| {
            let local = r.clone();
            routes.wire_form(r);
            local
        });
        let refusal = match encode_into(frame, self.max_frame_bytes, buf) {
            Ok(()) if admit((buf.len() - start) as u64) => None,
            Ok(()) => {
                buf.truncate(start);
                Some(LaneRefusal::Full)
            }
            Err(e) => Some(LaneRefusal::Frame(e)),
        };
        if let (Some(route), Some(local)) = (frame.route_mut(), original) {
            if refusal.is_some() {
                routes.forget(route);
            }
            *route = local;
        }
        if let Some(r) = refusal {
            return Err(r);
        }
        self.queued(st, start);
        Ok(())
    }

    /// The lane's state, if it is open and below its frame bound.
    fn open(&self) -> Result<parking_lot::MutexGuard<'_, LaneState>, LaneRefusal> {
        let st = self.state.lock();
        if st.closed {
            return Err(LaneRefusal::Closed);
        }
        if st.entries >= self.max_frames {
            return Err(LaneRefusal::Full);
        }
        Ok(st)
    }

    /// Counts the frame just appended at `start`, and wakes the writer if
    /// the lane was empty before it.
    fn queued(&self, mut st: parking_lot::MutexGuard<'_, LaneState>, start: usize) {
        st.frames += 1;
        st.entries += 1;
        drop(st);
        if start == 0 {
            self.ready.notify_one();
        }
    }

    /// Waits until the lane may hold frames (it may turn out empty: take
    /// what is there and wait again).
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Moves every queued frame to the end of `out` (by swapping buffers
    /// when `out` is empty); the bytes and frames moved.
    pub(crate) fn take_into(&self, out: &mut Vec<u8>) -> (u64, u64) {
        let mut st = self.state.lock();
        let bytes = st.buf.len() as u64;
        let frames = st.frames as u64;
        if out.is_empty() {
            std::mem::swap(out, &mut st.buf);
        } else {
            out.extend_from_slice(&st.buf);
            st.buf.clear();
        }
        st.frames = 0;
        st.entries = 0;
        // The run left with the bytes: the next event opens a new one.
        st.run.at = None;
        (bytes, frames)
    }

    /// Queues `last` after every call queued so far and refuses later calls
    /// as `Closed`, keeping what is queued for the writer (a retired
    /// connection's `CallsDone`: the peer reads every call sent before it).
    /// `count` takes its bytes into the connection's byte count, as
    /// `admit` does a call's. `false` if the lane was closed already.
    pub(crate) fn seal(&self, last: &Frame, count: impl FnOnce(u64)) -> bool {
        let mut st = self.state.lock();
        if st.closed {
            return false;
        }
        st.closed = true;
        let start = st.buf.len();
        if encode_into(last, self.max_frame_bytes, &mut st.buf).is_err() {
            st.buf.truncate(start);
            return false;
        }
        count((st.buf.len() - start) as u64);
        self.queued(st, start);
        true
    }

    /// Closes the lane: later calls are refused as `Closed`; what was still
    /// queued is dropped, and its bytes returned.
    pub(crate) fn close(&self) -> u64 {
        let mut st = self.state.lock();
        st.closed = true;
        let bytes = st.buf.len() as u64;
        st.buf = Vec::new();
        st.frames = 0;
        st.entries = 0;
        st.run.at = None;
        bytes
    }
}

#[cfg(test)]
mod tests;
