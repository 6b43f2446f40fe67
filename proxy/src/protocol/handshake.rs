//! The connection phase: the server greeting (HandshakeV10), the client's HandshakeResponse41
//! or SSLRequest, and auth-switch and auth-more-data messages. Both directions, because the proxy
//! is a server to its clients and a client to its backends.

use bytes::{BufMut, BytesMut};

use super::constants::cap;
use super::wire::{put_lenenc_bytes, put_lenenc_int, Reader};

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";

/// The greeting a server sends first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub server_version: String,
    pub connection_id: u32,
    /// The auth nonce, both parts joined (20 bytes with the usual plugins).
    pub nonce: Vec<u8>,
    pub capabilities: u32,
    /// MariaDB's extended capabilities (`cap::ext`); only sent when `cap::MYSQL` is clear.
    pub ext_capabilities: u32,
    pub collation: u8,
    pub status: u16,
    pub auth_plugin: String,
}

impl Greeting {
    pub fn encode(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(128);
        out.put_u8(10);
        out.put_slice(self.server_version.as_bytes());
        out.put_u8(0);
        out.put_u32_le(self.connection_id);
        let (first, second) = self.nonce.split_at(self.nonce.len().min(8));
        out.put_slice(first);
        out.put_u8(0);
        out.put_u16_le(self.capabilities as u16);
        out.put_u8(self.collation);
        out.put_u16_le(self.status);
        out.put_u16_le((self.capabilities >> 16) as u16);
        out.put_u8((self.nonce.len() + 1) as u8);
        out.put_slice(&[0; 6]);
        out.put_u32_le(ext_word(self.capabilities, self.ext_capabilities));
        out.put_slice(second);
        out.put_u8(0);
        out.put_slice(self.auth_plugin.as_bytes());
        out.put_u8(0);
        out
    }

    pub fn parse(payload: &[u8]) -> Option<Greeting> {
        let mut r = Reader::new(payload);
        if r.u8()? != 10 {
            return None;
        }
        let server_version = String::from_utf8_lossy(r.null_str()?).into_owned();
        let connection_id = r.u32()?;
        let mut nonce = r.bytes(8)?.to_vec();
        r.skip(1)?;
        let cap_low = u32::from(r.u16()?);
        let collation = r.u8().unwrap_or(0);
        let status = r.u16().unwrap_or(0);
        let cap_high = u32::from(r.u16().unwrap_or(0));
        let capabilities = cap_low | cap_high << 16;
        let auth_len = usize::from(r.u8().unwrap_or(0));
        r.skip(6)?;
        let ext_capabilities = ext_word(capabilities, r.u32()?);
        let mut auth_plugin = String::new();
        if capabilities & cap::SECURE_CONNECTION != 0 {
            let n = auth_len.saturating_sub(9).max(12);
            nonce.extend_from_slice(r.bytes(n)?);
            r.skip(1)?;
        }
        if capabilities & cap::PLUGIN_AUTH != 0 {
            auth_plugin = String::from_utf8_lossy(r.null_str_or_rest()).into_owned();
        }
        Some(Greeting {
            server_version,
            connection_id,
            nonce,
            capabilities,
            ext_capabilities,
            collation,
            status,
            auth_plugin,
        })
    }
}

/// The client's answer to the greeting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    /// MariaDB's extended capabilities (`cap::ext`); only sent when `cap::MYSQL` is clear.
    pub ext_capabilities: u32,
    pub max_packet: u32,
    pub collation: u8,
    pub username: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    pub attributes: Vec<(String, String)>,
}

/// What a client sent after the greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHello {
    /// It wants TLS first; the full response comes over TLS.
    SslRequest {
        capabilities: u32,
    },
    Response(HandshakeResponse),
}

