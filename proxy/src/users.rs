//! Frontend users at runtime, and the backend credentials the proxy learns from their logins.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::UserRow;
use crate::protocol::auth::{caching_sha2_stage2, NativeSecret, PasswordError, PasswordHash};

/// What the proxy can prove to a backend on a user's behalf. Held in memory only.
#[derive(Clone, Default)]
pub struct Credentials {
    pub native: Option<NativeSecret>,
    pub cleartext: Option<Arc<str>>,
    /// caching_sha2_password's cache entry: lets a returning client use the fast path.
    pub sha2_stage2: Option<[u8; 32]>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("native", &self.native.is_some())
            .field("cleartext", &self.cleartext.is_some())
            .finish()
    }
}

#[derive(Debug)]
pub struct User {
    pub row: UserRow,
    pub hash: PasswordHash,
    credentials: Mutex<Credentials>,
    connections: AtomicU32,
}

impl User {
    pub fn new(row: UserRow) -> Result<User, PasswordError> {
        let hash = PasswordHash::parse(&row.password)?;
        let mut credentials = Credentials::default();
        if !row.password.starts_with('*') {
            credentials = Credentials::from_cleartext(&row.password);
        }
        Ok(User {
            row,
            hash,
            credentials: Mutex::new(credentials),
            connections: AtomicU32::new(0),
        })
    }

    pub fn credentials(&self) -> Credentials {
        self.credentials
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Keeps `SHA1(password)` learned from a verified native login.
    pub fn learn_native(&self, secret: NativeSecret) {
        if let Ok(mut c) = self.credentials.lock() {
            c.native = Some(secret);
        }
    }

    /// Keeps everything derivable from a verified clear-text password.
    pub fn learn_cleartext(&self, password: &str) {
        if let Ok(mut c) = self.credentials.lock() {
            *c = Credentials::from_cleartext(password);
        }
    }

    /// Counts a client connection unless the user is at `max_connections`.
    pub fn try_connect(self: &Arc<Self>) -> Option<UserConnection> {
        let max = self.row.max_connections;
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| UserConnection(Arc::clone(self)))
    }

    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
    }
}

impl Credentials {
    fn from_cleartext(password: &str) -> Credentials {
        Credentials {
            native: Some(NativeSecret::of_cleartext(password)),
            cleartext: Some(Arc::from(password)),
            sha2_stage2: Some(caching_sha2_stage2(password.as_bytes())),
        }
    }
}

/// One counted client connection of a user; uncounted on drop.
#[derive(Debug)]
pub struct UserConnection(pub Arc<User>);

impl Drop for UserConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Frontend users by name.
#[derive(Debug, Default)]
pub struct Users {
    by_name: HashMap<String, Arc<User>>,
}

impl Users {
    pub fn from_rows<'a>(
        rows: impl Iterator<Item = &'a UserRow>,
    ) -> Result<Users, (String, PasswordError)> {
        let mut by_name = HashMap::new();
        for row in rows.filter(|r| r.frontend) {
            let user = User::new(row.clone()).map_err(|e| (row.username.clone(), e))?;
            by_name.insert(row.username.clone(), Arc::new(user));
        }
        Ok(Users { by_name })
    }

    /// An active frontend user.
    pub fn get(&self, name: &str) -> Option<&Arc<User>> {
        self.by_name.get(name).filter(|u| u.row.active)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<User>> {
        self.by_name.values()
    }
}
