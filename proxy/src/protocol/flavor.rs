//! A client's protocol flavor: the capability bits that change the shape of what a server sends
//! or accepts. A backend connection is opened with exactly its client's flavor and only lent to
//! clients of the same one, so responses can pass through unread.

use std::ops::BitAnd;

use super::constants::cap;
use super::handshake::HandshakeResponse;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flavor {
    /// Bits of the 32-bit capability word, within `cap::FLAVOR_MASK`.
    pub caps: u32,
    /// MariaDB extended capabilities, within `cap::ext::FLAVOR_MASK`.
    pub ext: u32,
}

impl Flavor {
    /// The flavor of a client that answered a greeting offering `offered_ext`: extended bits
    /// the greeting did not offer are dropped, as the server ignores them.
    pub fn of(hello: &HandshakeResponse, offered_ext: u32) -> Flavor {
        Flavor {
            caps: hello.capabilities & cap::FLAVOR_MASK,
            ext: hello.ext_capabilities & offered_ext & cap::ext::FLAVOR_MASK,
        }
    }

    /// Whether column definitions carry MariaDB's data-type block.
    pub fn type_info(self) -> bool {
        self.ext & cap::ext::EXTENDED_TYPE_INFO != 0
    }
}

/// `flavor & cap::X` tests a bit of the 32-bit word, as when the flavor was a plain `u32`.
impl BitAnd<u32> for Flavor {
    type Output = u32;

    fn bitand(self, rhs: u32) -> u32 {
        self.caps & rhs
    }
}

/// The capabilities a greeting offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub caps: u32,
    /// MariaDB extended capabilities; sent only when `caps` has `cap::MYSQL` clear.
    pub ext: u32,
}

impl Offer {
    /// A MySQL-style greeting: bit 0 set, no extended capabilities.
    pub const MYSQL: Offer = Offer {
        caps: cap::PROXY_OFFERS,
        ext: 0,
    };

    /// The same offer without MariaDB's extensions, for endpoints that build every response
    /// themselves in the classic format (the admin interface).
    pub fn without_ext(self) -> Offer {
        Offer {
            caps: self.caps | cap::MYSQL,
            ext: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unoffered_and_shapeless_bits_stay_out() {
        let hello = HandshakeResponse {
            capabilities: cap::PROTOCOL_41 | cap::DEPRECATE_EOF | cap::SESSION_TRACK,
            ext_capabilities: cap::ext::PROGRESS
                | cap::ext::EXTENDED_TYPE_INFO
                | cap::ext::CACHE_METADATA,
            ..HandshakeResponse::default()
        };
        let f = Flavor::of(&hello, cap::ext::PROXY_OFFERS);
        assert_eq!(f.caps, cap::DEPRECATE_EOF | cap::SESSION_TRACK);
        assert_eq!(f.ext, cap::ext::EXTENDED_TYPE_INFO);
        assert!(f.type_info());
        assert_ne!(f & cap::SESSION_TRACK, 0);
        assert_eq!(Flavor::of(&hello, 0).ext, 0);
    }
}
