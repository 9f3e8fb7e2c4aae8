//! The calls in progress, for `voxbridge calls`, `status` and `hangup`: each call task
//! enters its call when it starts and leaves when it ends (a guard, so a call that
//! fails still leaves), saying which application runs and what the media carries.

use crate::control::CallInfo;
use crate::sip::endpoint::{CallHandle, IncomingCall};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

struct Entry {
    call_id: String,
    from: String,
    to: String,
    app: &'static str,
    codec: &'static str,
    started: Instant,
}

#[derive(Default)]
pub struct ActiveCalls {
    calls: Mutex<BTreeMap<CallHandle, Entry>>,
}

/// A call's place in the registry; leaving it removes the call.
pub struct InProgress<'a> {
    calls: &'a ActiveCalls,
    call: CallHandle,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        let mut calls = self.calls.lock();
        calls.remove(&self.call);
        crate::metrics::METRICS.calls_active.set(calls.len() as i64);
    }
}

impl InProgress<'_> {
    /// The application the call runs now.
    pub fn app(&self, app: &'static str) {
        if let Some(e) = self.calls.lock().get_mut(&self.call) {
            e.app = app;
        }
    }

    /// The application it runs now ("routing" until one started).
    pub fn current_app(&self) -> &'static str {
        self.calls.lock().get(&self.call).map_or("routing", |e| e.app)
    }

    /// What the media carries now (PCMU, PCMA, T.38).
    pub fn codec(&self, codec: &'static str) {
        if let Some(e) = self.calls.lock().get_mut(&self.call) {
            e.codec = codec;
        }
    }
}

impl ActiveCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<CallHandle, Entry>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new call, being routed.
    pub fn enter(&self, inc: &IncomingCall) -> InProgress<'_> {
        let e = Entry {
            call_id: inc.call_id.clone(),
            from: inc.caller.clone().unwrap_or_default(),
            to: inc.dialled.clone(),
            app: "routing",
            codec: "-",
            started: Instant::now(),
        };
        let mut calls = self.lock();
        calls.insert(inc.call, e);
        crate::metrics::METRICS.calls_active.set(calls.len() as i64);
        InProgress { calls: self, call: inc.call }
    }

    pub fn list(&self) -> Vec<CallInfo> {
        self.lock()
            .iter()
            .map(|(id, e)| CallInfo {
                id: *id,
                call_id: e.call_id.clone(),
                from: e.from.clone(),
                to: e.to.clone(),
                app: e.app.to_string(),
                secs: e.started.elapsed().as_secs(),
                codec: e.codec.to_string(),
            })
            .collect()
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// A call by its id or its SIP Call-ID.
    pub fn find(&self, id_or_call_id: &str) -> Option<CallHandle> {
        let calls = self.lock();
        if let Ok(id) = id_or_call_id.parse::<CallHandle>() {
            if calls.contains_key(&id) {
                return Some(id);
            }
        }
        calls.iter().find(|(_, e)| e.call_id == id_or_call_id).map(|(id, _)| *id)
    }
}
