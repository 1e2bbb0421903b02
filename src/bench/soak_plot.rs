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

    let rss: Vec<(f64, f64)> = soak
        .samples
        .iter()
        .map(|s| (s.frames as f64, s.rss_kib as f64 / 1024.0))
        .collect();
    let rss_max = rss.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1 + 1.0;
    let title = format!(
        "Resident memory (MiB): {} dies of {px}x{px} px, drift after warm-up {:.2} %",
        soak.frames,
        soak.rss_drift_percent(),
        px = soak.image_px
    );
    let mut chart = ChartBuilder::on(&top)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..rss_max)?;
    chart
        .configure_mesh()
        .x_desc("dies inspected")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("RSS, MiB")
        .label_style((FONT, 15))
        .draw()?;
    shade_warm_up(&mut chart, warm_up_end, rss_max)?;
    chart
        .draw_series(LineSeries::new(rss, BLUE.stroke_width(2)))?
        .label("RSS")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .label_font((FONT, 15))
        .border_style(BLACK)
        .draw()?;

    let p99: Vec<(f64, f64)> = soak
        .samples
        .iter()
        .map(|s| (s.frames as f64, s.handoff_p99_us / 1e3))
        .collect();
    let p50: Vec<(f64, f64)> = soak
        .samples
        .iter()
        .map(|s| (s.frames as f64, s.handoff_p50_us / 1e3))
        .collect();
    let lat_max = p99.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1 + 0.1;
    let (first, last) = soak.handoff_p99_first_last_us();
    let title = format!(
        "Hand-off latency per interval (ms): p99 {:.2} after warm-up, {:.2} at the end",
        first / 1e3,
        last / 1e3
    );
    let mut chart = ChartBuilder::on(&bottom)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..lat_max)?;
    chart
        .configure_mesh()
        .x_desc("dies inspected")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("capture -> worker, ms")
        .label_style((FONT, 15))
        .draw()?;
    shade_warm_up(&mut chart, warm_up_end, lat_max)?;
    chart
        .draw_series(LineSeries::new(p99, RED.stroke_width(2)))?
        .label("p99")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(LineSeries::new(p50, GREEN.stroke_width(2)))?
        .label("p50")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .label_font((FONT, 15))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
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
