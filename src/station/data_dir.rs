//! The station's data directory: where its alarm definitions, recipes,
//! database, thumbnails, golden dies and logs are when no option names
//! them, so the program behaves the same started from `/`, from a desktop
//! launcher or from the source tree.
//!
//! Layout, for `--data-dir D`:
//!
//! ```text
//! D/alarms.toml        alarm definitions (copied from the shipped ones)
//! D/recipes/*.toml     recipes (the shipped samples, on first start)
//! D/waferscope.db      alarm journal and run record
//! D/thumbnails/run-*/  defect thumbnails
//! D/golden/*.png       taught golden dies (beside the database)
//! D/logs/              daily logs
//! ```
//!
//! Without `--data-dir` the XDG base directories decide: the data directory
//! is `$XDG_DATA_HOME/waferscope` (`~/.local/share/waferscope`) and the logs
//! go to `$XDG_STATE_HOME/waferscope/logs` (`~/.local/state/waferscope/logs`).
//! Why the split by default and one directory with `--data-dir`: by
//! default we follow the desktop's conventions, so backups take the data
//! (recipes, record, golden dies) and leave the logs, which the spec calls
//! state; an operator who names a directory wants the station in one place
//! (a station PC with its own disk, a test), so everything goes there.
//! Alarm definitions and recipes stay with the data rather than in
//! `$XDG_CONFIG_HOME`: the run record refers to them by content hash, and
//! the record, the recipes it ran and the golden dies taught from those
//! recipes are backed up and moved together.

use crate::store::dirs::ensure_writable_dir;
use anyhow::{anyhow, bail, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The alarm definitions shipped with the program (`assets/alarms.toml`),
/// copied into a data directory that has none: an installed binary needs
/// no source tree.
pub const SHIPPED_ALARMS: &str = include_str!("../../assets/alarms.toml");

/// The sample recipes shipped with the program (`assets/recipes/*.toml`),
/// copied into a data directory that has no `recipes/` yet. A test checks
/// this list against the directory.
pub const SHIPPED_RECIPES: [(&str, &str); 2] = [
    (
        "full-300mm.toml",
        include_str!("../../assets/recipes/full-300mm.toml"),
    ),
    (
        "sampled-200mm.toml",
        include_str!("../../assets/recipes/sampled-200mm.toml"),
    ),
];

/// What a station keeps in its data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Db,
    Alarms,
    Recipes,
    Thumbnails,
    Golden,
    Logs,
}

/// Where the station's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    /// Database, alarm definitions, recipes, thumbnails, golden dies.
    pub data: PathBuf,
    /// Daily logs.
    pub logs: PathBuf,
    /// How errors name the directory (before its path): `--data-dir` or
    /// `the data directory`.
    label: &'static str,
    /// For the default: which one it is, and how to choose another.
    hint: Option<String>,
}

