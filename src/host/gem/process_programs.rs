//! Process program management (E30, E5 stream 7): the host's view of the
//! station's recipes directory. A process program is a recipe file: PPID
//! = the file's stem, PPBODY = the file's TOML text (ASCII or binary item).
//!
//! A download (S7F3) is validated exactly as a recipe file is
//! (`run::recipe::parse_in` with the recipes directory for relative paths)
//! and written atomically (temporary file in the same directory, synced,
//! renamed over the target, directory synced), so a crash leaves the old
//! recipe or the new one, never half of one.
//!
//! ACKC7 codes this equipment answers (docs/gem.md):
//! - 0 accepted;
//! - 1 permission not granted: a PPID that is not a plain file name (path
//!   separators, `..`, leading dot, characters outside `A-Z a-z 0-9 . _ -`,
//!   longer than [`MAX_PPID_LEN`]), a recipe the validator refuses (the
//!   equipment will not keep a program it would refuse to run; the
//!   validator's message is logged), or a write that failed;
//! - 2 length error: an empty body or one over [`MAX_PP_BYTES`];
//! - 4 PPID not found (S7F17 delete);
//! - 5 mode unsupported: a PPBODY that is not an ASCII or binary item, or
//!   whose bytes are not UTF-8 text (a recipe is TOML text).
//!
//! Every change (created, edited, deleted) is queued as a
//! ProcessProgramChanged collection event ([`ProcessPrograms::take_changes`]).

use super::atomic_file::write_atomically;
use super::events::{process_program_event, CollectionEvent, EventData, PpChange};
use super::IllegalData;
use crate::host::secs2::Item;
use std::path::{Path, PathBuf};
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest process program accepted (a recipe is a few kB of TOML).
pub const MAX_PP_BYTES: usize = 1 << 20;
/// Longest PPID accepted.
pub const MAX_PPID_LEN: usize = 80;
const EXTENSION: &str = "toml";

/// ACKC7 (S7F4, S7F18).
pub mod ackc7 {
    pub const ACCEPTED: u8 = 0;
    pub const PERMISSION_NOT_GRANTED: u8 = 1;
    pub const LENGTH_ERROR: u8 = 2;
    pub const MATRIX_OVERFLOW: u8 = 3;
    pub const PPID_NOT_FOUND: u8 = 4;
    pub const MODE_UNSUPPORTED: u8 = 5;
}

/// PPGNT (S7F2).
pub mod ppgnt {
    pub const OK: u8 = 0;
    pub const ALREADY_HAVE: u8 = 1;
    pub const NO_SPACE: u8 = 2;
    pub const INVALID_PPID: u8 = 3;
}

