//! Child processes the fixtures start (servers, the `switchyard` binary), stopped by their pid.

use std::process::Child;
use std::time::Duration;

use super::poll::wait;

/// SIGTERM to `child`, SIGKILL if it has not exited within `grace`; waited for either way.
pub fn stop(child: &mut Child, grace: Duration) {
    // SAFETY: signalling our own child process, by its pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let exited = wait("the child to exit")
        .within(grace)
        .every(Duration::from_millis(50))
        .try_until_blocking(|| child.try_wait().ok().flatten());
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// SIGKILL to `child`, waited for.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
