//! The gateway's configuration: `[gateway]`, `[irc]`, `[http]`, `[xmpp]` and the sections every
//! process shares (`bus::config`). Loaded with [`bus::config::load`], so a
//! second gateway on one machine needs only environment overrides
//! (`CHAT__IRC__LISTEN`, `CHAT__ADMIN__LISTEN`).

use bus::config::{AdminConfig, AmqpConfig, BusConfig, LogConfig, NatsConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub gateway: GatewaySection,
    pub irc: IrcConfig,
    pub http: HttpConfig,
    pub xmpp: XmppConfig,
    pub tinode: TinodeConfig,
    pub amqp: AmqpConfig,
    pub nats: NatsConfig,
    pub bus: BusConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewaySection {
    /// Names the queue `gateway.<id>`. Empty: `gw-<8 random hex>`, chosen at
    /// start ([`Config::gateway_id`]), so that restarts get a fresh queue.
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IrcConfig {
    pub listen: String,
    /// The TLS listener (IRC's 6697), served when `tls_cert` and `tls_key`
    /// name PEM files (a real certificate, or `chatctl tls self-signed`).
    pub tls_listen: String,
    pub tls_cert: String,
    pub tls_key: String,
    pub server_name: String,
    pub network: String,
    /// Message of the day, lines separated by `\n`; empty sends 422.
    pub motd: String,
    /// A file whose text is the message of the day (read at start-up;
    /// replaces `motd`).
    pub motd_file: String,
    /// What ADMIN says.
    pub admin_location: String,
    pub admin_email: String,
    /// IRC operators: name → argon2 PHC hash of the password
    /// (`chatctl oper hash`); `CHAT__IRC__OPERS__<NAME>` sets one.
    pub opers: std::collections::HashMap<String, String>,
    /// Send PING after this long without input from the client.
    pub ping_interval_secs: u64,
    /// Close the connection if nothing arrives this long after our PING.
    pub ping_timeout_secs: u64,
    pub registration_timeout_secs: u64,
    /// Lines a client may send in a burst before fake lag starts.
    pub flood_burst: u32,
    /// Lines per second a client earns back; 0 disables flood control.
    pub flood_rate: u32,
    /// Bound of each client's outbound queue, in lines.
    pub sendq_lines: usize,
    pub max_connections: usize,
    /// Connections one client address may hold (every protocol counts; 0:
    /// no limit), except the addresses in `connection_limit_exempt`
    /// (comma-separated, so that one environment variable can set it).
    pub max_connections_per_addr: usize,
    pub connection_limit_exempt: String,
    /// Nicks that are registered account names are kept for their owner:
    /// a session using one without being logged in to it is renamed.
    pub reserve_registered_nicks: bool,
    /// How long such a session has to log in before it is renamed.
    pub nick_grace_secs: u64,
    /// The most items one CHATHISTORY command returns (ISUPPORT
    /// `CHATHISTORY=<max>`); larger limits are clamped to it.
    pub chathistory_max: u32,
    /// Lines of a room's history shown after JOIN to clients without
    /// `draft/chathistory` (which fetch their own); 0 turns it off.
    pub join_replay_lines: u32,
}

impl Default for IrcConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:6667".into(),
            tls_listen: "0.0.0.0:6697".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            server_name: "irc.localhost".into(),
            network: "ChatNet".into(),
            motd: "Welcome to ChatNet.\nBe excellent to each other.".into(),
            motd_file: String::new(),
            admin_location: "A chat platform".into(),
            admin_email: "admin@localhost".into(),
            opers: Default::default(),
            ping_interval_secs: 90,
            ping_timeout_secs: 60,
            registration_timeout_secs: 30,
            flood_burst: 20,
            flood_rate: 10,
            sendq_lines: 4096,
            max_connections: 10_000,
            max_connections_per_addr: 64,
            // Local clients (tests, a reverse proxy on the same host).
            connection_limit_exempt: "127.0.0.1,0::1".into(),
            reserve_registered_nicks: false,
            nick_grace_secs: 30,
            chathistory_max: 100,
            join_replay_lines: 10,
        }
    }
}