impl DataDir {
    /// `--data-dir` if given, else the XDG default from the process's
    /// environment.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        Self::from_env(explicit, |k| std::env::var_os(k))
    }

    /// As [`DataDir::resolve`], reading the environment through `var`.
    /// Following the XDG spec, an empty or relative `XDG_*` value is
    /// ignored.
    pub fn from_env(
        explicit: Option<&Path>,
        var: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self> {
        if let Some(d) = explicit {
            if d.as_os_str().is_empty() {
                bail!("--data-dir: the directory name is empty");
            }
            return Ok(Self {
                data: d.to_path_buf(),
                logs: d.join("logs"),
                label: "--data-dir",
                hint: None,
            });
        }
        let xdg = |key: &str| var(key).map(PathBuf::from).filter(|p| p.is_absolute());
        let home = || {
            var("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| {
                    anyhow!("no data directory: HOME is not set (give --data-dir DIR, or set XDG_DATA_HOME and XDG_STATE_HOME)")
                })
        };
        let (data, from) = match xdg("XDG_DATA_HOME") {
            Some(d) => (d.join("waferscope"), "$XDG_DATA_HOME/waferscope"),
            None => (
                home()?.join(".local/share/waferscope"),
                "~/.local/share/waferscope",
            ),
        };
        let logs = match xdg("XDG_STATE_HOME") {
            Some(s) => s.join("waferscope/logs"),
            None => home()?.join(".local/state/waferscope/logs"),
        };
        Ok(Self {
            data,
            logs,
            label: "the data directory",
            hint: Some(format!(
                "the default, {from}; give --data-dir DIR for another"
            )),
        })
    }

    /// Where `item` is in this directory.
    pub fn path(&self, item: Item) -> PathBuf {
        match item {
            Item::Db => self.data.join("waferscope.db"),
            Item::Alarms => self.data.join("alarms.toml"),
            Item::Recipes => self.data.join("recipes"),
            Item::Thumbnails => self.data.join("thumbnails"),
            Item::Golden => self.data.join("golden"),
            Item::Logs => self.logs.clone(),
        }
    }

    /// Creates the data directory if it is missing (proving it writable)
    /// and copies the shipped files that are not there yet: `alarms.toml`
    /// if missing, the sample recipes if there is no `recipes/` (an
    /// operator's edited or deleted copies are never replaced). Returns the
    /// files created, for the caller to log once logging has started.
    /// Errors name the directory or file.
    pub fn prepare(&self) -> Result<Vec<PathBuf>> {
        ensure_writable_dir(&self.data, self.label).map_err(|e| match &self.hint {
            Some(hint) => anyhow!("{e} ({hint})"),
            None => e,
        })?;
        let mut created = Vec::new();
        let alarms = self.path(Item::Alarms);
        if !exists(&alarms)? {
            let tmp = self
                .data
                .join(format!(".alarms.toml.{}", std::process::id()));
            std::fs::write(&tmp, SHIPPED_ALARMS)
                .map_err(|e| anyhow!("{}: cannot write: {e}", tmp.display()))?;
            // Linked, not renamed, into place: a link fails if the name
            // exists, so a copy the operator (or another station) put there
            // since the check above is never replaced.
            let linked = std::fs::hard_link(&tmp, &alarms);
            if let Err(e) = std::fs::remove_file(&tmp) {
                tracing::warn!("{}: cannot remove: {e}", tmp.display());
            }
            match linked {
                Ok(()) => created.push(alarms),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(anyhow!("{}: cannot create: {e}", alarms.display())),
            }
        }
        let recipes = self.path(Item::Recipes);
        if !exists(&recipes)? {
            // Filled beside and renamed into place: an interrupted first
            // start leaves no half-filled recipes/ that would never be
            // completed.
            let tmp = self.data.join(format!(".recipes.{}", std::process::id()));
            std::fs::create_dir_all(&tmp)
                .map_err(|e| anyhow!("{}: cannot create the directory: {e}", tmp.display()))?;
            for (name, text) in SHIPPED_RECIPES {
                let p = tmp.join(name);
                std::fs::write(&p, text)
                    .map_err(|e| anyhow!("{}: cannot write: {e}", p.display()))?;
            }
            match std::fs::rename(&tmp, &recipes) {
                Ok(()) => {
                    created.extend(SHIPPED_RECIPES.iter().map(|(name, _)| recipes.join(name)))
                }
                // Another station created it first: keep theirs.
                Err(_) if recipes.is_dir() => {
                    std::fs::remove_dir_all(&tmp).ok();
                }
                Err(e) => {
                    std::fs::remove_dir_all(&tmp).ok();
                    bail!("{}: cannot create the directory: {e}", recipes.display());
                }
            }
        }
        Ok(created)
    }
}

/// Logs (and notes on stderr) each file [`DataDir::prepare`] created, so
/// an operator knows where the station's editable copies are.
pub fn report_created(created: &[PathBuf]) {
    for p in created {
        tracing::info!(path = %p.display(), "created from the shipped defaults");
        crate::errln!("note: created {} (shipped default)", p.display());
    }
}

/// Whether anything (a file, a directory, a link) is at `p`.
fn exists(p: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(anyhow!("{}: {e}", p.display())),
    }
}

/// Picks each path of a command: the option's value if given, else the
/// data directory's, which is resolved on first use (so a command given
/// every path needs no `HOME`, and touches nothing there).
#[derive(Debug)]
pub struct DataPaths {
    explicit: Option<PathBuf>,
    dir: Option<DataDir>,
    /// A path other than the logs came from the data directory: it is to
    /// be created and given the shipped files.
    data_used: bool,
}

impl DataPaths {
    /// `explicit`: the global `--data-dir`, if given.
    pub fn new(explicit: Option<PathBuf>) -> Self {
        Self {
            explicit,
            dir: None,
            data_used: false,
        }
    }

    /// `given`, or `item` in the data directory.
    pub fn pick(&mut self, given: Option<PathBuf>, item: Item) -> Result<PathBuf> {
        if let Some(p) = given {
            return Ok(p);
        }
        let dir = match self.dir.take() {
            Some(d) => d,
            None => DataDir::resolve(self.explicit.as_deref())?,
        };
        let path = dir.path(item);
        self.dir = Some(dir);
        self.data_used |= item != Item::Logs;
        Ok(path)
    }

