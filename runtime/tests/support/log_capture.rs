//! Captures what a test binary logs: a global `tracing` subscriber that
//! writes into a shared buffer. Shared by the runtime's and the gateway's
//! tests (`#[path]`), each binary holding one test that installs it.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// The captured output; clones write to the same buffer.
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Installs the process-wide subscriber (plain text, up to `level`):
    /// call once per test binary.
    pub(crate) fn install(level: tracing::Level) -> Self {
        let buf = Self::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(level)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    }

    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}
