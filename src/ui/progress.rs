//! The spinner on stderr while slow listings run (stderr a terminal only).

use crate::Io;

/// Shows a spinner on stderr while `fut` runs, only when stderr is a terminal and the
/// listing takes longer than 300 ms; clears it before anything else is printed.
pub async fn while_listing<F: std::future::Future>(
    fut: F,
    io: &mut Io<'_>,
    targets: usize,
) -> F::Output {
    if !io.progress {
        return fut.await;
    }
    const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
    tokio::pin!(fut);
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(120));
    let mut shown = false;
    let mut i = 0;
    let out = loop {
        tokio::select! {
            out = &mut fut => break out,
            _ = tick.tick() => {
                if started.elapsed() > std::time::Duration::from_millis(300) {
                    let _ = write!(io.err, "\r{} listing {targets} target(s)... {:.0}s", FRAMES[i % 4], started.elapsed().as_secs_f64());
                    let _ = io.err.flush();
                    shown = true;
                    i += 1;
                }
            }
        }
    };
    if shown {
        let _ = write!(io.err, "\r\x1b[2K");
    }
    out
}
