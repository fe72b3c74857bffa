//! Watching stdin for end of file: how a child process learns that its
//! parent is gone (even one killed with SIGKILL).

/// Resolves when stdin reaches end of file (or fails). Read on a plain
/// thread: tokio's stdin read cannot be cancelled and would hold up the
/// runtime's shutdown.
pub async fn stdin_eof() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("msa-stdin-watch".into())
        .spawn(move || {
            let mut buf = [0u8; 256];
            while matches!(std::io::Read::read(&mut std::io::stdin(), &mut buf), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = rx.await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch stdin");
            std::future::pending::<()>().await;
        }
    }
}