/// The client-facing HTTP listener (WebSocket endpoints such as `/xmpp`),
/// apart from the admin port so that it can be exposed publicly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
        }
    }
}

/// XMPP over WebSocket (RFC 7395). The limits bound what one untrusted
/// client can make the parser hold or walk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct XmppConfig {
    /// The domain users log in to (`account@domain`); `<open to=…>` must name it.
    pub domain: String,
    /// The largest stanza (one WebSocket message), in bytes; larger ones end
    /// the stream with `policy-violation`.
    pub max_stanza_bytes: usize,
    /// The largest WebSocket message read at all. Messages between
    /// `max_stanza_bytes` and this are read whole and refused with
    /// `policy-violation` and a clean close (a server that stops reading
    /// mid-message resets the TCP connection, and the client never sees
    /// the error); beyond this the WebSocket layer gives up at once.
    pub max_websocket_bytes: usize,
    /// The deepest element nesting accepted in one stanza.
    pub max_depth: usize,
    /// The most attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
    /// Send a WebSocket ping after this long without input from the client.
    pub ping_interval_secs: u64,
    /// Close the stream if nothing arrives this long after our ping.
    pub ping_timeout_secs: u64,
    /// Time a client has to authenticate and bind a resource.
    pub login_timeout_secs: u64,
    /// Whether clients may create accounts in-band (XEP-0077).
    pub registration: bool,
}

impl Default for XmppConfig {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            max_stanza_bytes: 64 * 1024,
            max_websocket_bytes: 16 * 1024 * 1024,
            max_depth: 32,
            max_attributes: 64,
            ping_interval_secs: 60,
            ping_timeout_secs: 30,
            login_timeout_secs: 60,
            registration: true,
        }
    }
}

/// The Tinode protocol (`/v0/channels`, WebSocket and long polling).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TinodeConfig {
    /// API keys accepted (header `X-Tinode-APIKey`, query `apikey`, form
    /// value or cookie). The default is the key Tinode's own apps and SDK
    /// ship with.
    pub api_keys: Vec<String>,
    /// The largest client message, in bytes (`maxMessageSize` in `{hi}`).
    pub max_message_bytes: usize,
    /// A long-polling session with no request for this long is ended
    /// (Tinode: 55 s).
    pub lp_idle_secs: u64,
    /// How long a poll waits for a message before an empty 200.
    pub lp_poll_secs: u64,
    /// Time a client has to log in after connecting.
    pub login_timeout_secs: u64,
    /// Messages returned by `get data` without a `limit`, and the most
    /// returned with one.
    pub default_data_limit: u32,
    pub max_data_limit: u32,
}

impl Default for TinodeConfig {
    fn default() -> Self {
        Self {
            api_keys: vec!["AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K".into()],
            max_message_bytes: 256 * 1024,
            lp_idle_secs: 55,
            lp_poll_secs: 50,
            login_timeout_secs: 120,
            default_data_limit: 32,
            max_data_limit: 100,
        }
    }
}

impl Config {
    /// The configured id, or a fresh random one.
    pub fn gateway_id(&self) -> String {
        if self.gateway.id.is_empty() {
            format!("gw-{:08x}", rand::random::<u32>())
        } else {
            self.gateway.id.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_without_a_file() {
        let c: Config = bus::config::load(None).expect("defaults load");
        assert_eq!(c.irc.listen, "0.0.0.0:6667");
        assert_eq!(c.irc.flood_burst, 20);
        assert!(!c.irc.reserve_registered_nicks);
        assert_eq!(c.irc.nick_grace_secs, 30);
        assert_eq!(c.irc.chathistory_max, 100);
        assert_eq!(c.irc.join_replay_lines, 10);
        assert_eq!(c.http.listen, "0.0.0.0:8080");
        assert_eq!(c.xmpp.domain, "localhost");
        assert_eq!(c.xmpp.max_stanza_bytes, 65536);
        let id = c.gateway_id();
        assert!(id.starts_with("gw-") && id.len() == 11, "{id}");
    }
}