impl ClientHello {
    pub fn parse(payload: &[u8]) -> Option<ClientHello> {
        let mut r = Reader::new(payload);
        let capabilities = r.u32()?;
        if capabilities & cap::PROTOCOL_41 == 0 {
            return None;
        }
        let max_packet = r.u32()?;
        let collation = r.u8()?;
        r.skip(19)?;
        let ext_capabilities = ext_word(capabilities, r.u32()?);
        if r.is_empty() && capabilities & cap::SSL != 0 {
            return Some(ClientHello::SslRequest { capabilities });
        }
        let username = String::from_utf8_lossy(r.null_str()?).into_owned();
        let auth_response = if capabilities & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes()?.to_vec()
        } else if capabilities & cap::SECURE_CONNECTION != 0 {
            let n = usize::from(r.u8()?);
            r.bytes(n)?.to_vec()
        } else {
            r.null_str()?.to_vec()
        };
        let mut response = HandshakeResponse {
            capabilities,
            ext_capabilities,
            max_packet,
            collation,
            username,
            auth_response,
            ..HandshakeResponse::default()
        };
        if capabilities & cap::CONNECT_WITH_DB != 0 && !r.is_empty() {
            let db = r.null_str_or_rest();
            if !db.is_empty() {
                response.database = Some(String::from_utf8_lossy(db).into_owned());
            }
        }
        if capabilities & cap::PLUGIN_AUTH != 0 && !r.is_empty() {
            response.auth_plugin = Some(String::from_utf8_lossy(r.null_str_or_rest()).into_owned());
        }
        if capabilities & cap::CONNECT_ATTRS != 0 && !r.is_empty() {
            // Attributes are informational; a malformed block is ignored rather than refused.
            if let Some(block) = r.lenenc_bytes() {
                let mut a = Reader::new(block);
                while let (Some(k), Some(v)) = (a.lenenc_bytes(), a.lenenc_bytes()) {
                    response.attributes.push((
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    ));
                }
            }
        }
        Some(ClientHello::Response(response))
    }
}

impl HandshakeResponse {
    pub fn encode(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(128);
        put_fixed_prefix(
            &mut out,
            (self.capabilities, self.ext_capabilities),
            self.max_packet,
            self.collation,
        );
        out.put_slice(self.username.as_bytes());
        out.put_u8(0);
        if self.capabilities & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_bytes(&mut out, &self.auth_response);
        } else {
            out.put_u8(self.auth_response.len() as u8);
            out.put_slice(&self.auth_response);
        }
        if self.capabilities & cap::CONNECT_WITH_DB != 0 {
            out.put_slice(self.database.as_deref().unwrap_or("").as_bytes());
            out.put_u8(0);
        }
        if self.capabilities & cap::PLUGIN_AUTH != 0 {
            out.put_slice(self.auth_plugin.as_deref().unwrap_or("").as_bytes());
            out.put_u8(0);
        }
        if self.capabilities & cap::CONNECT_ATTRS != 0 {
            let mut block = BytesMut::new();
            for (k, v) in &self.attributes {
                put_lenenc_bytes(&mut block, k.as_bytes());
                put_lenenc_bytes(&mut block, v.as_bytes());
            }
            put_lenenc_int(&mut out, block.len() as u64);
            out.put_slice(&block);
        }
        out
    }
}

/// The 32-byte SSLRequest a client sends before starting TLS (`capabilities`: the 32-bit and
/// the MariaDB extended words).
pub fn encode_ssl_request(capabilities: (u32, u32), max_packet: u32, collation: u8) -> BytesMut {
    let mut out = BytesMut::with_capacity(32);
    let (base, ext) = capabilities;
    put_fixed_prefix(&mut out, (base | cap::SSL, ext), max_packet, collation);
    out
}

fn put_fixed_prefix(
    out: &mut BytesMut,
    (capabilities, ext_capabilities): (u32, u32),
    max_packet: u32,
    collation: u8,
) {
    out.put_u32_le(capabilities);
    out.put_u32_le(max_packet);
    out.put_u8(collation);
    out.put_slice(&[0; 19]);
    out.put_u32_le(ext_word(capabilities, ext_capabilities));
}

/// The extended-capability word as it is on the wire: it only means something when the sender
/// cleared bit 0 (MariaDB's CLIENT_MYSQL); otherwise the bytes are reserved filler.
fn ext_word(capabilities: u32, ext: u32) -> u32 {
    if capabilities & cap::MYSQL == 0 {
        ext
    } else {
        0
    }
}

