//! What the console reads of a fleet of proxies (etcd, through the proxy crate's fleet client):
//! the current revision, the live members and the operation lock, for `fleet status` and the
//! console's fleet view alike.

use switchyard_proxy::fleet::{Fleet, FleetError, Holder, Member, Revision};

/// What `fleet status` and the console's fleet view show: the current revision, the live
/// proxies and who holds the operation lock, read in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetStatus {
    pub current: Option<Revision>,
    pub members: Vec<Member>,
    pub lock: Option<Holder>,
}

impl FleetStatus {
    /// The revision every proxy should run (0: nothing published yet).
    pub fn latest(&self) -> u64 {
        self.current.as_ref().map_or(0, |r| r.revision)
    }

    /// Revisions `member` is behind the latest one.
    pub fn lag(&self, member: &Member) -> u64 {
        lag(self.latest(), member.revision)
    }
}

/// Revisions a proxy running `runs` is behind `latest`; a proxy that reports a revision newer
/// than the one read (published between the two reads) is not behind.
pub fn lag(latest: u64, runs: u64) -> u64 {
    latest.saturating_sub(runs)
}

pub async fn read_status(fleet: &Fleet) -> Result<FleetStatus, FleetError> {
    Ok(FleetStatus {
        current: fleet.current().await?.map(|(r, _)| r),
        members: fleet.members().await?,
        lock: fleet.lock_holder().await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_revisions_behind_and_never_goes_negative() {
        assert_eq!(lag(7, 4), 3);
        assert_eq!(lag(7, 7), 0);
        assert_eq!(lag(0, 0), 0);
        // A proxy that applied a revision published after `current` was read.
        assert_eq!(lag(7, 8), 0);
        // A proxy that has run nothing yet is behind by every revision.
        assert_eq!(lag(3, 0), 3);
    }
}
