//! COM_CHANGE_USER: the client becomes another user (or the same, reset) without reconnecting.

use super::{End, Session};
use crate::protocol::auth::PasswordHash;
use crate::protocol::constants::{cap, errors};
use crate::protocol::handshake::{encode_auth_switch, new_nonce, NATIVE_PASSWORD};
use crate::protocol::messages::{encode_ok, Err as ErrPacket, Ok as OkPacket};
use crate::protocol::packet::HEADER_LEN;
use crate::protocol::wire::Reader;

struct ChangeUser {
    username: String,
    auth: Vec<u8>,
    schema: Option<String>,
    collation: Option<u8>,
    plugin: Option<String>,
}

fn parse(payload: &[u8], capabilities: u32) -> Option<ChangeUser> {
    let mut r = Reader::new(payload);
    r.u8()?;
    let username = String::from_utf8_lossy(r.null_str()?).into_owned();
    let auth = if capabilities & cap::SECURE_CONNECTION != 0 {
        let n = usize::from(r.u8()?);
        r.bytes(n)?.to_vec()
    } else {
        r.null_str()?.to_vec()
    };
    let schema = r.null_str_or_rest();
    let schema = (!schema.is_empty()).then(|| String::from_utf8_lossy(schema).into_owned());
    let collation = r.u16().and_then(|c| u8::try_from(c).ok());
    let plugin =
        (!r.is_empty()).then(|| String::from_utf8_lossy(r.null_str_or_rest()).into_owned());
    Some(ChangeUser {
        username,
        auth,
        schema,
        collation,
        plugin,
    })
}

impl Session {
    pub(super) async fn change_user(&mut self, packet: &[u8], mut seq: u8) -> Result<(), End> {
        let capabilities = self.flavor.caps | cap::SECURE_CONNECTION;
        let Some(req) = parse(&packet[HEADER_LEN..], capabilities) else {
            let err = ErrPacket::new(errors::HANDSHAKE, "Malformed COM_CHANGE_USER");
            let _ = self.send_error(seq, &err).await;
            return Err(End::Close);
        };
        let user = self.shared.runtime().users.get(&req.username).cloned();
        let verified = match (&user, req.plugin.as_deref().unwrap_or(NATIVE_PASSWORD)) {
            (Some(u), NATIVE_PASSWORD) if !req.auth.is_empty() => {
                verify(&u.hash, &self.nonce, &req.auth, u)
            }
            (Some(u), _) => {
                let nonce = new_nonce();
                self.client
                    .send(seq, &encode_auth_switch(NATIVE_PASSWORD, &nonce))
                    .await
                    .map_err(|_| End::Close)?;
                let Ok(Some((s, reply))) = self.client.read_packet(64 * 1024).await else {
                    return Err(End::Close);
                };
                seq = s.wrapping_add(1);
                verify(&u.hash, &nonce, &reply, u)
            }
            (None, _) => false,
        };
        let counted = user.filter(|_| verified).and_then(|u| u.try_connect());
        let Some(counted) = counted else {
            let err = ErrPacket::new(
                errors::ACCESS_DENIED,
                format!(
                    "Access denied for user '{}' (using password: YES)",
                    req.username
                ),
            );
            let _ = self.send_error(seq, &err).await;
            return Err(End::Close);
        };
        // The old user's server-side state must not survive: its connection goes back, reset,
        // and the session starts over as the server's would.
        self.end_backend(true).await;
        self.forget_session_state();
        self.schema = req.schema.or_else(|| counted.0.row.default_schema.clone());
        if let Some(c) = req.collation.filter(|&c| c != 0) {
            self.collation = c;
        }
        self.user = counted;
        tracing::Span::current().record("user", req.username.as_str());
        let ok = OkPacket {
            status: self.status,
            ..OkPacket::default()
        };
        let payload = encode_ok(&ok, self.flavor & cap::SESSION_TRACK != 0);
        self.client
            .send(seq, &payload)
            .await
            .map_err(|_| End::Close)?;
        Ok(())
    }
}

fn verify(hash: &PasswordHash, nonce: &[u8], reply: &[u8], user: &crate::users::User) -> bool {
    match hash.verify_native(nonce, reply) {
        Some(secret) => {
            user.learn_native(secret);
            true
        }
        None => false,
    }
}
