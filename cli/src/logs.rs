//! The handlers' logs on the command line: `salesflow invoke` runs the functions' handlers in-process, so it
//! installs the subscriber their `main`s install on Lambda — JSON lines, no timestamps, `RUST_LOG` filtering
//! (default `info`) — writing to stderr, as stdout carries the handler's response.

/// Installs the subscriber (once; a second call is a no-op).
pub fn init_stderr() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .without_time()
        .with_writer(std::io::stderr)
        .try_init();
}
