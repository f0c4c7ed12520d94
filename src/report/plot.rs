//! Plots with plotters, PNG and SVG side by side. Text uses DejaVu Sans embedded in the binary
//! (registered once), so plots render on machines without system fonts.
//!
//! Charts are plain data ([`LineChart`], [`PanelGrid`]) drawn by one generic function per kind for
//! both backends.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// The font family every chart uses.
pub const FONT: &str = "sans-serif";
static FONTS: Once = Once::new();

/// Registers the embedded DejaVu Sans under [`FONT`] (idempotent).
pub fn register_fonts() {
    FONTS.call_once(|| {
        // The bytes are a valid TrueType font shipped by the `dejavu` crate; failure would be a bug.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Distinct colours for series (Tableau 10).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One line of a [`LineChart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Index into [`PALETTE`].
    pub color: usize,
    pub dashed: bool,
    pub markers: bool,
}

impl Series {
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Self {
        Series { name: name.into(), points, color, dashed: false, markers: false }
    }
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }
}

/// A shaded band (e.g. a 95% CI) between `lower` and `upper` at the same x values.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub x: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    pub color: usize,
}

/// An x–y chart of lines with optional bands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
    /// Fixed y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    pub width: u32,
    pub height: u32,
}

impl LineChart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        LineChart { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), width: 900, height: 520, ..Default::default() }
    }

    /// Writes `<stem>.png` and `<stem>.svg`; returns both paths.
    ///
    /// # Errors
    /// A plot that cannot be drawn or written.
    pub fn write(&self, stem: &Path) -> Result<[PathBuf; 2]> {
        write_both(stem, self.width, self.height, self)
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let xs = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(self.bands.iter().flat_map(|b| b.x.iter().copied()));
        let ys = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain(self.bands.iter().flat_map(|b| b.lower.iter().chain(&b.upper).copied()));
        let span = |it: &mut dyn Iterator<Item = f64>| {
            let (lo, hi) = it.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
            if lo > hi {
                (0.0, 1.0)
            } else if lo == hi {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo, hi)
            }
        };
        let x = span(&mut xs.into_iter());
        let y = self.y_range.unwrap_or_else(|| {
            let (lo, hi) = span(&mut ys.into_iter());
            let pad = 0.05 * (hi - lo);
            (lo - pad, hi + pad)
        });
        (x, y)
    }

    /// The corner of the plot the legend covers least data in: the one whose box (the outer 40% of
    /// the width and 35% of the height) holds the fewest points of the lines and bands — upper right
    /// on a tie. Accuracy curves rise to the upper right, where a fixed corner hid their last epochs.
    fn legend_corner(&self, ((x0, x1), (y0, y1)): ((f64, f64), (f64, f64))) -> SeriesLabelPosition {
        let points = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .chain(self.bands.iter().flat_map(|b| b.x.iter().zip(&b.lower).chain(b.x.iter().zip(&b.upper)).map(|(x, y)| (*x, *y))));
        let (fx, fy) = (|x: f64| (x - x0) / (x1 - x0), |y: f64| (y - y0) / (y1 - y0));
        let corners = [
            (SeriesLabelPosition::UpperRight, true, true),
            (SeriesLabelPosition::UpperLeft, false, true),
            (SeriesLabelPosition::LowerRight, true, false),
            (SeriesLabelPosition::LowerLeft, false, false),
        ];
        let mut counts = [0usize; 4];
        for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
            let (u, v) = (fx(x), fy(y));
            for (k, &(_, right, upper)) in corners.iter().enumerate() {
                let inside_x = if right { u >= 0.6 } else { u <= 0.4 };
                let inside_y = if upper { v >= 0.65 } else { v <= 0.35 };
                counts[k] += usize::from(inside_x && inside_y);
            }
        }
        // The first corner with the fewest points (upper right first).
        let best = (0..4).min_by_key(|&k| (counts[k], k)).unwrap_or(0);
        corners[best].0.clone()
    }

    /// Whether every x value is a whole number (epochs, layer indices): ticks then print without
    /// decimals.
    fn whole_x(&self) -> bool {
        self.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(self.bands.iter().flat_map(|b| b.x.iter().copied())).all(|x| x.fract() == 0.0)
    }
}

