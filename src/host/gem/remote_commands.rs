//! Remote commands (E30 §4.11): S2F41 host command send → S2F42. This
//! module parses and checks the command; the GEM task carries it out on the
//! run engine (the same commands, through the same engine checks, as the
//! window's run control).
//!
//! Commands: START (LOTID, WAFERID, RECIPE), PAUSE, RESUME, STOP, ABORT (no
//! parameters). HCACK 0 done, 1 no such command, 2 cannot perform now
//! (also: every command in ONLINE LOCAL — the operator keeps control),
//! 3 a parameter is invalid (each named with its CPACK), 5 already in the
//! desired condition.

use crate::host::secs2::Item;

use super::IllegalData;

pub const HCACK_OK: u8 = 0;
pub const HCACK_NO_SUCH_COMMAND: u8 = 1;
pub const HCACK_CANNOT_NOW: u8 = 2;
pub const HCACK_BAD_PARAMETER: u8 = 3;
pub const HCACK_ALREADY: u8 = 5;

/// CPACK: 1 no such parameter name, 2 illegal value, 3 illegal format.
pub const CPACK_NO_SUCH_NAME: u8 = 1;
pub const CPACK_ILLEGAL_VALUE: u8 = 2;
pub const CPACK_ILLEGAL_FORMAT: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteCommand {
    Start {
        lot: String,
        wafer: String,
        recipe: String,
    },
    Pause,
    Resume,
    Stop,
    Abort,
}

/// Why a command cannot be carried out as sent: HCACK and the CPACK of
/// each parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub hcack: u8,
    pub params: Vec<(String, u8)>,
}

impl Refusal {
    pub fn new(hcack: u8) -> Refusal {
        Refusal {
            hcack,
            params: Vec::new(),
        }
    }
    pub fn param(name: &str, cpack: u8) -> Refusal {
        Refusal {
            hcack: HCACK_BAD_PARAMETER,
            params: vec![(name.to_owned(), cpack)],
        }
    }
}

/// S2F42 `<L[2] <B HCACK> <L[n] <L[2] <A CPNAME> <B CPACK>>>>`.
pub fn s2f42(hcack: u8, params: &[(String, u8)]) -> Item {
    Item::list([
        Item::binary_byte(hcack),
        Item::list(
            params
                .iter()
                .map(|(n, c)| Item::list([Item::ascii(n.as_str()), Item::binary_byte(*c)])),
        ),
    ])
}

/// Parses S2F41 `<L[2] <A RCMD> <L[n] <L[2] <A CPNAME> <CPVAL>>>>`.
/// A body without that structure is illegal data (S9F7); a well-formed
/// command that is unknown or has bad parameters is a [`Refusal`].
pub fn parse(body: Option<&Item>) -> Result<Result<RemoteCommand, Refusal>, IllegalData> {
    let bad = || IllegalData::new("S2F41 must be <L[2] <A RCMD> <L[n] <L[2] <A CPNAME> <CPVAL>>>>");
    let [rcmd, params] = body.and_then(Item::as_list).ok_or_else(bad)? else {
        return Err(bad());
    };
    let params = params.as_list().ok_or_else(bad)?;
    let mut pairs = Vec::with_capacity(params.len());
    for p in params {
        let [name, value] = p.as_list().ok_or_else(bad)? else {
            return Err(bad());
        };
        // CPNAME may be any format by E5; we name ours in ASCII.
        let name = name.as_ascii().map(str::to_owned);
        pairs.push((name, value));
    }
    // RCMD may be ASCII or a number by E5; ours are names.
    let Some(rcmd) = rcmd.as_ascii() else {
        return Ok(Err(Refusal::new(HCACK_NO_SUCH_COMMAND)));
    };
    let simple = match rcmd.to_ascii_uppercase().as_str() {
        "START" => None,
        "PAUSE" => Some(RemoteCommand::Pause),
        "RESUME" => Some(RemoteCommand::Resume),
        "STOP" => Some(RemoteCommand::Stop),
        "ABORT" => Some(RemoteCommand::Abort),
        _ => return Ok(Err(Refusal::new(HCACK_NO_SUCH_COMMAND))),
    };
    let mut refusal = Refusal::new(HCACK_BAD_PARAMETER);
    if let Some(cmd) = simple {
        for (name, _) in pairs {
            refusal
                .params
                .push((name.unwrap_or_default(), CPACK_NO_SUCH_NAME));
        }
        return Ok(if refusal.params.is_empty() {
            Ok(cmd)
        } else {
            Err(refusal)
        });
    }
    let (mut lot, mut wafer, mut recipe) = (None, None, None);
    for (name, value) in pairs {
        let slot = match name.as_deref() {
            Some("LOTID") => &mut lot,
            Some("WAFERID") => &mut wafer,
            Some("RECIPE") => &mut recipe,
            _ => {
                refusal
                    .params
                    .push((name.unwrap_or_default(), CPACK_NO_SUCH_NAME));
                continue;
            }
        };
        match value.as_ascii() {
            Some(v) => *slot = Some(v.to_owned()),
            None => refusal
                .params
                .push((name.unwrap_or_default(), CPACK_ILLEGAL_FORMAT)),
        }
    }
    // A missing parameter has no value: CPACK 2 under its name.
    for (name, v) in [("LOTID", &lot), ("WAFERID", &wafer), ("RECIPE", &recipe)] {
        if v.is_none() && !refusal.params.iter().any(|(n, _)| n == name) {
            refusal.params.push((name.to_owned(), CPACK_ILLEGAL_VALUE));
        }
    }
    if !refusal.params.is_empty() {
        return Ok(Err(refusal));
    }
    match (lot, wafer, recipe) {
        (Some(lot), Some(wafer), Some(recipe)) => {
            Ok(Ok(RemoteCommand::Start { lot, wafer, recipe }))
        }
        _ => Ok(Err(refusal)),
    }
}

