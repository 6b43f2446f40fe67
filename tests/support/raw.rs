//! A minimal MySQL client on the proxy's own codec, for what mysql_async cannot send:
//! malformed packets, commands it has no API for, cursors, and reading at a chosen pace.

use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::net::TcpStream;

use switchyard_proxy::protocol::auth::NativeSecret;
use switchyard_proxy::protocol::conn::PacketConn;
use switchyard_proxy::protocol::constants::{cap, MAX_PAYLOAD};
use switchyard_proxy::protocol::handshake::{
    parse_auth_switch, ClientHello, Greeting, HandshakeResponse,
};
use switchyard_proxy::protocol::messages::Err as ErrPacket;
use switchyard_proxy::protocol::transport::Transport;

pub const CLIENT_CAPS: u32 = cap::LONG_PASSWORD
    | cap::PROTOCOL_41
    | cap::SECURE_CONNECTION
    | cap::PLUGIN_AUTH
    | cap::TRANSACTIONS
    | cap::MULTI_STATEMENTS
    | cap::MULTI_RESULTS
    | cap::PS_MULTI_RESULTS
    | cap::CONNECT_WITH_DB
    | cap::DEPRECATE_EOF
    | cap::SESSION_TRACK;

pub struct RawClient {
    pub conn: PacketConn,
    /// The server's greeting.
    pub greeting: Greeting,
}

impl RawClient {
    /// Logs in with mysql_native_password, as a MySQL-style client (bit 0 set, no extended
    /// capabilities).
    pub async fn connect(
        addr: SocketAddr,
        user: &str,
        password: &str,
        db: Option<&str>,
    ) -> Result<RawClient, String> {
        Self::connect_with(addr, user, password, db, CLIENT_CAPS, 0).await
    }

    /// Logs in with the given capabilities. `ext`: MariaDB extended capabilities, asked for as
    /// Connector/C does: only those the greeting offers, with bit 0 cleared when the greeting's
    /// is clear.
    pub async fn connect_with(
        addr: SocketAddr,
        user: &str,
        password: &str,
        db: Option<&str>,
        capabilities: u32,
        ext: u32,
    ) -> Result<RawClient, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut conn = PacketConn::new(Transport::Tcp(stream));
        let (_, payload) = conn
            .read_packet(MAX_PAYLOAD)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("closed")?;
        let greeting = Greeting::parse(&payload).ok_or("bad greeting")?;
        let secret = NativeSecret::of_cleartext(password);
        let mariadb = ext != 0 && greeting.capabilities & cap::MYSQL == 0;
        let response = HandshakeResponse {
            capabilities: if mariadb {
                capabilities & !cap::MYSQL
            } else {
                capabilities
            },
            ext_capabilities: if mariadb {
                ext & greeting.ext_capabilities
            } else {
                0
            },
            max_packet: 1 << 30,
            collation: 45,
            username: user.into(),
            auth_response: secret.native_reply(&greeting.nonce).to_vec(),
            database: db.map(str::to_string),
            auth_plugin: Some("mysql_native_password".into()),
            attributes: vec![],
        };
        assert!(matches!(
            ClientHello::parse(&response.encode()),
            Some(ClientHello::Response(_))
        ));
        conn.send(1, &response.encode())
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let (seq, payload) = conn
                .read_packet(MAX_PAYLOAD)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("closed")?;
            match payload.first() {
                Some(0x00) => return Ok(RawClient { conn, greeting }),
                Some(0xfe) => {
                    let (_, nonce) = parse_auth_switch(&payload).ok_or("bad switch")?;
                    conn.send(seq + 1, &secret.native_reply(&nonce))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                _ => return Err(format!("login failed: {:?}", ErrPacket::parse(&payload))),
            }
        }
    }

    /// Sends a command (seq 0) and returns the packets of the response up to and including the
    /// first OK, ERR or EOF-style terminator after `terminators_to_skip` earlier ones.
    pub async fn command(&mut self, payload: &[u8]) -> Result<(), String> {
        self.conn
            .send(0, payload)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Reads one packet's payload.
    pub async fn read(&mut self) -> Result<BytesMut, String> {
        let (_, p) = self
            .conn
            .read_packet(MAX_PAYLOAD)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("closed")?;
        Ok(p)
    }

    /// Reads packets until an OK/EOF terminator (0xfe) or ERR; returns how many came before it
    /// and the terminator.
    pub async fn read_until_terminator(&mut self) -> Result<(usize, BytesMut), String> {
        let mut n = 0;
        loop {
            let p = self.read().await?;
            if (p.first() == Some(&0xfe) && p.len() < 0xff_ffff) || p.first() == Some(&0xff) {
                return Ok((n, p));
            }
            n += 1;
        }
    }
}
