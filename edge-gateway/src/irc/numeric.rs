//! Numeric replies as values: named codes and a builder that produces
//! `:<server> <code> <nick> …`, plus the standard texts of the errors that
//! several commands share, so every command words them the same way.

use super::line::Message;

pub const RPL_WELCOME: u16 = 1;
pub const RPL_YOURHOST: u16 = 2;
pub const RPL_CREATED: u16 = 3;
pub const RPL_MYINFO: u16 = 4;
pub const RPL_ISUPPORT: u16 = 5;
pub const RPL_UMODEIS: u16 = 221;
pub const RPL_LUSERCLIENT: u16 = 251;
pub const RPL_LUSEROP: u16 = 252;
pub const RPL_LUSERUNKNOWN: u16 = 253;
pub const RPL_LUSERCHANNELS: u16 = 254;
pub const RPL_LUSERME: u16 = 255;
pub const RPL_LOCALUSERS: u16 = 265;
pub const RPL_GLOBALUSERS: u16 = 266;
pub const RPL_AWAY: u16 = 301;
pub const RPL_USERHOST: u16 = 302;
pub const RPL_ISON: u16 = 303;
pub const RPL_UNAWAY: u16 = 305;
pub const RPL_NOWAWAY: u16 = 306;
pub const RPL_WHOISUSER: u16 = 311;
pub const RPL_WHOISSERVER: u16 = 312;
pub const RPL_ENDOFWHO: u16 = 315;
pub const RPL_WHOISIDLE: u16 = 317;
pub const RPL_ENDOFWHOIS: u16 = 318;
pub const RPL_WHOISCHANNELS: u16 = 319;
pub const RPL_LISTSTART: u16 = 321;
pub const RPL_WHOISACCOUNT: u16 = 330;
// MONITOR (IRCv3)
pub const RPL_MONONLINE: u16 = 730;
pub const RPL_MONOFFLINE: u16 = 731;
pub const RPL_MONLIST: u16 = 732;
pub const RPL_ENDOFMONLIST: u16 = 733;
pub const ERR_MONLISTFULL: u16 = 734;
/// IRCv3 bot mode: `335 <me> <nick> :is a bot`.
pub const RPL_WHOISBOT: u16 = 335;
pub const RPL_WHOISCERTFP: u16 = 276;
pub const RPL_WHOISSECURE: u16 = 671;
pub const RPL_LIST: u16 = 322;
pub const RPL_LISTEND: u16 = 323;
pub const RPL_CHANNELMODEIS: u16 = 324;
pub const RPL_CREATIONTIME: u16 = 329;
pub const RPL_NOTOPIC: u16 = 331;
pub const RPL_TOPIC: u16 = 332;
pub const RPL_TOPICWHOTIME: u16 = 333;
pub const RPL_INVITING: u16 = 341;
pub const RPL_VERSION: u16 = 351;
pub const RPL_WHOREPLY: u16 = 352;
pub const RPL_NAMREPLY: u16 = 353;
pub const RPL_ENDOFNAMES: u16 = 366;
pub const RPL_BANLIST: u16 = 367;
pub const RPL_ENDOFBANLIST: u16 = 368;
pub const RPL_MOTD: u16 = 372;
pub const RPL_MOTDSTART: u16 = 375;
pub const RPL_ENDOFMOTD: u16 = 376;
pub const RPL_TIME: u16 = 391;
pub const RPL_ADMINME: u16 = 256;
pub const RPL_ADMINLOC1: u16 = 257;
pub const RPL_ADMINLOC2: u16 = 258;
pub const RPL_ADMINEMAIL: u16 = 259;
pub const RPL_INFO: u16 = 371;
pub const RPL_ENDOFINFO: u16 = 374;
pub const ERR_HELPNOTFOUND: u16 = 524;
pub const RPL_YOUREOPER: u16 = 381;
/// `<nick> <host> :is now your displayed host` (CHGHOST).
pub const RPL_HOSTHIDDEN: u16 = 396;
pub const RPL_WHOISOPERATOR: u16 = 313;
pub const RPL_WHOWASUSER: u16 = 314;
pub const RPL_ENDOFWHOWAS: u16 = 369;
pub const ERR_WASNOSUCHNICK: u16 = 406;
pub const ERR_PASSWDMISMATCH: u16 = 464;
pub const ERR_NOPRIVILEGES: u16 = 481;
pub const ERR_NOOPERHOST: u16 = 491;
pub const RPL_HELPSTART: u16 = 704;
pub const RPL_HELPTXT: u16 = 705;
pub const RPL_ENDOFHELP: u16 = 706;
pub const ERR_NOSUCHNICK: u16 = 401;
pub const ERR_NOSUCHCHANNEL: u16 = 403;
pub const ERR_CANNOTSENDTOCHAN: u16 = 404;
pub const ERR_TOOMANYCHANNELS: u16 = 405;
pub const ERR_TOOMANYTARGETS: u16 = 407;
pub const ERR_NOORIGIN: u16 = 409;
pub const ERR_INVALIDCAPCMD: u16 = 410;
pub const ERR_NORECIPIENT: u16 = 411;
pub const ERR_NOTEXTTOSEND: u16 = 412;
pub const ERR_INPUTTOOLONG: u16 = 417;
pub const ERR_UNKNOWNCOMMAND: u16 = 421;
pub const ERR_NOMOTD: u16 = 422;
pub const ERR_NONICKNAMEGIVEN: u16 = 431;
pub const ERR_ERRONEUSNICKNAME: u16 = 432;
pub const ERR_NICKNAMEINUSE: u16 = 433;
pub const ERR_USERNOTINCHANNEL: u16 = 441;
pub const ERR_NOTONCHANNEL: u16 = 442;
pub const ERR_USERONCHANNEL: u16 = 443;
pub const ERR_NOTREGISTERED: u16 = 451;
pub const ERR_NEEDMOREPARAMS: u16 = 461;
pub const ERR_ALREADYREGISTERED: u16 = 462;
pub const ERR_CHANNELISFULL: u16 = 471;
pub const ERR_UNKNOWNMODE: u16 = 472;
pub const ERR_INVITEONLYCHAN: u16 = 473;
pub const ERR_BANNEDFROMCHAN: u16 = 474;
pub const ERR_BADCHANNELKEY: u16 = 475;
pub const ERR_BADCHANMASK: u16 = 476;
pub const ERR_CHANOPRIVSNEEDED: u16 = 482;
pub const ERR_UMODEUNKNOWNFLAG: u16 = 501;
pub const ERR_USERSDONTMATCH: u16 = 502;

