//! Channel mode strings (`+o-v alice bob`) to and from [`ModeChange`]s.
//!
//! Which letters take a parameter follows what we advertise:
//! `CHANMODES=b,k,l,imnst` and `PREFIX=(ov)@+`. Type A (`b`) and prefix
//! modes (`o`, `v`) take one on both `+` and `-`; `k` too, except that `-k`
//! may omit it; `l` only on `+`. Letters we do not know are passed on without
//! a parameter: the router answers them with "unknown mode", which is the
//! one place that knows what a room supports.

use bus::schema::ModeChange;

use super::validate::MODES;

/// Whether `mode` consumes a parameter when set (`add`) or unset.
fn takes_param(mode: char, add: bool) -> bool {
    match mode {
        'b' | 'k' | 'o' | 'v' => true,
        'l' => add,
        _ => false,
    }
}

/// Parses a mode string and its arguments. A `b` without an argument is a
/// ban-list request (`+b`, argument `None`); other missing arguments are
/// passed on as `None` so the router answers "not enough parameters". At
/// most [`MODES`] changes with a parameter are kept.
pub fn parse_channel_modes(modestr: &str, args: &[String]) -> Vec<ModeChange> {
    let mut changes = Vec::new();
    let mut args = args.iter();
    let mut add = true;
    let mut with_param = 0;
    let mut listed = false;
    for c in modestr.chars() {
        match c {
            '+' => add = true,
            '-' => add = false,
            mode if takes_param(mode, add) => {
                let arg = args.next().filter(|a| !a.is_empty()).cloned();
                if mode == 'b' && arg.is_none() {
                    if !listed {
                        listed = true;
                        changes.push(ModeChange {
                            add: true,
                            mode,
                            arg: None,
                        });
                    }
                    continue;
                }
                if arg.is_some() {
                    if with_param == MODES {
                        continue;
                    }
                    with_param += 1;
                }
                changes.push(ModeChange { add, mode, arg });
            }
            mode => changes.push(ModeChange {
                add,
                mode,
                arg: None,
            }),
        }
    }
    changes
}

/// Rebuilds `["+o-v", "alice", "bob"]` from applied changes.
pub fn format_changes(changes: &[ModeChange]) -> Vec<String> {
    let mut letters = String::new();
    let mut args = Vec::new();
    let mut sign = None;
    for ch in changes {
        if sign != Some(ch.add) {
            letters.push(if ch.add { '+' } else { '-' });
            sign = Some(ch.add);
        }
        letters.push(ch.mode);
        if let Some(a) = &ch.arg {
            args.push(a.clone());
        }
    }
    let mut out = vec![letters];
    out.extend(args);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mc(add: bool, mode: char, arg: Option<&str>) -> ModeChange {
        ModeChange {
            add,
            mode,
            arg: arg.map(String::from),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_params_per_chanmodes() {
        assert_eq!(
            parse_channel_modes("+o-v", &s(&["alice", "bob"])),
            vec![mc(true, 'o', Some("alice")), mc(false, 'v', Some("bob"))]
        );
        assert_eq!(
            parse_channel_modes("+ntl-k", &s(&["10"])),
            vec![
                mc(true, 'n', None),
                mc(true, 't', None),
                mc(true, 'l', Some("10")),
                mc(false, 'k', None)
            ]
        );
        assert_eq!(
            parse_channel_modes("-l", &s(&["5"])),
            vec![mc(false, 'l', None)]
        );
        assert_eq!(
            parse_channel_modes("+k", &s(&["secret"])),
            vec![mc(true, 'k', Some("secret"))]
        );
    }

    #[test]
    fn bare_b_is_a_list_request() {
        assert_eq!(parse_channel_modes("b", &[]), vec![mc(true, 'b', None)]);
        assert_eq!(parse_channel_modes("+bb", &[]), vec![mc(true, 'b', None)]);
        assert_eq!(
            parse_channel_modes("+b", &s(&["*!*@x"])),
            vec![mc(true, 'b', Some("*!*@x"))]
        );
        assert_eq!(
            parse_channel_modes("-b", &s(&["*!*@x"])),
            vec![mc(false, 'b', Some("*!*@x"))]
        );
    }

    #[test]
    fn unknown_letters_and_missing_params_are_forwarded() {
        assert_eq!(
            parse_channel_modes("+Zo", &[]),
            vec![mc(true, 'Z', None), mc(true, 'o', None)]
        );
    }

    #[test]
    fn caps_parameterised_changes() {
        let args: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
        let changes = parse_channel_modes(&format!("+{}", "v".repeat(20)), &args);
        assert_eq!(changes.len(), MODES);
    }

    #[test]
    fn formats_changes() {
        let changes = vec![
            mc(true, 'o', Some("alice")),
            mc(false, 'v', Some("bob")),
            mc(false, 'm', None),
        ];
        assert_eq!(format_changes(&changes), s(&["+o-vm", "alice", "bob"]));
        assert_eq!(
            format_changes(&[mc(true, 'n', None), mc(true, 't', None)]),
            s(&["+nt"])
        );
    }
}