/// 0xfe: the server asks the client to answer with another plugin and nonce.
pub fn encode_auth_switch(plugin: &str, nonce: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(2 + plugin.len() + nonce.len() + 1);
    out.put_u8(0xfe);
    out.put_slice(plugin.as_bytes());
    out.put_u8(0);
    out.put_slice(nonce);
    out.put_u8(0);
    out
}

/// Plugin name and nonce of an auth-switch request (the trailing NUL of the nonce is dropped).
pub fn parse_auth_switch(payload: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut r = Reader::new(payload);
    (r.u8()? == 0xfe).then_some(())?;
    let plugin = String::from_utf8_lossy(r.null_str()?).into_owned();
    let mut nonce = r.rest().to_vec();
    if nonce.last() == Some(&0) {
        nonce.pop();
    }
    Some((plugin, nonce))
}

/// 0x01: extra auth data (caching_sha2 fast-auth result, full-auth request, public key).
pub fn encode_auth_more_data(data: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(1 + data.len());
    out.put_u8(0x01);
    out.put_slice(data);
    out
}

/// A nonce of printable bytes without NUL, as servers send (some clients stop at a NUL).
pub fn new_nonce() -> [u8; 20] {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut nonce = [0u8; 20];
    for b in &mut nonce {
        *b = rng.gen_range(0x21..0x7f);
    }
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_round_trips() {
        let g = Greeting {
            server_version: "10.11.19-MariaDB".into(),
            connection_id: 77,
            nonce: new_nonce().to_vec(),
            capabilities: cap::PROXY_OFFERS,
            ext_capabilities: 0,
            collation: 45,
            status: 2,
            auth_plugin: NATIVE_PASSWORD.into(),
        };
        assert_eq!(Greeting::parse(&g.encode()), Some(g.clone()));
        // Extended bits are carried only by a greeting with bit 0 clear.
        let mariadb = Greeting {
            capabilities: cap::PROXY_OFFERS & !cap::MYSQL,
            ext_capabilities: cap::ext::EXTENDED_TYPE_INFO,
            ..g.clone()
        };
        assert_eq!(Greeting::parse(&mariadb.encode()), Some(mariadb));
        let mysql = Greeting {
            ext_capabilities: cap::ext::EXTENDED_TYPE_INFO,
            ..g.clone()
        };
        assert_eq!(Greeting::parse(&mysql.encode()), Some(g));
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Captured from MariaDB 10.11.14 (Debian 12): bit 0 clear, extended word 0x1d (PROGRESS,
    /// STMT_BULK_OPERATIONS, EXTENDED_TYPE_INFO, CACHE_METADATA) in the last 4 filler bytes.
    const MARIADB_GREETING: &str = "0a352e352e352d31302e31312e31342d4d6172696144422d302b6465623132\
        753200260000006a622b4f2d314d7100fef7080200ff81150000000000001d0000006f5d604d413d4d4d7b43\
        7856006d7973716c5f6e61746976655f70617373776f726400";

    /// The `mariadb` CLI (Connector/C 3.3.17) answering that greeting: bit 0 clear, extended
    /// word 0x1d at offset 28.
    const MARIADB_CLI_RESPONSE: &str = "84a2bf000000000121000000000000000000000000000000000000001d\
        0000006170700014ffacd328e60e0a846cfad560b695e0107f57fa266d7973716c5f6e61746976655f706173\
        73776f7264007f035f6f73054c696e75780c5f636c69656e745f6e616d650a6c69626d617269616462045f70\
        69640531363334390f5f636c69656e745f76657273696f6e06332e332e3137095f706c6174666f726d067838\
        365f36340c70726f6772616d5f6e616d65056d7973716c0c5f7365727665725f686f7374093132372e302e30\
        2e31";

    #[test]
    fn captured_mariadb_greeting_parses_and_re_encodes_byte_for_byte() {
        let bytes = unhex(MARIADB_GREETING);
        let g = Greeting::parse(&bytes).unwrap();
        assert_eq!(g.server_version, "5.5.5-10.11.14-MariaDB-0+deb12u2");
        assert_eq!(g.capabilities & cap::MYSQL, 0);
        assert_eq!(
            g.ext_capabilities,
            cap::ext::PROGRESS
                | cap::ext::STMT_BULK_OPERATIONS
                | cap::ext::EXTENDED_TYPE_INFO
                | cap::ext::CACHE_METADATA
        );
        assert_eq!(g.nonce.len(), 20);
        assert_eq!(g.auth_plugin, NATIVE_PASSWORD);
        assert_eq!(g.encode().to_vec(), bytes);
    }

    #[test]
    fn captured_mariadb_cli_response_parses_and_re_encodes_byte_for_byte() {
        let bytes = unhex(MARIADB_CLI_RESPONSE);
        let Some(ClientHello::Response(r)) = ClientHello::parse(&bytes) else {
            panic!("not a response");
        };
        assert_eq!(r.capabilities & cap::MYSQL, 0);
        assert_eq!(r.ext_capabilities, 0x1d);
        assert_eq!(r.username, "app");
        assert_eq!(r.collation, 33);
        assert_eq!(r.encode().to_vec(), bytes);
        // A MySQL-style client (bit 0 set) has no extended word, whatever the filler holds.
        let mut mysql = bytes.clone();
        mysql[0] |= 1;
        let Some(ClientHello::Response(r)) = ClientHello::parse(&mysql) else {
            panic!("not a response");
        };
        assert_eq!(r.ext_capabilities, 0);
    }

    #[test]
    fn response_round_trips_with_attributes_and_db() {
        let r = HandshakeResponse {
            capabilities: cap::PROXY_OFFERS & !cap::SSL & !cap::MYSQL,
            ext_capabilities: cap::ext::EXTENDED_TYPE_INFO,
            max_packet: 1 << 24,
            collation: 45,
            username: "app".into(),
            auth_response: vec![7; 20],
            database: Some("sbtest".into()),
            auth_plugin: Some(NATIVE_PASSWORD.into()),
            attributes: vec![("_client_name".into(), "libmariadb".into())],
        };
        assert_eq!(
            ClientHello::parse(&r.encode()),
            Some(ClientHello::Response(r))
        );
    }

    #[test]
    fn ssl_request_is_recognised() {
        let req = encode_ssl_request(
            (
                cap::PROXY_OFFERS & !cap::MYSQL,
                cap::ext::EXTENDED_TYPE_INFO,
            ),
            1 << 24,
            45,
        );
        assert_eq!(req.len(), 32);
        assert_eq!(req[28..], cap::ext::EXTENDED_TYPE_INFO.to_le_bytes());
        assert!(matches!(
            ClientHello::parse(&req),
            Some(ClientHello::SslRequest { .. })
        ));
    }

    #[test]
    fn truncated_hellos_are_refused_without_panic() {
        let r = HandshakeResponse {
            capabilities: cap::PROXY_OFFERS,
            username: "u".into(),
            ..Default::default()
        };
        let bytes = r.encode();
        // Capabilities, max packet, collation and filler; then "u\0" and the empty auth
        // response's length: what follows (database, plugin, attributes) is optional.
        let fixed = 32;
        let required = fixed + 2 + 1;
        for n in 0..bytes.len() {
            let parsed = ClientHello::parse(&bytes[..n]);
            if n == fixed {
                // Cut right after the fixed part, with SSL offered: an SSL request.
                assert!(
                    matches!(parsed, Some(ClientHello::SslRequest { .. })),
                    "{n} bytes: {parsed:?}"
                );
            } else if n < required {
                assert!(parsed.is_none(), "{n} bytes: {parsed:?}");
            } else {
                assert!(
                    matches!(&parsed, Some(ClientHello::Response(h)) if h.username == "u"),
                    "{n} bytes: {parsed:?}"
                );
            }
        }
        // A version string without its NUL: never a greeting.
        for n in 0..60 {
            let parsed = Greeting::parse(&vec![10u8; n]);
            assert!(parsed.is_none(), "{n} bytes: {parsed:?}");
        }
    }

    #[test]
    fn auth_switch_round_trips() {
        let nonce = new_nonce();
        let (plugin, got) =
            parse_auth_switch(&encode_auth_switch(NATIVE_PASSWORD, &nonce)).unwrap();
        assert_eq!((plugin.as_str(), &got[..]), (NATIVE_PASSWORD, &nonce[..]));
    }
}
