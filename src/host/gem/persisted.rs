//! What GEM keeps across restarts: the operator's on-line and local/remote
//! switches and the equipment constants, in one small TOML file in the
//! station's data directory (beside its database). Written whole to a
//! temporary file, synced and renamed, so a crash or power cut leaves the old or the new file,
//! never half of one.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::control::Switches;
use super::equipment_constants::EquipmentConstants;

/// The file name in the data directory.
pub const FILE_NAME: &str = "gem.toml";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persisted {
    pub switches: Switches,
    /// ECID (as text: TOML keys are strings) → value.
    #[serde(default)]
    pub equipment_constants: BTreeMap<String, f64>,
}

impl Persisted {
    pub fn new(switches: Switches, ecs: &EquipmentConstants) -> Persisted {
        Persisted {
            switches,
            equipment_constants: ecs.all().map(|(id, v)| (id.to_string(), v)).collect(),
        }
    }

    /// The constants this file sets, over the defaults; a bad entry is an
    /// error naming the file and the constant.
    pub fn constants(&self, path: &Path) -> Result<EquipmentConstants> {
        let mut ecs = EquipmentConstants::default();
        for (id, v) in &self.equipment_constants {
            let n: u32 = id.parse().with_context(|| {
                format!(
                    "{}: equipment constant `{id}` is not a number",
                    path.display()
                )
            })?;
            ecs.set(n, *v)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
        Ok(ecs)
    }
}

/// The saved state, or the defaults when there is no file yet.
pub fn load(path: &Path) -> Result<Persisted> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Persisted::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    toml::from_str(&text).with_context(|| format!("{}: not a GEM state file", path.display()))
}

pub fn save(path: &Path, state: &Persisted) -> Result<()> {
    let text = toml::to_string(state).context("encoding the GEM state")?;
    super::atomic_file::write_atomically(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::gem::equipment_constants::EC_T3;

    #[test]
    fn saves_restores_and_names_bad_files() {
        let dir = std::env::temp_dir().join(format!("gem-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FILE_NAME);
        let _ = std::fs::remove_file(&path);
        assert_eq!(load(&path).unwrap(), Persisted::default());
        let mut ecs = EquipmentConstants::default();
        ecs.set(EC_T3, 3.5).unwrap();
        let state = Persisted::new(
            Switches {
                online: false,
                remote: true,
            },
            &ecs,
        );
        save(&path, &state).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.constants(&path).unwrap(), ecs);
        std::fs::write(
            &path,
            "[switches]\nonline = true\nremote = false\n[equipment_constants]\n\"2003\" = 900.0\n",
        )
        .unwrap();
        let err = load(&path).unwrap().constants(&path).unwrap_err();
        assert!(format!("{err:#}").contains("gem.toml"), "{err:#}");
        std::fs::write(&path, "nonsense = 1").unwrap();
        assert!(format!("{:#}", load(&path).unwrap_err()).contains("gem.toml"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