/// Font size for a caption of `title` across `width` pixels: `largest`, or smaller so that a long
/// title fits (DejaVu Sans averages about 0.55 em per character) instead of being cut at both ends.
fn caption_size(title: &str, width: u32, largest: f64) -> f64 {
    let room = f64::from(width.saturating_sub(24));
    let chars = title.chars().count().max(1) as f64;
    (room / (0.55 * chars)).clamp(10.0, largest)
}

/// Tick label of a whole-number axis.
fn whole_tick(v: &f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

impl Drawable for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let e = |err: &dyn std::fmt::Display| Error::input("plot", err.to_string());
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, (FONT, caption_size(&self.title, self.width, 20.0)))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|x| e(&x))?;
        let mut mesh = chart.configure_mesh();
        // Major grid lines only: the minor ones tripled the size of the SVG and PNG files.
        mesh.max_light_lines(0).x_desc(&self.x_label).y_desc(&self.y_label).label_style((FONT, 13)).axis_desc_style((FONT, 15));
        if self.whole_x() {
            mesh.x_label_formatter(&whole_tick);
        }
        mesh.draw().map_err(|x| e(&x))?;
        for b in &self.bands {
            let c = PALETTE[b.color % PALETTE.len()];
            let poly: Vec<(f64, f64)> = b.x.iter().zip(&b.upper).map(|(x, y)| (*x, *y)).chain(b.x.iter().zip(&b.lower).rev().map(|(x, y)| (*x, *y))).collect();
            chart.draw_series(std::iter::once(Polygon::new(poly, c.mix(0.2).filled()))).map_err(|x| e(&x))?;
        }
        for s in &self.series {
            let c = PALETTE[s.color % PALETTE.len()];
            let style = ShapeStyle::from(&c).stroke_width(2);
            let anno = if s.dashed {
                chart.draw_series(DashedLineSeries::new(s.points.iter().copied(), 6, 4, style)).map_err(|x| e(&x))?
            } else {
                chart.draw_series(LineSeries::new(s.points.iter().copied(), style)).map_err(|x| e(&x))?
            };
            anno.label(s.name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            if s.markers {
                chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(|x| e(&x))?;
            }
        }
        if self.series.iter().any(|s| !s.name.is_empty()) {
            chart
                .configure_series_labels()
                .label_font((FONT, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(self.legend_corner(((x0, x1), (y0, y1))))
                .draw()
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))?;
        Ok(())
    }
}

/// One scatter panel: points with a colour value in [0, 1] (viridis-like ramp).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScatterPanel {
    pub title: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// Scatter panels side by side (Fig. 1 style).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PanelGrid {
    pub title: String,
    pub panels: Vec<ScatterPanel>,
    pub panel_size: u32,
}

impl PanelGrid {
    /// # Errors
    /// A plot that cannot be drawn or written.
    pub fn write(&self, stem: &Path) -> Result<[PathBuf; 2]> {
        let s = self.panel_size.max(160);
        let w = s * self.panels.len().max(1) as u32;
        write_both(stem, w, s + 40, self)
    }
}

impl Drawable for PanelGrid {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let e = |err: &dyn std::fmt::Display| Error::input("plot", err.to_string());
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let root = root.titled(&self.title, (FONT, 18)).map_err(|x| e(&x))?;
        let areas = root.split_evenly((1, self.panels.len().max(1)));
        for (area, p) in areas.into_iter().zip(&self.panels) {
            let lim = p.points.iter().map(|q| q.0.abs().max(q.1.abs())).filter(|v| v.is_finite()).fold(1e-9, f64::max) * 1.1;
            let mut chart = ChartBuilder::on(&area).caption(&p.title, (FONT, 14)).margin(6).build_cartesian_2d(-lim..lim, -lim..lim).map_err(|x| e(&x))?;
            chart.configure_mesh().disable_mesh().disable_x_axis().disable_y_axis().draw().map_err(|x| e(&x))?;
            chart
                .draw_series(p.points.iter().filter(|q| q.0.is_finite() && q.1.is_finite()).map(|&(x, y, t)| Circle::new((x, y), 2, ramp(t).filled())))
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))?;
        Ok(())
    }
}

