//! The multiplexing settings (ProxySQL's delay variables, global and per hostgroup): set by the
//! admin plane, read by every session (`session::mux` decides the pins).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The multiplexing knobs of one hostgroup, resolved against the globals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostgroupMuxSettings {
    /// `mysql-auto_increment_delay_multiplex`: statements a session stays pinned after an OK
    /// that carries an insert id. ProxySQL's default is 5; ours is 0.
    pub auto_increment_delay: u32,
    /// `mysql-connection_delay_multiplex_ms`: how long a connection stays with its session after
    /// a statement that would release it.
    pub connection_delay_ms: u64,
    /// `mysql-multiplexing` and `mysql_hostgroup_attributes.multiplex`.
    pub multiplex: bool,
}

impl Default for HostgroupMuxSettings {
    fn default() -> Self {
        HostgroupMuxSettings {
            auto_increment_delay: 0,
            connection_delay_ms: 0,
            multiplex: true,
        }
    }
}

/// Per-hostgroup overrides from `mysql_hostgroup_attributes` (`multiplex` column, and
/// `hostgroup_settings` JSON keys `auto_increment_delay_multiplex`,
/// `connection_delay_multiplex_ms`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostgroupOverride {
    pub auto_increment_delay: Option<u32>,
    pub connection_delay_ms: Option<u64>,
    pub multiplex: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MuxConfig {
    pub global: HostgroupMuxSettings,
    pub hostgroups: HashMap<u32, HostgroupOverride>,
}

impl MuxConfig {
    pub fn for_hostgroup(&self, hostgroup: u32) -> HostgroupMuxSettings {
        let g = self.global;
        match self.hostgroups.get(&hostgroup) {
            None => g,
            Some(o) => HostgroupMuxSettings {
                auto_increment_delay: o.auto_increment_delay.unwrap_or(g.auto_increment_delay),
                connection_delay_ms: o.connection_delay_ms.unwrap_or(g.connection_delay_ms),
                multiplex: g.multiplex && o.multiplex.unwrap_or(true),
            },
        }
    }
}

/// The live multiplexing configuration, swapped whole by `LOAD MYSQL VARIABLES|SERVERS TO
/// RUNTIME`.
#[derive(Debug, Default)]
pub struct MuxSettings(RwLock<Arc<MuxConfig>>);

impl MuxSettings {
    pub fn get(&self) -> Arc<MuxConfig> {
        self.0
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    pub fn set(&self, config: MuxConfig) {
        let config = Arc::new(config);
        match self.0.write() {
            Ok(mut c) => *c = config,
            Err(p) => *p.into_inner() = config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostgroup_overrides_fall_back_to_globals() {
        let mut c = MuxConfig::default();
        c.global.auto_increment_delay = 5;
        c.hostgroups.insert(
            20,
            HostgroupOverride {
                auto_increment_delay: Some(0),
                multiplex: Some(false),
                ..Default::default()
            },
        );
        assert_eq!(c.for_hostgroup(10).auto_increment_delay, 5);
        assert_eq!(c.for_hostgroup(20).auto_increment_delay, 0);
        assert!(!c.for_hostgroup(20).multiplex);
        assert!(c.for_hostgroup(10).multiplex);
    }
}
