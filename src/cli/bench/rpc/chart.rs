//! `bench rpc --chart FILE`: the report's medians as an SVG chart (plotters'
//! SVG backend, no font files needed): p50 latency at one call in flight and
//! calls/s at `--in-flight`, one bar per scenario, side by side.

use std::path::Path;

use anyhow::{Context as _, anyhow};
use plotters::prelude::*;
use serde_json::Value;

/// Chart size in pixels.
const SIZE: (u32, u32) = (1000, 420);

/// One bar of a panel.
struct Bar<'a> {
    scenario: &'a str,
    value: f64,
}

/// Writes the chart of the report `lines` to `path`.
pub(crate) fn write(path: &Path, lines: &[Value], title: &str) -> anyhow::Result<()> {
    let figure = |field: &str| -> Vec<Bar<'_>> {
        lines
            .iter()
            .filter_map(|line| {
                Some(Bar {
                    scenario: line.get("scenario")?.as_str()?,
                    value: line.get(field)?.as_f64()?,
                })
            })
            .collect()
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let root = root.titled(title, ("sans-serif", 18)).map_err(drawing)?;
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        panel(
            &left,
            "p50 latency, 1 call in flight (ms)",
            &figure("p50_ms"),
            &BLUE,
        )?;
        panel(
            &right,
            "calls/s at the loaded in-flight",
            &figure("calls_per_s"),
            &GREEN,
        )?;
        root.present().map_err(drawing)?;
    }
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

/// Horizontal bars of `bars` on `area`, the scenarios' names on the left.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    bars: &[Bar<'_>],
    color: &RGBColor,
) -> anyhow::Result<()> {
    let max = bars
        .iter()
        .map(|b| b.value)
        .fold(0.0, f64::max)
        .max(f64::EPSILON)
        * 1.15;
    let count = u32::try_from(bars.len()).unwrap_or(u32::MAX);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 14))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(140)
        .build_cartesian_2d(0.0..max, (0..count).into_segmented())
        .map_err(|e| anyhow!("{e}"))?;
    let name = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) => bars
            .get(*i as usize)
            .map_or_else(String::new, |b| b.scenario.to_owned()),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&name)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(
            Histogram::horizontal(&chart)
                .style(color.mix(0.7).filled())
                .margin(4)
                .data(bars.iter().enumerate().map(|(i, b)| (i as u32, b.value))),
        )
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            Text::new(
                format!("{:.2}", b.value),
                (b.value, SegmentValue::CenterOf(i as u32)),
                ("sans-serif", 11),
            )
        }))
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

fn drawing<E: std::error::Error + Send + Sync + 'static>(
    e: DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow!("drawing the chart: {e}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_scenario_gets_a_bar_and_its_figure() {
        let dir = std::env::temp_dir().join(format!("tollgate-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.svg");
        let lines = [
            json!({"scenario": "raw_relay", "p50_ms": 1.5, "calls_per_s": 3300.0}),
            json!({"scenario": "central_uncached", "p50_ms": 2.25, "calls_per_s": 1800.0}),
        ];
        write(&path, &lines, "bench rpc").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(svg.starts_with("<svg"));
        for text in ["raw_relay", "central_uncached", "2.25", "3300.00"] {
            assert!(svg.contains(text), "{text} missing");
        }
    }
}