    /// The data directory, if a path other than the logs came from it
    /// (the command prepares it with [`DataDir::prepare`]).
    pub fn used(self) -> Option<DataDir> {
        self.dir.filter(|_| self.data_used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let m: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn xdg_variables_then_home_then_an_error() {
        let d = DataDir::from_env(
            None,
            env(&[
                ("HOME", "/home/op"),
                ("XDG_DATA_HOME", "/data"),
                ("XDG_STATE_HOME", "/state"),
            ]),
        )
        .unwrap();
        assert_eq!(d.data, Path::new("/data/waferscope"));
        assert_eq!(d.logs, Path::new("/state/waferscope/logs"));
        assert_eq!(
            d.path(Item::Db),
            Path::new("/data/waferscope/waferscope.db")
        );
        // Empty and relative values are ignored (XDG base directory spec).
        let d = DataDir::from_env(
            None,
            env(&[
                ("HOME", "/home/op"),
                ("XDG_DATA_HOME", ""),
                ("XDG_STATE_HOME", "relative/state"),
            ]),
        )
        .unwrap();
        assert_eq!(d.data, Path::new("/home/op/.local/share/waferscope"));
        assert_eq!(d.logs, Path::new("/home/op/.local/state/waferscope/logs"));
        let e = DataDir::from_env(None, env(&[])).unwrap_err().to_string();
        assert!(
            e.contains("HOME is not set") && e.contains("--data-dir"),
            "{e}"
        );
        // --data-dir wins and holds the logs too.
        let d = DataDir::from_env(Some(Path::new("/srv/ws")), env(&[("HOME", "/h")])).unwrap();
        assert_eq!(d.logs, Path::new("/srv/ws/logs"));
        assert_eq!(d.path(Item::Golden), Path::new("/srv/ws/golden"));
    }

    #[test]
    fn every_shipped_recipe_is_embedded_and_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recipes");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = SHIPPED_RECIPES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, embedded, "add new recipes to SHIPPED_RECIPES");
        for (name, text) in SHIPPED_RECIPES {
            crate::run::recipe::parse(text).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        crate::monitor::alarm_defs::parse(SHIPPED_ALARMS).unwrap();
    }

    #[test]
    fn prepare_creates_once_and_never_replaces_an_edited_copy() {
        let root = std::env::temp_dir().join(format!("waferscope-data-dir-{}", std::process::id()));
        std::fs::remove_dir_all(&root).ok();
        let d = DataDir::from_env(Some(&root.join("station")), env(&[])).unwrap();
        let created = d.prepare().unwrap();
        assert_eq!(created.len(), 1 + SHIPPED_RECIPES.len(), "{created:?}");
        assert_eq!(
            std::fs::read_to_string(d.path(Item::Alarms)).unwrap(),
            SHIPPED_ALARMS
        );
        // The operator edits the alarms and removes a sample recipe.
        std::fs::write(d.path(Item::Alarms), "# edited\n").unwrap();
        std::fs::remove_file(d.path(Item::Recipes).join(SHIPPED_RECIPES[0].0)).unwrap();
        assert!(d.prepare().unwrap().is_empty());
        assert_eq!(
            std::fs::read_to_string(d.path(Item::Alarms)).unwrap(),
            "# edited\n"
        );
        assert!(!d.path(Item::Recipes).join(SHIPPED_RECIPES[0].0).exists());
        // No temporary left behind.
        let names: Vec<_> = std::fs::read_dir(&d.data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A data directory that cannot be created is named.
        std::fs::write(root.join("file"), b"x").unwrap();
        let bad = DataDir::from_env(Some(&root.join("file/sub")), env(&[])).unwrap();
        let e = bad.prepare().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("--data-dir {}", root.join("file/sub").display())),
            "{e}"
        );
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn paths_given_leave_the_data_directory_alone() {
        let mut p = DataPaths::new(None);
        let db = p.pick(Some("x.db".into()), Item::Db).unwrap();
        assert_eq!(db, Path::new("x.db"));
        assert!(p.used().is_none());
        let mut p = DataPaths::new(Some("/srv/ws".into()));
        assert_eq!(p.pick(None, Item::Logs).unwrap(), Path::new("/srv/ws/logs"));
        assert!(
            p.used().is_none(),
            "the logs alone do not use the data directory"
        );
        let mut p = DataPaths::new(Some("/srv/ws".into()));
        p.pick(None, Item::Thumbnails).unwrap();
        assert_eq!(p.used().unwrap().data, Path::new("/srv/ws"));
    }
}