/// `:<server> <code> <nick>`; add the rest with [`Message::param`] and
/// [`Message::text`]. Codes are always three digits (`001`).
pub fn numeric(server: &str, code: u16, nick: &str) -> Message {
    Message::new(format!("{code:03}"))
        .with_source(server)
        .param(nick)
}

/// Builds the numerics of one client: knows the server name and the
/// client's current nick (`*` before registration).
#[derive(Debug, Clone, Copy)]
pub struct Numerics<'a> {
    pub server: &'a str,
    pub nick: &'a str,
}

impl<'a> Numerics<'a> {
    pub fn new(server: &'a str, nick: &'a str) -> Self {
        Self { server, nick }
    }

    pub fn n(&self, code: u16) -> Message {
        numeric(self.server, code, self.nick)
    }

    pub fn no_such_nick(&self, target: &str) -> Message {
        self.n(ERR_NOSUCHNICK)
            .param(target)
            .text("No such nick/channel")
    }

    pub fn no_such_channel(&self, channel: &str) -> Message {
        self.n(ERR_NOSUCHCHANNEL)
            .param(channel)
            .text("No such channel")
    }

    pub fn too_many_channels(&self, channel: &str) -> Message {
        self.n(ERR_TOOMANYCHANNELS)
            .param(channel)
            .text("You have joined too many channels")
    }

    pub fn too_many_targets(&self, target: &str) -> Message {
        self.n(ERR_TOOMANYTARGETS)
            .param(target)
            .text("Too many targets")
    }

    pub fn need_more_params(&self, command: &str) -> Message {
        self.n(ERR_NEEDMOREPARAMS)
            .param(command)
            .text("Not enough parameters")
    }

    pub fn unknown_command(&self, command: &str) -> Message {
        self.n(ERR_UNKNOWNCOMMAND)
            .param(command)
            .text("Unknown command")
    }

    pub fn not_registered(&self) -> Message {
        // Always `*`: the client has no nick the server acknowledged yet.
        numeric(self.server, ERR_NOTREGISTERED, "*").text("You have not registered")
    }

    pub fn already_registered(&self) -> Message {
        self.n(ERR_ALREADYREGISTERED).text("You may not reregister")
    }

    pub fn input_too_long(&self) -> Message {
        self.n(ERR_INPUTTOOLONG).text("Input line was too long")
    }

    pub fn nick_in_use(&self, nick: &str) -> Message {
        self.n(ERR_NICKNAMEINUSE)
            .param(nick)
            .text("Nickname is already in use")
    }

    pub fn erroneous_nick(&self, nick: &str) -> Message {
        self.n(ERR_ERRONEUSNICKNAME)
            .param(nick)
            .text("Erroneous nickname")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_are_three_digits_with_source_and_target() {
        let n = Numerics::new("irc.test", "alice");
        assert_eq!(
            n.n(RPL_WELCOME).text("Hi").to_wire(),
            ":irc.test 001 alice :Hi"
        );
        assert_eq!(
            n.no_such_nick("bob").to_wire(),
            ":irc.test 401 alice bob :No such nick/channel"
        );
        assert_eq!(
            n.need_more_params("JOIN").to_wire(),
            ":irc.test 461 alice JOIN :Not enough parameters"
        );
        assert_eq!(
            n.not_registered().to_wire(),
            ":irc.test 451 * :You have not registered"
        );
        assert_eq!(
            Numerics::new("s", "*").nick_in_use("bob").to_wire(),
            ":s 433 * bob :Nickname is already in use"
        );
        assert_eq!(
            n.input_too_long().to_wire(),
            ":irc.test 417 alice :Input line was too long"
        );
    }
}
