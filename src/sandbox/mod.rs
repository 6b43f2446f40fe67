//! Local MariaDB topologies built from the installed server binaries.
