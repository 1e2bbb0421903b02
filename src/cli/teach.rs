//! `waferscope teach`: teaches a recipe's golden die on the simulated tool
//! (the median of N dies of its plan, each aligned to the first) and keeps
//! it where `run` and the window look for it.

use crate::run::{recipe, MachineControl, SimMachine};
use crate::station::data_dir::DataDir;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct TeachArgs {
    pub recipe: PathBuf,
    pub dies: usize,
    pub golden_dir: PathBuf,
    /// The data directory, if the golden directory is its: created (with
    /// the shipped alarms and recipes) before teaching.
    pub data_dir: Option<DataDir>,
    pub seed: u64,
}

pub fn run(args: &TeachArgs) -> Result<()> {
    let recipe = recipe::load(&args.recipe)?;
    if let Some(d) = &args.data_dir {
        crate::station::data_dir::report_created(&d.prepare()?);
    }
    crate::store::dirs::ensure_writable_dir(&args.golden_dir, "--golden-dir")?;
    let mut machine = SimMachine::fast(args.seed);
    machine.golden_dir = Some(args.golden_dir.clone());
    let golden = machine
        .teach_golden(&recipe, args.dies)
        .with_context(|| format!("teaching recipe {}", recipe.recipe.id))?;
    let path = crate::store::golden::golden_path(&args.golden_dir, &recipe.recipe.id);
    crate::outln!(
        "golden die of recipe {} taught from {} dies ({}×{} px) -> {}",
        recipe.recipe.id,
        golden.dies,
        golden.width,
        golden.height,
        path.display()
    )?;
    for (k, (dx, dy)) in golden.shifts.iter().enumerate() {
        crate::outln!(
            "  die {} shift against the first: ({dx:.2}, {dy:.2}) px",
            k + 1
        )?;
    }
    if golden.thinly_covered_px > 0 {
        crate::outln!(
            "  {} border pixel(s) covered by fewer than half of the dies: taken from the first",
            golden.thinly_covered_px
        )?;
    }
    Ok(())
}