/// The recipe file a host's RECIPE names in `dir`: `NAME` or `NAME.toml`,
/// a plain file name (no directories: the host cannot reach outside the
/// recipes directory), or else the recipe whose `id` is NAME.
pub fn find_recipe(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    let plain = !name.is_empty()
        && !name.contains(['/', '\\'])
        && name != "."
        && name != ".."
        && !name.contains('\0');
    if plain {
        for candidate in [dir.join(name), dir.join(format!("{name}.toml"))] {
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let entries = std::fs::read_dir(dir).ok()?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .find(|p| crate::run::recipe::load(p).is_ok_and(|r| r.recipe.id == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(rcmd: &str, params: &[(&str, Item)]) -> Item {
        Item::list([
            Item::ascii(rcmd),
            Item::list(
                params
                    .iter()
                    .map(|(n, v)| Item::list([Item::ascii(*n), v.clone()])),
            ),
        ])
    }

    #[test]
    fn parses_commands_and_names_bad_parameters() {
        let start = cmd(
            "START",
            &[
                ("LOTID", Item::ascii("L1")),
                ("WAFERID", Item::ascii("W1")),
                ("RECIPE", Item::ascii("sampled-200mm")),
            ],
        );
        assert_eq!(
            parse(Some(&start)).unwrap(),
            Ok(RemoteCommand::Start {
                lot: "L1".into(),
                wafer: "W1".into(),
                recipe: "sampled-200mm".into()
            })
        );
        assert_eq!(
            parse(Some(&cmd("pause", &[]))).unwrap(),
            Ok(RemoteCommand::Pause)
        );
        assert_eq!(
            parse(Some(&cmd("FLY", &[]))).unwrap(),
            Err(Refusal::new(HCACK_NO_SUCH_COMMAND))
        );
        let r = parse(Some(&cmd(
            "START",
            &[("LOTID", Item::u4(1)), ("COLOUR", Item::ascii("red"))],
        )))
        .unwrap()
        .unwrap_err();
        assert_eq!(r.hcack, HCACK_BAD_PARAMETER);
        assert_eq!(
            r.params,
            vec![
                ("LOTID".to_owned(), CPACK_ILLEGAL_FORMAT),
                ("COLOUR".to_owned(), CPACK_NO_SUCH_NAME),
                ("WAFERID".to_owned(), CPACK_ILLEGAL_VALUE),
                ("RECIPE".to_owned(), CPACK_ILLEGAL_VALUE),
            ]
        );
        let r = parse(Some(&cmd("STOP", &[("NOW", Item::ascii("1"))])))
            .unwrap()
            .unwrap_err();
        assert_eq!(r.params, vec![("NOW".to_owned(), CPACK_NO_SUCH_NAME)]);
        assert!(parse(Some(&Item::ascii("START"))).is_err());
        assert!(parse(None).is_err());
        assert!(parse(Some(&Item::list([
            Item::ascii("STOP"),
            Item::list([Item::u4(1)])
        ])))
        .is_err());
        let reply = s2f42(HCACK_BAD_PARAMETER, &r.params);
        assert_eq!(reply.as_list().unwrap()[0].as_binary_byte(), Some(3));
    }

    #[test]
    fn recipes_are_found_by_file_name_or_id_and_never_outside_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recipes");
        let by_name = find_recipe(&dir, "sampled-200mm").unwrap();
        assert_eq!(by_name.file_name().unwrap(), "sampled-200mm.toml");
        assert_eq!(
            find_recipe(&dir, "sampled-200mm.toml"),
            Some(by_name.clone())
        );
        assert_eq!(find_recipe(&dir, "INS-200-SAMPLE4"), Some(by_name));
        assert_eq!(find_recipe(&dir, "../recipes/sampled-200mm.toml"), None);
        assert_eq!(find_recipe(&dir, ".."), None);
        assert_eq!(find_recipe(&dir, "nothing"), None);
    }
}