/// A blue → green → yellow colour ramp for t in [0, 1].
pub fn ramp(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64, u: f64| (a + (b - a) * u) as u8;
    if t < 0.5 {
        let u = t / 0.5;
        RGBColor(lerp(68.0, 33.0, u), lerp(1.0, 145.0, u), lerp(84.0, 140.0, u))
    } else {
        let u = (t - 0.5) / 0.5;
        RGBColor(lerp(33.0, 253.0, u), lerp(145.0, 231.0, u), lerp(140.0, 37.0, u))
    }
}

/// A chart that can draw itself on any plotters backend.
pub trait Drawable {
    /// # Errors
    /// A drawing failure of the backend.
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Draws the same picture into `<stem>.png` and `<stem>.svg`, each written atomically.
///
/// # Errors
/// A plot that cannot be drawn or written.
pub fn write_both<D: Drawable>(stem: &Path, w: u32, h: u32, chart: &D) -> Result<[PathBuf; 2]> {
    register_fonts();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let mut svg_text = String::new();
    {
        let backend = SVGBackend::with_string(&mut svg_text, (w, h));
        chart.draw(backend.into_drawing_area())?;
    }
    crate::io::atomic::write_atomic(&svg, svg_text.as_bytes())?;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let backend = BitMapBackend::with_buffer(&mut buf, (w, h));
        chart.draw(backend.into_drawing_area())?;
    }
    // Adaptive filters shrink line charts to about a third of the encoder's default, which matters for
    // plots committed to the repository and embedded in notebooks. With them, the default deflate level
    // is as small as the best one (the three `analyze` plots: 40.8, 54.0 and 50.7 KB against 41.1, 54.3
    // and 51.8 KB) at a fraction of the time (≈ 25 ms of CPU less per plot).
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Default, FilterType::Adaptive)
        .write_image(&buf, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| Error::input("plot", e))?;
    crate::io::atomic::write_atomic(&png, &bytes)?;
    Ok([png, svg])
}

#[cfg(test)]
mod legend_tests {
    use super::*;

    fn chart(points: Vec<(f64, f64)>) -> LineChart {
        let mut c = LineChart::new("t", "x", "y");
        c.series.push(Series { name: "a".into(), points, color: 0, dashed: false, markers: false });
        c
    }

    #[test]
    fn legend_goes_where_the_data_is_not() {
        // A rising curve (accuracy per epoch) fills the upper right and the lower left: the legend
        // goes to the first empty corner, upper left.
        let rising = chart((1..=10).map(|e| (e as f64, 0.7 + 0.02 * e as f64)).collect());
        assert_eq!(rising.legend_corner(rising.ranges()), SeriesLabelPosition::UpperLeft);
        // A curve that rises fast and then flattens (the usual accuracy curve) leaves only the lower
        // right free.
        let saturating = chart((1..=10).map(|e| (e as f64, 0.9 - 0.2 / e as f64)).collect());
        assert_eq!(saturating.legend_corner(saturating.ranges()), SeriesLabelPosition::LowerRight);
        // A falling curve (loss) leaves the upper right free.
        let falling = chart((1..=10).map(|e| (e as f64, 1.0 / e as f64)).collect());
        assert_eq!(falling.legend_corner(falling.ranges()), SeriesLabelPosition::UpperRight);
        assert!(rising.whole_x());
        // Long captions shrink to fit; short ones keep the largest size.
        assert_eq!(caption_size("short", 900, 20.0), 20.0);
        let long = "x".repeat(120);
        assert!(caption_size(&long, 900, 20.0) * 0.55 * 120.0 <= 876.0 + 1e-9);
        assert!(!chart(vec![(0.5, 1.0), (1.0, 2.0)]).whole_x());
    }
}