/// Whether `ppid` can name a recipe file in the directory and nothing
/// else: a plain, visible file name.
pub fn is_valid_ppid(ppid: &str) -> bool {
    !ppid.is_empty()
        && ppid.len() <= MAX_PPID_LEN
        && !ppid.starts_with('.')
        && !ppid.contains("..")
        && ppid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[derive(Debug)]
pub struct ProcessPrograms {
    dir: PathBuf,
    changes: Vec<(CollectionEvent, EventData)>,
}

/// Distinguishes the tests' directories.
#[cfg(test)]
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn ppid_of(item: &Item, what: &str) -> Result<Option<String>, IllegalData> {
    match item.ascii_bytes() {
        // An ASCII item, but bytes no file name of ours can have: not found
        // or refused by the caller, never an error of structure.
        Some(bytes) => Ok(std::str::from_utf8(bytes)
            .ok()
            .filter(|s| is_valid_ppid(s))
            .map(str::to_string)),
        None => Err(IllegalData::new(format!("{what}: PPID must be ASCII"))),
    }
}

impl ProcessPrograms {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            changes: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, ppid: &str) -> PathBuf {
        self.dir.join(format!("{ppid}.{EXTENSION}"))
    }

    /// The collection events of changes made since the last call.
    pub fn take_changes(&mut self) -> Vec<(CollectionEvent, EventData)> {
        std::mem::take(&mut self.changes)
    }

    /// S7F1 process program load inquire (`L,2 <PPID> <LENGTH>`) → S7F2
    /// PPGNT.
    pub fn load_inquire(&self, body: &Item) -> Result<Item, IllegalData> {
        let Some([ppid, length]) = body.as_list().and_then(|l| <&[Item; 2]>::try_from(l).ok())
        else {
            return Err(IllegalData::new("S7F1: expected L,2 <PPID> <LENGTH>"));
        };
        let length = length
            .as_u64()
            .ok_or_else(|| IllegalData::new("S7F1 LENGTH: expected an integer"))?;
        let grant = match ppid_of(ppid, "S7F1")? {
            None => ppgnt::INVALID_PPID,
            Some(_) if length == 0 || length > MAX_PP_BYTES as u64 => ppgnt::NO_SPACE,
            Some(p) if self.path(&p).exists() => ppgnt::ALREADY_HAVE,
            Some(_) => ppgnt::OK,
        };
        Ok(Item::binary_byte(grant))
    }

    /// What an S7F3 would change, for the audit trail, read before it is
    /// applied: the PPID and the hashes of the recipe file's contents
    /// before and after ("none" when there is no file, or no text sent).
    pub fn describe_download(&self, body: &Item) -> String {
        let Some([ppid, ppbody]) = body.as_list().and_then(|l| <&[Item; 2]>::try_from(l).ok())
        else {
            return "malformed S7F3".into();
        };
        let Ok(Some(ppid)) = ppid_of(ppid, "S7F3") else {
            return "ppid not a plain recipe file name".into();
        };
        let old = std::fs::read(self.path(&ppid))
            .map_or_else(|_| "none".into(), |b| crate::access::sha256_hex(&b));
        let new = ppbody
            .ascii_bytes()
            .or_else(|| ppbody.as_binary())
            .map_or_else(|| "none".into(), crate::access::sha256_hex);
        format!("ppid={ppid} old_sha256={old} new_sha256={new}")
    }

    /// S7F3 process program send (`L,2 <PPID> <PPBODY>`) → S7F4 ACKC7.
    pub fn download(&mut self, body: &Item) -> Result<Item, IllegalData> {
        let Some([ppid, ppbody]) = body.as_list().and_then(|l| <&[Item; 2]>::try_from(l).ok())
        else {
            return Err(IllegalData::new("S7F3: expected L,2 <PPID> <PPBODY>"));
        };
        let ppid = ppid_of(ppid, "S7F3")?;
        Ok(Item::binary_byte(self.store(ppid.as_deref(), ppbody)))
    }

    fn store(&mut self, ppid: Option<&str>, ppbody: &Item) -> u8 {
        let Some(ppid) = ppid else {
            tracing::warn!("S7F3 refused: the PPID is not a plain recipe file name");
            return ackc7::PERMISSION_NOT_GRANTED;
        };
        let Some(bytes) = ppbody.ascii_bytes().or_else(|| ppbody.as_binary()) else {
            tracing::warn!(ppid, "S7F3 refused: PPBODY is neither ASCII nor binary");
            return ackc7::MODE_UNSUPPORTED;
        };
        if bytes.is_empty() || bytes.len() > MAX_PP_BYTES {
            tracing::warn!(ppid, len = bytes.len(), "S7F3 refused: PPBODY length");
            return ackc7::LENGTH_ERROR;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            tracing::warn!(ppid, "S7F3 refused: PPBODY is not UTF-8 text");
            return ackc7::MODE_UNSUPPORTED;
        };
        if let Err(e) = crate::run::recipe::parse_in(text, &self.dir) {
            tracing::warn!(ppid, "S7F3 refused: recipe {ppid} from the host: {e:#}");
            return ackc7::PERMISSION_NOT_GRANTED;
        }
        let path = self.path(ppid);
        let existed = path.exists();
        if let Err(e) = write_atomically(&path, bytes) {
            tracing::warn!(ppid, "S7F3: cannot write {}: {e:#}", path.display());
            return ackc7::PERMISSION_NOT_GRANTED;
        }
        tracing::info!(ppid, "S7F3: recipe {} stored", path.display());
        let change = if existed {
            PpChange::Edited
        } else {
            PpChange::Created
        };
        self.changes.push(process_program_event(ppid, change));
        ackc7::ACCEPTED
    }

    /// S7F5 process program request (`<PPID>`) → S7F6
    /// `L,2 <PPID> <PPBODY ASCII>`, or a zero-length list when there is no
    /// such program.
    pub fn upload(&self, body: &Item) -> Result<Item, IllegalData> {
        let Some(ppid) = ppid_of(body, "S7F5")? else {
            return Ok(Item::empty_list());
        };
        match std::fs::read(self.path(&ppid)) {
            Ok(bytes) => Ok(Item::list([Item::ascii(ppid), Item::ascii(bytes)])),
            Err(_) => Ok(Item::empty_list()),
        }
    }

    /// S7F17 delete process program (`L,n <PPID>`, zero-length for all) →
    /// S7F18 ACKC7. All or nothing: one PPID not found deletes none.
    pub fn delete(&mut self, body: &Item) -> Result<Item, IllegalData> {
        let items = body
            .as_list()
            .ok_or_else(|| IllegalData::new("S7F17: expected L,n <PPID>"))?;
        let mut ppids = Vec::with_capacity(items.len());
        for item in items {
            match ppid_of(item, "S7F17")? {
                Some(p) if self.path(&p).is_file() => ppids.push(p),
                _ => return Ok(Item::binary_byte(ackc7::PPID_NOT_FOUND)),
            }
        }
        if items.is_empty() {
            ppids = self.ppids();
        }
        for ppid in ppids {
            let path = self.path(&ppid);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(ppid, "S7F17: cannot delete {}: {e}", path.display());
                return Ok(Item::binary_byte(ackc7::PERMISSION_NOT_GRANTED));
            }
            tracing::info!(ppid, "S7F17: recipe {} deleted", path.display());
            self.changes
                .push(process_program_event(&ppid, PpChange::Deleted));
        }
        Ok(Item::binary_byte(ackc7::ACCEPTED))
    }

    /// S7F19 current EPPD request (header only) → S7F20 `L,n <PPID>`.
    pub fn list(&self) -> Item {
        Item::list(self.ppids().into_iter().map(Item::ascii))
    }

    /// The stems of the recipe files the host can name, sorted.
    fn ppids(&self) -> Vec<String> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("recipes directory {}: {e}", self.dir.display());
                return Vec::new();
            }
        };
        let mut out: Vec<String> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == EXTENSION))
            .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
            .filter(|s| is_valid_ppid(s))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "waferscope-pp-{name}-{}-{}",
            std::process::id(),
            TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn good_recipe() -> String {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/recipes/sampled-200mm.toml"
        );
        std::fs::read_to_string(path).unwrap()
    }

    fn send(pp: &mut ProcessPrograms, ppid: &str, body: Item) -> u8 {
        pp.download(&Item::list([Item::ascii(ppid), body]))
            .unwrap()
            .as_binary_byte()
            .unwrap()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_good_recipe_is_stored_byte_equal_and_reads_back() {
        let dir = temp_dir("good");
        let mut pp = ProcessPrograms::new(&dir);
        let text = good_recipe();
        assert_eq!(send(&mut pp, "INS-200", Item::ascii(text.as_str())), 0);
        assert_eq!(
            std::fs::read(dir.join("INS-200.toml")).unwrap(),
            text.as_bytes()
        );
        assert_eq!(files(&dir), ["INS-200.toml"], "no temporary file left");
        // As binary, under a second name: edited vs created.
        assert_eq!(send(&mut pp, "INS-200", Item::binary(text.as_bytes())), 0);
        assert_eq!(send(&mut pp, "b_2.v1", Item::binary(text.as_bytes())), 0);
        let changes = pp.take_changes();
        let statuses: Vec<_> = changes
            .iter()
            .map(|(_, d)| d.get(super::super::events::dv::PP_CHANGE_STATUS).cloned())
            .collect();
        assert_eq!(
            statuses,
            [Some(Item::u1(1)), Some(Item::u1(2)), Some(Item::u1(1))]
        );
        assert!(pp.take_changes().is_empty());

        assert_eq!(
            pp.upload(&Item::ascii("INS-200")).unwrap(),
            Item::list([Item::ascii("INS-200"), Item::ascii(text.as_bytes())])
        );
        assert_eq!(pp.upload(&Item::ascii("nope")).unwrap(), Item::empty_list());
        assert_eq!(
            pp.upload(&Item::ascii("../etc/passwd")).unwrap(),
            Item::empty_list()
        );
        assert_eq!(
            pp.list(),
            Item::list([Item::ascii("INS-200"), Item::ascii("b_2.v1")])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_recipe_is_refused_and_nothing_is_written() {
        let dir = temp_dir("bad");
        let mut pp = ProcessPrograms::new(&dir);
        let out_of_range = good_recipe().replace("threshold = 28", "threshold = 9999");
        assert_ne!(out_of_range, good_recipe());
        assert_eq!(
            send(&mut pp, "R", Item::ascii(out_of_range.as_str())),
            ackc7::PERMISSION_NOT_GRANTED
        );
        assert_eq!(
            send(&mut pp, "R", Item::ascii("not = [toml")),
            ackc7::PERMISSION_NOT_GRANTED
        );
        assert_eq!(
            send(&mut pp, "R", Item::binary([0xff, 0xfe])),
            ackc7::MODE_UNSUPPORTED
        );
        assert_eq!(send(&mut pp, "R", Item::u4(1)), ackc7::MODE_UNSUPPORTED);
        assert_eq!(send(&mut pp, "R", Item::ascii("")), ackc7::LENGTH_ERROR);
        let huge = "#".repeat(MAX_PP_BYTES + 1);
        assert_eq!(send(&mut pp, "R", Item::ascii(huge)), ackc7::LENGTH_ERROR);
        assert!(files(&dir).is_empty());
        assert!(pp.take_changes().is_empty());

        // A bad download over a good recipe leaves the good one.
        assert_eq!(send(&mut pp, "R", Item::ascii(good_recipe())), 0);
        assert_eq!(send(&mut pp, "R", Item::ascii(out_of_range)), 1);
        assert_eq!(
            std::fs::read_to_string(dir.join("R.toml")).unwrap(),
            good_recipe()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostile_ppids_are_refused_and_touch_nothing_outside() {
        let parent = temp_dir("hostile");
        let dir = parent.join("recipes");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(parent.join("victim.toml"), "keep").unwrap();
        let mut pp = ProcessPrograms::new(&dir);
        let long = "a".repeat(MAX_PPID_LEN + 1);
        for ppid in [
            "../victim",
            "..",
            "a/b",
            "a\\b",
            "",
            ".hidden",
            "x\0y",
            "sp ace",
            "é",
            long.as_str(),
            "/tmp/abs",
        ] {
            assert_eq!(
                send(&mut pp, ppid, Item::ascii(good_recipe())),
                1,
                "{ppid:?}"
            );
            let inquire = Item::list([Item::ascii(ppid), Item::u4(10)]);
            assert_eq!(
                pp.load_inquire(&inquire).unwrap(),
                Item::binary_byte(ppgnt::INVALID_PPID),
                "{ppid:?}"
            );
            let del = Item::list([Item::ascii(ppid)]);
            assert_eq!(
                pp.delete(&del).unwrap(),
                Item::binary_byte(ackc7::PPID_NOT_FOUND)
            );
        }
        // Non-UTF-8 bytes in an ASCII PPID.
        let raw = Item::list([
            Item::Ascii(vec![b'a', 0xC0, b'/']),
            Item::ascii(good_recipe()),
        ]);
        assert_eq!(pp.download(&raw).unwrap(), Item::binary_byte(1));
        assert!(files(&dir).is_empty());
        assert_eq!(
            std::fs::read_to_string(parent.join("victim.toml")).unwrap(),
            "keep"
        );
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn inquire_delete_and_malformed_bodies() {
        let dir = temp_dir("del");
        let mut pp = ProcessPrograms::new(&dir);
        let inquire = |pp: &ProcessPrograms, ppid: &str, len: u64| {
            pp.load_inquire(&Item::list([Item::ascii(ppid), Item::u8(len)]))
                .unwrap()
                .as_binary_byte()
                .unwrap()
        };
        assert_eq!(inquire(&pp, "A", 3000), ppgnt::OK);
        assert_eq!(inquire(&pp, "A", MAX_PP_BYTES as u64 + 1), ppgnt::NO_SPACE);
        for id in ["A", "B", "C"] {
            assert_eq!(send(&mut pp, id, Item::ascii(good_recipe())), 0);
        }
        assert_eq!(inquire(&pp, "A", 3000), ppgnt::ALREADY_HAVE);
        pp.take_changes();
        // One unknown PPID: nothing deleted.
        let del = Item::list([Item::ascii("A"), Item::ascii("Z")]);
        assert_eq!(pp.delete(&del).unwrap(), Item::binary_byte(4));
        assert_eq!(files(&dir).len(), 3);
        let del = Item::list([Item::ascii("A")]);
        assert_eq!(pp.delete(&del).unwrap(), Item::binary_byte(0));
        assert_eq!(files(&dir), ["B.toml", "C.toml"]);
        // A file the host cannot name stays; the empty list deletes the rest.
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        assert_eq!(
            pp.delete(&Item::empty_list()).unwrap(),
            Item::binary_byte(0)
        );
        assert_eq!(files(&dir), ["notes.txt"]);
        assert_eq!(pp.take_changes().len(), 3);

        for bad in [Item::u4(1), Item::list([Item::ascii("A")])] {
            assert!(pp.download(&bad).is_err());
            assert!(pp.load_inquire(&bad).is_err());
        }
        assert!(pp
            .download(&Item::list([Item::u4(1), Item::ascii("x")]))
            .is_err());
        assert!(pp.upload(&Item::u4(1)).is_err());
        assert!(pp.delete(&Item::ascii("A")).is_err());
        assert!(pp.delete(&Item::list([Item::u4(1)])).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
