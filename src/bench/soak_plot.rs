//! The soak's plot: resident memory and hand-off latency over the dies
//! inspected, one panel each, drawn with plotters into an RGB buffer and
//! written as PNG with `image` (plotters' own encoder would build a second,
//! older `image`). The warm-up is shaded, so a reader sees which part the
//! flatness figures cover.

use super::soak::Soak;
use anyhow::{Context, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;
use std::sync::Once;

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 800;
const FONT: &str = "sans-serif";

/// Draws `soak` into `path` (PNG).
pub fn draw(soak: &Soak, path: &Path) -> Result<()> {
    static FONT_ONCE: Once = Once::new();
    let mut font_ok = true;
    FONT_ONCE.call_once(|| {
        font_ok =
            register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT).is_ok();
    });
    anyhow::ensure!(font_ok, "the plot's font (Ubuntu Light) could not be read");
    anyhow::ensure!(!soak.samples.is_empty(), "the soak took no sample to plot");
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    render(soak, &mut rgb).map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    image::save_buffer(path, &rgb, WIDTH, HEIGHT, image::ColorType::Rgb8)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn render(soak: &Soak, rgb: &mut [u8]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(HEIGHT / 2);
    let x_max = soak.samples.last().map(|s| s.frames).unwrap_or(1).max(1) as f64;
    let warm_up_end = soak
        .steady()
        .first()
        .map(|s| s.frames as f64)
        .unwrap_or(0.0);
    let over_dies = |value: fn(&super::soak::Sample) -> f64| -> Vec<(f64, f64)> {
        soak.samples
            .iter()
            .map(|s| (s.frames as f64, value(s)))
            .collect()
    };

    let rss = over_dies(|s| s.rss_kib as f64 / 1024.0);
    let rss_max = rss.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1 + 1.0;
    let title = format!(
        "Resident memory (MiB): {} dies of {px}x{px} px, drift after warm-up {:.2} %",
        soak.frames,
        soak.rss_drift_percent(),
        px = soak.image_px
    );
    let axes = Axes {
        x_max,
        y_max: rss_max,
        y_desc: "RSS, MiB",
        warm_up_end,
    };
    panel(&top, title, &axes, vec![("RSS", BLUE, rss)])?;

    let p99 = over_dies(|s| s.handoff_p99_us / 1e3);
    let p50 = over_dies(|s| s.handoff_p50_us / 1e3);
    let lat_max = p99.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1 + 0.1;
    let (first, last) = soak.handoff_p99_first_last_us();
    let title = format!(
        "Hand-off latency per interval (ms): p99 {:.2} after warm-up, {:.2} at the end",
        first / 1e3,
        last / 1e3
    );
    let axes = Axes {
        x_max,
        y_max: lat_max,
        y_desc: "capture -> worker, ms",
        warm_up_end,
    };
    panel(
        &bottom,
        title,
        &axes,
        vec![("p99", RED, p99), ("p50", GREEN, p50)],
    )?;
    root.present()?;
    Ok(())
}

/// A panel's axes: dies inspected from 0 to `x_max`, the value from 0 to
/// `y_max`, the warm-up (up to `warm_up_end` dies) shaded.
struct Axes<'a> {
    x_max: f64,
    y_max: f64,
    y_desc: &'a str,
    warm_up_end: f64,
}

/// A line: its legend label, colour and (dies inspected, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// One panel: its caption, axes, the warm-up band, a line per series and
/// their legend.
fn panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: String,
    axes: &Axes,
    series: Vec<Series>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..axes.x_max, 0.0..axes.y_max)?;
    chart
        .configure_mesh()
        .x_desc("dies inspected")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(axes.y_desc)
        .label_style((FONT, 15))
        .draw()?;
    shade_warm_up(&mut chart, axes.warm_up_end, axes.y_max)?;
    for (label, color, points) in series {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .label_font((FONT, 15))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Grey band over the warm-up.
fn shade_warm_up(
    chart: &mut Chart,
    warm_up_end: f64,
    y_max: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    if warm_up_end > 0.0 {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (warm_up_end, y_max)],
            RGBColor(225, 225, 225).filled(),
        )))?;
    }
    Ok(())
}
