//! Recipes: what to inspect and how, from a TOML file. Validation names the
//! file, the field, the value and what is allowed; unknown keys are errors.

use crate::machine::{die_grid_offset, DieSite, Notch, WaferGeometry};
use crate::pipeline::care::{CareAreas, CareRule, MAX_CARE_AREAS};
use crate::pipeline::{ClassRules, DetectParams, ReferenceSource, ThresholdMode};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub id: String,
    pub name: String,
    pub wafer: WaferSection,
    pub plan: PlanSection,
    pub inspection: InspectionSection,
    pub optics: OpticsSection,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaferSection {
    pub diameter_mm: f64,
    pub die_pitch_um: [f64; 2],
    pub die_size_um: [f64; 2],
    /// Offset of the die grid from the wafer centre.
    #[serde(default)]
    pub die_origin_um: [f64; 2],
    pub notch: String,
    pub edge_exclusion_mm: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSection {
    /// "all", "list" or "sample".
    pub mode: String,
    /// For "list": the dies to inspect, as [column, row].
    #[serde(default)]
    pub dies: Vec<[i32; 2]>,
    /// For "sample": every Nth die of the serpentine order.
    #[serde(default)]
    pub every: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionSection {
    pub threshold: u32,
    pub min_defect_px: u32,
    #[serde(default = "default_golden_tolerance")]
    pub golden_tolerance: u32,
    #[serde(default)]
    pub classes: ClassSection,
    /// Largest stage repeat error searched when aligning dies, pixels.
    #[serde(default = "default_max_shift_px")]
    pub max_shift_px: u32,
    /// Below this alignment confidence (0 to 1) a die is reported as
    /// `alignment_untrusted` with no defects.
    #[serde(default = "default_min_align_confidence")]
    pub min_align_confidence: f64,
    /// "grey": `threshold` grey levels; "sigma": `threshold_sigma` × the
    /// die's estimated noise σ, at least `threshold_floor`.
    #[serde(default = "default_threshold_mode")]
    pub threshold_mode: String,
    #[serde(default = "default_threshold_sigma")]
    pub threshold_sigma: f64,
    #[serde(default = "default_threshold_floor")]
    pub threshold_floor: u32,
    /// Tolerance at edges, as a fraction (0 to 1) of the reference's local
    /// edge contrast: absorbs line-edge roughness (see
    /// `DetectParams::edge_tolerance`). 0 is off.
    #[serde(default)]
    pub edge_tolerance: f64,
    /// Sigma mode: the 2×2 box flags above this fraction of the pixel
    /// threshold (see `DetectParams::box_threshold_ratio`).
    #[serde(default = "default_box_threshold_ratio")]
    pub box_threshold_ratio: f64,
    /// Regions with their own threshold, or "don't care". Where areas
    /// overlap, the later one in the list wins.
    #[serde(default)]
    pub care_areas: Vec<CareAreaSection>,
    /// What each die is compared with: "die_to_die" (both row neighbours,
    /// the golden die for a missing one), "die_to_golden" (the taught
    /// golden die alone) or "die_to_reference" (`reference_image` alone).
    #[serde(default = "default_reference")]
    pub reference: String,
    /// For "die_to_reference": a grayscale PNG or TIFF of one die at the
    /// recipe's image size, relative to the recipe file.
    #[serde(default)]
    pub reference_image: Option<String>,
}

/// `[[inspection.care_areas]]`: a rectangle of the die in µm (origin at the
/// die's lower-left corner, y up, as defect positions are reported) and
/// exactly one of `threshold` (grey levels), `threshold_sigma` (k of k·σ)
/// or `dont_care = true`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CareAreaSection {
    pub x_um: f64,
    pub y_um: f64,
    pub width_um: f64,
    pub height_um: f64,
    #[serde(default)]
    pub threshold: Option<u32>,
    #[serde(default)]
    pub threshold_sigma: Option<f64>,
    #[serde(default)]
    pub dont_care: bool,
}

fn default_golden_tolerance() -> u32 {
    10
}
fn default_max_shift_px() -> u32 {
    DetectParams::default().max_shift_px
}
fn default_min_align_confidence() -> f64 {
    DetectParams::default().min_align_confidence as f64
}
fn default_reference() -> String {
    "die_to_die".into()
}
fn default_threshold_mode() -> String {
    "grey".into()
}
fn default_threshold_sigma() -> f64 {
    DetectParams::default().threshold_sigma as f64
}
fn default_box_threshold_ratio() -> f64 {
    DetectParams::default().box_threshold_ratio as f64
}
fn default_threshold_floor() -> u32 {
    DetectParams::default().threshold_floor as u32
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSection {
    pub scratch_min_length_px: u32,
    /// Mean difference of residue, in detection thresholds (not grey
    /// levels: a film is faint relative to the die's noise).
    pub residue_max_contrast_ratio: f64,
    pub residue_min_area_px: u32,
}

impl Default for ClassSection {
    fn default() -> Self {
        let r = ClassRules::default();
        Self {
            scratch_min_length_px: r.scratch_min_length_px,
            residue_max_contrast_ratio: r.residue_max_contrast_ratio as f64,
            residue_min_area_px: r.residue_min_area_px,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpticsSection {
    pub pixel_um: f64,
    pub illumination_setpoint_pct: f64,
    pub exposure_us: f64,
}

/// A recipe checked and turned into what the machine needs.
#[derive(Debug, Clone)]
pub struct ValidRecipe {
    pub recipe: Recipe,
    pub geometry: WaferGeometry,
    /// Every die on the wafer, serpentine order.
    pub sites: Vec<DieSite>,
    /// Indices into `sites` to inspect, in order.
    pub plan: Vec<u32>,
    /// Image width and height: the die at this pixel size.
    pub image_px: u32,
    pub detect: DetectParams,
    /// What each die is compared with (`inspection.reference`), with the
    /// reference image loaded for "die_to_reference".
    pub reference: ReferenceSource,
    /// Content hash of the recipe file and, for "die_to_reference", of its
    /// reference image's pixels (FNV-1a 64, hex).
    pub hash: String,
}

fn in_range(field: &str, v: f64, lo: f64, hi: f64, unit: &str) -> Result<()> {
    if !(v >= lo && v <= hi) {
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        bail!("field `{field}`: {v}{unit} is outside the allowed range {lo} to {hi}{unit}");
    }
    Ok(())
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Reads and validates a recipe file. A reference image is found relative
/// to the recipe file's directory.
pub fn load(path: &Path) -> Result<ValidRecipe> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read the recipe: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    parse_in(&text, dir).map_err(|e| anyhow!("{}: {e:#}", path.display()))
}

/// Parses and validates recipe text (a reference image relative to the
/// current directory).
pub fn parse(text: &str) -> Result<ValidRecipe> {
    parse_in(text, Path::new(""))
}

/// Parses and validates recipe text whose relative paths (the reference
/// image) are relative to `dir`.
pub fn parse_in(text: &str, dir: &Path) -> Result<ValidRecipe> {
    let recipe: Recipe = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => anyhow!("line {}: {}", line_of(text, span.start), e.message()),
        None => anyhow!("{}", e.message()),
    })?;
    validate(recipe, text, dir)
}

/// Loads `inspection.reference_image` (8-bit, or 16-bit brought to 8 bits
/// by the fewest bits that hold its largest value) and checks its size.
fn load_reference_image(path: &Path, image_px: u32) -> Result<std::sync::Arc<[u8]>> {
    use crate::store::image_input::{load_raw, SixteenToEight};
    let field = "field `inspection.reference_image`";
    let raw = load_raw(path).map_err(|e| anyhow!("{field}: {e:#}"))?;
    if (raw.width, raw.height) != (image_px, image_px) {
        bail!(
            "{field}: {} is {}×{} pixels; this recipe images each die as {image_px}×{image_px} px (wafer.die_size_um / optics.pixel_um)",
            path.display(),
            raw.width,
            raw.height
        );
    }
    let reduce = SixteenToEight::choose(None, raw.max_value());
    let (pixels, _) = reduce.apply(raw);
    Ok(pixels.into())
}

fn validate(recipe: Recipe, text: &str, dir: &Path) -> Result<ValidRecipe> {
    if recipe.id.trim().is_empty() || recipe.id.len() > 64 {
        bail!("field `id`: \"{}\" must be 1 to 64 characters", recipe.id);
    }
    let w = &recipe.wafer;
    if w.diameter_mm != 200.0 && w.diameter_mm != 300.0 {
        bail!(
            "field `wafer.diameter_mm`: {} mm is not a supported wafer size (200 or 300 mm)",
            w.diameter_mm
        );
    }
    for (i, axis) in ["x", "y"].iter().enumerate() {
        in_range(
            &format!("wafer.die_size_um[{i}] ({axis})"),
            w.die_size_um[i],
            500.0,
            50_000.0,
            "µm",
        )?;
        in_range(
            &format!("wafer.die_pitch_um[{i}] ({axis})"),
            w.die_pitch_um[i],
            500.0,
            60_000.0,
            "µm",
        )?;
        if w.die_pitch_um[i] < w.die_size_um[i] {
            bail!(
                "field `wafer.die_pitch_um`: {} µm in {axis} is smaller than the die size {} µm (wafer.die_size_um)",
                w.die_pitch_um[i],
                w.die_size_um[i]
            );
        }
        in_range(
            &format!("wafer.die_origin_um[{i}] ({axis})"),
            w.die_origin_um[i],
            -w.die_pitch_um[i] / 2.0,
            w.die_pitch_um[i] / 2.0,
            "µm",
        )?;
    }
    let notch = match w.notch.as_str() {
        "down" => Notch::Down,
        "up" => Notch::Up,
        "left" => Notch::Left,
        "right" => Notch::Right,
        other => bail!("field `wafer.notch`: \"{other}\" is not one of down, up, left, right"),
    };
    in_range(
        "wafer.edge_exclusion_mm",
        w.edge_exclusion_mm,
        0.0,
        w.diameter_mm / 2.0 - 1.0,
        "mm",
    )?;
    let geometry = WaferGeometry {
        diameter_mm: w.diameter_mm,
        die_pitch_um: (w.die_pitch_um[0], w.die_pitch_um[1]),
        die_size_um: (w.die_size_um[0], w.die_size_um[1]),
        edge_exclusion_mm: w.edge_exclusion_mm,
        notch,
    };
    let sites = die_grid_offset(&geometry, (w.die_origin_um[0], w.die_origin_um[1]));
    if sites.is_empty() {
        bail!(
            "field `wafer.edge_exclusion_mm`: no die of {} × {} µm fits inside the usable radius of {} mm ({} mm wafer less {} mm edge exclusion)",
            w.die_size_um[0],
            w.die_size_um[1],
            w.diameter_mm / 2.0 - w.edge_exclusion_mm,
            w.diameter_mm,
            w.edge_exclusion_mm
        );
    }

    let p = &recipe.plan;
    let plan: Vec<u32> = match p.mode.as_str() {
        "all" => sites.iter().map(|s| s.index).collect(),
        "list" => {
            if p.dies.is_empty() {
                bail!("field `plan.dies`: the list is empty; give at least one [column, row]");
            }
            let mut wanted = Vec::new();
            for d in &p.dies {
                let Some(s) = sites.iter().find(|s| s.col == d[0] && s.row == d[1]) else {
                    bail!(
                        "field `plan.dies`: die [{}, {}] is not on the wafer",
                        d[0],
                        d[1]
                    );
                };
                wanted.push(s.index);
            }
            // Inspect in stage (serpentine) order, whatever the list order.
            wanted.sort_unstable();
            wanted.dedup();
            wanted
        }
        "sample" => {
            let every = p.every.ok_or_else(|| {
                anyhow!("field `plan.every`: required when plan.mode is \"sample\"")
            })?;
            in_range("plan.every", every as f64, 2.0, 100.0, "")?;
            sites
                .iter()
                .map(|s| s.index)
                .filter(|i| i % every == 0)
                .collect()
        }
        other => bail!("field `plan.mode`: \"{other}\" is not one of all, list, sample"),
    };

    let i = &recipe.inspection;
    in_range(
        "inspection.threshold",
        i.threshold as f64,
        4.0,
        200.0,
        "grey levels",
    )?;
    in_range(
        "inspection.min_defect_px",
        i.min_defect_px as f64,
        1.0,
        10_000.0,
        "px",
    )?;
    in_range(
        "inspection.golden_tolerance",
        i.golden_tolerance as f64,
        0.0,
        60.0,
        "grey levels",
    )?;
    in_range(
        "inspection.max_shift_px",
        i.max_shift_px as f64,
        1.0,
        crate::pipeline::align::MAX_SUPPORTED_SHIFT as f64,
        "px",
    )?;
    in_range(
        "inspection.min_align_confidence",
        i.min_align_confidence,
        0.0,
        1.0,
        "",
    )?;
    let threshold_mode = match i.threshold_mode.as_str() {
        "grey" => ThresholdMode::Grey,
        "sigma" => ThresholdMode::Sigma,
        other => {
            bail!("field `inspection.threshold_mode`: \"{other}\" is not one of grey, sigma")
        }
    };
    in_range(
        "inspection.threshold_sigma",
        i.threshold_sigma,
        1.0,
        50.0,
        "σ",
    )?;
    in_range(
        "inspection.threshold_floor",
        i.threshold_floor as f64,
        1.0,
        200.0,
        "grey levels",
    )?;
    in_range("inspection.edge_tolerance", i.edge_tolerance, 0.0, 1.0, "")?;
    in_range(
        "inspection.box_threshold_ratio",
        i.box_threshold_ratio,
        0.1,
        1.0,
        "",
    )?;
    let c = &i.classes;
    in_range(
        "inspection.classes.scratch_min_length_px",
        c.scratch_min_length_px as f64,
        4.0,
        4096.0,
        "px",
    )?;
    in_range(
        "inspection.classes.residue_max_contrast_ratio",
        c.residue_max_contrast_ratio,
        1.0,
        20.0,
        "detection thresholds",
    )?;
    in_range(
        "inspection.classes.residue_min_area_px",
        c.residue_min_area_px as f64,
        1.0,
        1e6,
        "px",
    )?;

    let o = &recipe.optics;
    in_range("optics.pixel_um", o.pixel_um, 0.1, 50.0, "µm")?;
    in_range(
        "optics.illumination_setpoint_pct",
        o.illumination_setpoint_pct,
        10.0,
        110.0,
        "%",
    )?;
    in_range("optics.exposure_us", o.exposure_us, 1.0, 100_000.0, "µs")?;
    let image_px = (w.die_size_um[0] / o.pixel_um).round();
    if !(320.0..=4096.0).contains(&image_px) || (w.die_size_um[1] / o.pixel_um).round() != image_px
    {
        bail!(
            "field `optics.pixel_um`: {} µm images a {} × {} µm die as {} × {} px; the camera takes square images of 320 to 4096 px",
            o.pixel_um,
            w.die_size_um[0],
            w.die_size_um[1],
            image_px,
            (w.die_size_um[1] / o.pixel_um).round()
        );
    }
    // The coarse search compares profiles over the part every candidate
    // shift overlaps; beyond a quarter of the image too little is left.
    if i.max_shift_px > image_px as u32 / 4 {
        bail!(
            "field `inspection.max_shift_px`: {} px is more than a quarter of the {} px image",
            i.max_shift_px,
            image_px
        );
    }
    let mut care_areas = CareAreas::default();
    if i.care_areas.len() > MAX_CARE_AREAS {
        bail!(
            "field `inspection.care_areas`: {} areas; at most {MAX_CARE_AREAS}",
            i.care_areas.len()
        );
    }
    for (k, a) in i.care_areas.iter().enumerate() {
        let field = |name: &str| format!("inspection.care_areas[{k}].{name}");
        for (name, v) in [("width_um", a.width_um), ("height_um", a.height_um)] {
            if v.is_nan() || v <= 0.0 {
                bail!("field `{}`: {v} µm must be > 0", field(name));
            }
        }
        for (name, v, size) in [
            ("x_um", a.x_um, w.die_size_um[0]),
            ("y_um", a.y_um, w.die_size_um[1]),
        ] {
            in_range(&field(name), v, 0.0, size, "µm")?;
        }
        for (name, end, size) in [
            ("width_um", a.x_um + a.width_um, w.die_size_um[0]),
            ("height_um", a.y_um + a.height_um, w.die_size_um[1]),
        ] {
            if end > size {
                bail!(
                    "field `{}`: the area ends at {end} µm, outside the die ({size} µm, wafer.die_size_um)",
                    field(name)
                );
            }
        }
        let rule = match (a.threshold, a.threshold_sigma, a.dont_care) {
            (Some(t), None, false) => {
                in_range(&field("threshold"), t as f64, 4.0, 250.0, "grey levels")?;
                CareRule::Grey(t as u8)
            }
            (None, Some(k), false) => {
                in_range(&field("threshold_sigma"), k, 1.0, 50.0, "σ")?;
                CareRule::Sigma(k as f32)
            }
            (None, None, true) => CareRule::DontCare,
            _ => bail!(
                "field `inspection.care_areas[{k}]`: give exactly one of threshold, threshold_sigma, dont_care = true"
            ),
        };
        let area = CareAreas::area_from_um(
            (a.x_um, a.y_um, a.width_um, a.height_um),
            o.pixel_um,
            image_px as u32,
            rule,
        );
        // Capacity checked above.
        if care_areas.push(area).is_err() {
            bail!("field `inspection.care_areas`: at most {MAX_CARE_AREAS}");
        }
    }
    let reference = match (i.reference.as_str(), &i.reference_image) {
        ("die_to_die", None) => ReferenceSource::DieToDie,
        ("die_to_golden", None) => ReferenceSource::DieToGolden,
        ("die_to_reference", Some(p)) => {
            let path: PathBuf = dir.join(p);
            ReferenceSource::DieToReference(load_reference_image(&path, image_px as u32)?)
        }
        ("die_to_reference", None) => bail!(
            "field `inspection.reference_image`: required when inspection.reference is \"die_to_reference\" (a grayscale PNG or TIFF of one die, relative to the recipe file)"
        ),
        (m @ ("die_to_die" | "die_to_golden"), Some(_)) => bail!(
            "field `inspection.reference_image`: only used when inspection.reference is \"die_to_reference\", not \"{m}\""
        ),
        (other, _) => bail!(
            "field `inspection.reference`: \"{other}\" is not one of die_to_die, die_to_golden, die_to_reference"
        ),
    };
    let detect = DetectParams {
        care_areas,
        threshold: i.threshold as u8,
        min_area: i.min_defect_px,
        golden_tolerance: i.golden_tolerance as u8,
        max_shift_px: i.max_shift_px,
        min_align_confidence: i.min_align_confidence as f32,
        threshold_mode,
        threshold_sigma: i.threshold_sigma as f32,
        threshold_floor: i.threshold_floor as u8,
        edge_tolerance: i.edge_tolerance as f32,
        box_threshold_ratio: i.box_threshold_ratio as f32,
        class_rules: ClassRules {
            scratch_min_length_px: c.scratch_min_length_px,
            residue_max_contrast_ratio: c.residue_max_contrast_ratio as f32,
            residue_min_area_px: c.residue_min_area_px,
            ..ClassRules::default()
        },
    };
    Ok(ValidRecipe {
        // The reference image is part of the recipe: a run record's hash
        // must change when it does, as when the text does.
        hash: match &reference {
            ReferenceSource::DieToReference(px) => {
                crate::monitor::journal::content_hash_of(&[text.as_bytes(), px])
            }
            _ => crate::monitor::content_hash(text),
        },
        image_px: image_px as u32,
        geometry,
        sites,
        plan,
        detect,
        reference,
        recipe,
    })
}

impl ValidRecipe {
    /// The layout a run record keeps (for KLARF export).
    pub fn layout(&self) -> crate::store::record::RunLayout {
        let w = &self.recipe.wafer;
        crate::store::record::RunLayout {
            diameter_mm: w.diameter_mm,
            die_pitch_um: (w.die_pitch_um[0], w.die_pitch_um[1]),
            die_size_um: (w.die_size_um[0], w.die_size_um[1]),
            grid_offset_um: (w.die_origin_um[0], w.die_origin_um[1]),
            notch: w.notch.clone(),
            pixel_um: self.recipe.optics.pixel_um,
            image_px: self.image_px,
            plan_dies: self
                .plan
                .iter()
                .map(|&i| {
                    let s = &self.sites[i as usize];
                    (i, s.col, s.row)
                })
                .collect(),
        }
    }

    /// Dies of the plan without a row neighbour in the plan, and dies with
    /// only one (a sampled or listed plan). Die-to-die, the first are
    /// inspected die-to-golden (the golden die alone) and the second with
    /// the golden die for the missing side. Zero for the other modes.
    pub fn dies_short_of_neighbours(&self) -> (usize, usize) {
        if !matches!(self.reference, ReferenceSource::DieToDie) {
            return (0, 0);
        }
        let planned: std::collections::HashSet<(i32, i32)> = self
            .plan
            .iter()
            .map(|&i| (self.sites[i as usize].col, self.sites[i as usize].row))
            .collect();
        let (mut none, mut one) = (0, 0);
        for &(c, r) in &planned {
            let n = [(c - 1, r), (c + 1, r)]
                .iter()
                .filter(|p| planned.contains(p))
                .count();
            match n {
                0 => none += 1,
                1 => one += 1,
                _ => {}
            }
        }
        (none, one)
    }

    /// What loading this recipe must say about its references: how many
    /// dies a die-to-die recipe will in fact inspect die-to-golden because
    /// the plan leaves them without row neighbours. `None` when every die
    /// has at least one neighbour.
    pub fn reference_note(&self) -> Option<String> {
        let (none, _) = self.dies_short_of_neighbours();
        (none > 0).then(|| {
            format!(
                "reference die_to_die: {none} of {} planned dies have no row neighbour in the plan and will be inspected die-to-golden (the golden die alone)",
                self.plan.len()
            )
        })
    }

    /// Reads a recipe file with context for the caller.
    pub fn from_file(path: &Path) -> Result<Self> {
        load(path).with_context(|| "loading the recipe".to_string())
    }
}
