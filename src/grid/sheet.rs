//! Contact sheets: many same-sized cells in a grid, each with a caption strip under it (its seed
//! and whatever the axes vary), optional column labels above, row labels to the left (X/Y
//! plots) and a title on top. Plain data in, an `RgbImage` out; the file and its metadata are
//! `metadata::sheet`'s job.
//!
//! Text is drawn with a real rasteriser (ab_glyph: exact area coverage of the glyph outlines)
//! and DejaVu Sans, shipped in `assets/fonts/` with its licence, so sheets look the same on
//! every machine.
//!
//! Layout, all in pixels (`gap` doubles as the outer margin):
//!
//! ```text
//! margin
//! [title band                                       ]   (if a title)
//!               [col label 0]gap[col label 1] ...       (if column labels)
//! [row label 0] gap [cell 0,0  ]gap[cell 1,0  ] ...
//!                   [caption   ]   [caption   ]
//!               gap
//! [row label 1] gap [cell 0,1  ]   ...
//! ```

use crate::{Error, Result};
use ab_glyph::{point, Font, FontRef, PxScale, PxScaleFont, ScaleFont};
use image::{Rgb, RgbImage};

/// DejaVu Sans 2.37 (Debian `fonts-dejavu-core` 2.37-6), unmodified. Licence (Bitstream Vera
/// and Arev terms, which allow redistribution with the notice): `assets/fonts/LICENSE-DejaVu.txt`.
static FONT_DATA: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Sheet background (light grey, so white cells stay visibly separate).
pub const BACKGROUND: Rgb<u8> = Rgb([245, 245, 245]);
/// Text colour.
pub(crate) const INK: Rgb<u8> = Rgb([24, 24, 24]);

/// Largest sheet drawn, in pixels: 2^27 (384 MiB as RGB), below what `metadata::read_png`
/// accepts (8192 x 8192 at 8 bytes a pixel), so every sheet seedling writes can be read back.
pub(crate) const MAX_SHEET_PIXELS: u64 = 1 << 27;

/// One cell: its image and its caption (`'\n'` separates lines; two lines are shown, long lines
/// are wrapped at spaces and ellipsised to the cell width).
#[derive(Debug, Clone)]
pub struct SheetCell {
    pub image: RgbImage,
    pub label: String,
}

/// How cells are arranged and what the axes say.
#[derive(Debug, Clone, PartialEq)]
pub struct SheetLayout {
    pub cols: usize,
    pub rows: usize,
    /// One label per column, drawn in a band above the columns (X/Y plots).
    pub col_labels: Option<Vec<String>>,
    /// One label per row, drawn in a band left of the rows (X/Y plots).
    pub row_labels: Option<Vec<String>>,
    /// One line across the top.
    pub title: Option<String>,
}

impl SheetLayout {
    /// `cols` x `rows` with no axis labels and no title.
    pub fn new(cols: usize, rows: usize) -> Self {
        SheetLayout {
            cols,
            rows,
            col_labels: None,
            row_labels: None,
            title: None,
        }
    }
}

/// `(cols, rows)` for `n` cells, as square as possible with `cols >= rows`: AUTOMATIC1111's
/// `image_grid` rule, `cols = ceil(sqrt(n))`, then just enough rows. `(0, 0)` for no cells.
pub(crate) fn near_square(n: usize) -> (usize, usize) {
    if n == 0 {
        return (0, 0);
    }
    let mut cols = n.isqrt();
    if cols * cols < n {
        cols += 1;
    }
    (cols, n.div_ceil(cols))
}

/// The size of the sheet [`render_sheet`] draws for cells of `cell_w` x `cell_h` (saturating at
/// `u32::MAX` for absurd layouts, which `render_sheet` refuses).
pub fn sheet_size(cell_w: u32, cell_h: u32, layout: &SheetLayout) -> (u32, u32) {
    let g = Geometry::new(cell_w, cell_h, layout);
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    (clamp(g.width), clamp(g.height))
}

/// Draws the sheet: cells row-major (missing cells, when there are fewer than `cols * rows`,
/// stay background), each with its caption, plus the layout's labels and title.
pub fn render_sheet(cells: &[SheetCell], layout: &SheetLayout) -> Result<RgbImage> {
    let (cell_w, cell_h) = check_cells(cells, layout)?;
    check_sheet_size(cell_w, cell_h, layout)?;
    let g = Geometry::new(cell_w, cell_h, layout);
    let font = FontRef::try_from_slice(FONT_DATA).map_err(|e| {
        Error::Invalid(format!(
            "the font built into seedling cannot be read ({e}); the build is damaged, rebuild it"
        ))
    })?;

    // Both sides fit in u32: their product is at most MAX_SHEET_PIXELS.
    let mut sheet = RgbImage::from_pixel(g.width as u32, g.height as u32, BACKGROUND);
    let text = g.text_style();
    for (i, cell) in cells.iter().enumerate() {
        let (col, row) = (i % layout.cols, i / layout.cols);
        let at = g.cell_rect(col, row);
        image::imageops::replace(&mut sheet, &cell.image, at.x as i64, at.y as i64);
        draw_text(
            &mut sheet,
            &font,
            text,
            g.caption_rect(col, row),
            &cell.label,
            2,
        );
    }
    for (col, label) in layout.col_labels.iter().flatten().enumerate() {
        draw_text(&mut sheet, &font, text, g.col_label_rect(col), label, 2);
    }
    let row_lines = g.row_label_lines();
    for (row, label) in layout.row_labels.iter().flatten().enumerate() {
        draw_text(
            &mut sheet,
            &font,
            text,
            g.row_label_rect(row),
            label,
            row_lines,
        );
    }
    if let Some(title) = &layout.title {
        draw_text(&mut sheet, &font, g.title_style(), g.title_rect(), title, 1);
    }
    Ok(sheet)
}

/// Refuses a sheet of `cell_w` x `cell_h` cells laid out as `layout` that would be larger than
/// [`MAX_SHEET_PIXELS`], from the sizes alone: `grid` asks before it renders any cell (the
/// sheet once failed only after every cell was rendered), [`render_sheet`] again.
pub fn check_sheet_size(cell_w: u32, cell_h: u32, layout: &SheetLayout) -> Result<()> {
    let g = Geometry::new(cell_w, cell_h, layout);
    if g.width.saturating_mul(g.height) > MAX_SHEET_PIXELS {
        return Err(Error::Invalid(format!(
            "a {} x {} sheet of {cell_w}x{cell_h} cells would be {}x{} pixels, more than the \
             {MAX_SHEET_PIXELS} a sheet may have; make fewer cells per sheet or smaller images",
            layout.cols, layout.rows, g.width, g.height
        )));
    }
    Ok(())
}

/// Refuses layouts and cells that cannot make a sheet; returns the common cell size.
fn check_cells(cells: &[SheetCell], layout: &SheetLayout) -> Result<(u32, u32)> {
    let first = cells.first().ok_or_else(|| {
        Error::Invalid(
            "a contact sheet needs at least one cell; render at least one image first".into(),
        )
    })?;
    if layout.cols == 0 || layout.rows == 0 {
        return Err(Error::Invalid(format!(
            "a {}x{} contact sheet has no room for cells; use at least 1 column and 1 row \
             (near_square gives a layout for any number of cells)",
            layout.cols, layout.rows
        )));
    }
    let room = layout.cols.saturating_mul(layout.rows);
    if cells.len() > room {
        let (c, r) = near_square(cells.len());
        return Err(Error::Invalid(format!(
            "{} cells do not fit a {} x {} contact sheet (room for {room}); use more columns or \
             rows, e.g. {c} x {r}",
            cells.len(),
            layout.cols,
            layout.rows
        )));
    }
    check_label_count("column", layout.col_labels.as_deref(), layout.cols)?;
    check_label_count("row", layout.row_labels.as_deref(), layout.rows)?;
    let size = first.image.dimensions();
    if size.0 == 0 || size.1 == 0 {
        return Err(Error::Invalid(format!(
            "cell 0 is {}x{} pixels; contact sheet cells must not be empty",
            size.0, size.1
        )));
    }
    if let Some((i, cell)) = cells
        .iter()
        .enumerate()
        .find(|(_, c)| c.image.dimensions() != size)
    {
        let (w, h) = cell.image.dimensions();
        return Err(Error::Invalid(format!(
            "cell {i} is {w}x{h} but cell 0 is {}x{}; all cells of a contact sheet must have \
             the same size — make them at one size, or put each size on its own sheet",
            size.0, size.1
        )));
    }
    Ok(size)
}

fn check_label_count(what: &str, labels: Option<&[String]>, expected: usize) -> Result<()> {
    match labels {
        Some(labels) if labels.len() != expected => Err(Error::Invalid(format!(
            "{} {what} labels given for a sheet of {expected} {what}s; give one label per {what}",
            labels.len()
        ))),
        _ => Ok(()),
    }
}

/// A rectangle on the sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: u64,
    y: u64,
    w: u64,
    h: u64,
}

impl Rect {
    fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x as i64
            && y >= self.y as i64
            && x < (self.x + self.w) as i64
            && y < (self.y + self.h) as i64
    }
}

/// Text size and spacing, in pixels. `px` is ab_glyph's scale: the font's ascent minus descent.
#[derive(Debug, Clone, Copy)]
struct TextStyle {
    px: u64,
    leading: u64,
    pad: u64,
}

impl TextStyle {
    fn for_px(px: u64) -> Self {
        TextStyle {
            px,
            leading: (px / 6).max(1),
            pad: (px / 4).max(2),
        }
    }

    /// Height of a band that holds `lines` lines with padding above and below.
    fn band_height(&self, lines: u64) -> u64 {
        2 * self.pad + lines * self.px + lines.saturating_sub(1) * self.leading
    }
}

/// Where everything goes; computed in u64 with saturating arithmetic so any layout has a size.
#[derive(Debug, Clone)]
struct Geometry {
    cell_w: u64,
    cell_h: u64,
    text_px: u64,
    gap: u64,
    caption_h: u64,
    title_h: u64,
    col_band_h: u64,
    row_band_w: u64,
    /// Top-left corner of cell (0, 0).
    left: u64,
    top: u64,
    width: u64,
    height: u64,
}

impl Geometry {
    fn new(cell_w: u32, cell_h: u32, layout: &SheetLayout) -> Self {
        let (cell_w, cell_h) = (u64::from(cell_w), u64::from(cell_h));
        let side = cell_w.min(cell_h);
        // Readable on 64-pixel test cells (12 px) without crowding 512-pixel ones (28 px).
        let text_px = (side / 16).clamp(12, 28);
        // Wide enough that a caption clearly belongs to the cell above it, not the one below.
        let gap = (side / 32).max(4);
        let text = TextStyle::for_px(text_px);
        let caption_h = text.band_height(2);
        let title_h = match layout.title {
            Some(_) => Self::title_style_for(text_px).band_height(1),
            None => 0,
        };
        let col_band_h = if layout.col_labels.is_some() {
            caption_h
        } else {
            0
        };
        // Room for a short value ("cfg 7.5") on small cells, half a cell on large ones.
        let row_band_w = if layout.row_labels.is_some() {
            (cell_w / 2).max(6 * text_px)
        } else {
            0
        };
        let (cols, rows) = (layout.cols as u64, layout.rows as u64);
        let span = |n: u64, size: u64| {
            n.saturating_mul(size)
                .saturating_add(n.saturating_sub(1).saturating_mul(gap))
        };
        let left = gap + if row_band_w > 0 { row_band_w + gap } else { 0 };
        let top = gap + title_h + col_band_h;
        Geometry {
            cell_w,
            cell_h,
            text_px,
            gap,
            caption_h,
            title_h,
            col_band_h,
            row_band_w,
            left,
            top,
            width: left.saturating_add(span(cols, cell_w)).saturating_add(gap),
            height: top
                .saturating_add(span(rows, cell_h + caption_h))
                .saturating_add(gap),
        }
    }

    fn title_style_for(text_px: u64) -> TextStyle {
        TextStyle::for_px(text_px * 5 / 4)
    }

    fn text_style(&self) -> TextStyle {
        TextStyle::for_px(self.text_px)
    }

    fn title_style(&self) -> TextStyle {
        Self::title_style_for(self.text_px)
    }

    fn cell_rect(&self, col: usize, row: usize) -> Rect {
        Rect {
            x: self.left + col as u64 * (self.cell_w + self.gap),
            y: self.top + row as u64 * (self.cell_h + self.caption_h + self.gap),
            w: self.cell_w,
            h: self.cell_h,
        }
    }

    /// The strip right under a cell.
    fn caption_rect(&self, col: usize, row: usize) -> Rect {
        let cell = self.cell_rect(col, row);
        Rect {
            x: cell.x,
            y: cell.y + cell.h,
            w: cell.w,
            h: self.caption_h,
        }
    }

    fn col_label_rect(&self, col: usize) -> Rect {
        Rect {
            x: self.cell_rect(col, 0).x,
            y: self.gap + self.title_h,
            w: self.cell_w,
            h: self.col_band_h,
        }
    }

    /// Beside the cell image (not its caption), so the label is centred on the picture.
    fn row_label_rect(&self, row: usize) -> Rect {
        Rect {
            x: self.gap,
            y: self.cell_rect(0, row).y,
            w: self.row_band_w,
            h: self.cell_h,
        }
    }

    fn row_label_lines(&self) -> usize {
        let style = self.text_style();
        let room = self.cell_h.saturating_sub(2 * style.pad) + style.leading;
        (room / (style.px + style.leading)).clamp(1, 8) as usize
    }

    fn title_rect(&self) -> Rect {
        Rect {
            x: self.gap,
            y: self.gap,
            w: self.width - 2 * self.gap,
            h: self.title_h,
        }
    }
}

type Scaled<'a> = PxScaleFont<&'a FontRef<'static>>;

/// Draws `text` centred in `rect` (each line centred; the block centred vertically), in at most
/// `max_lines` lines, never outside `rect`.
fn draw_text(
    sheet: &mut RgbImage,
    font: &FontRef<'static>,
    style: TextStyle,
    rect: Rect,
    text: &str,
    max_lines: usize,
) {
    let scaled = font.as_scaled(PxScale::from(style.px as f32));
    let inner_w = rect.w.saturating_sub(2 * style.pad) as f32;
    let lines = fit_lines(&scaled, text, inner_w, max_lines);
    let n = lines.len() as u64;
    if n == 0 {
        return;
    }
    let block_h = n * style.px + (n - 1) * style.leading;
    let top = rect.y + rect.h.saturating_sub(block_h) / 2;
    for (i, line) in lines.iter().enumerate() {
        let width = text_width(&scaled, line);
        // Whole-pixel origins keep every line's stems equally crisp.
        let x = (rect.x as f32 + (rect.w as f32 - width) / 2.0).round();
        let line_top = top + i as u64 * (style.px + style.leading);
        let baseline = (line_top as f32 + scaled.ascent()).round();
        draw_line(sheet, &scaled, line, x, baseline, rect);
    }
}

/// Splits `text` into at most `max_lines` lines no wider than `max_w`: explicit `'\n'` breaks
/// first, then greedy wrapping at spaces; a word wider than a line, and the last line when text
/// is left over, end in an ellipsis. Blank lines are dropped.
fn fit_lines(font: &Scaled, text: &str, max_w: f32, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if line.is_empty() || text_width(font, &candidate) <= max_w {
                line = candidate;
            } else {
                lines.push(std::mem::replace(&mut line, word.to_string()));
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    let overflow = lines.len() > max_lines;
    lines.truncate(max_lines);
    let last = lines.len().saturating_sub(1);
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| ellipsise(font, line, max_w, overflow && i == last))
        .filter(|line| !line.is_empty())
        .collect()
}

/// `text` if it fits in `max_w` (and `force` is false), else its longest prefix that fits with
/// "…" appended; empty when not even "…" fits.
fn ellipsise(font: &Scaled, text: &str, max_w: f32, force: bool) -> String {
    let widths = prefix_widths(font, text);
    if !force && widths[widths.len() - 1] <= max_w {
        return text.to_string();
    }
    let ellipsis_w = text_width(font, "…");
    let chars: Vec<char> = text.chars().collect();
    match (0..=chars.len())
        .rev()
        .find(|&k| widths[k] + ellipsis_w <= max_w)
    {
        Some(k) => {
            let kept: String = chars[..k].iter().collect();
            format!("{}…", kept.trim_end())
        }
        None => String::new(),
    }
}

/// Pen position after each prefix of `text`: `widths[k]` is the advance of the first `k` chars,
/// kerning included.
fn prefix_widths(font: &Scaled, text: &str) -> Vec<f32> {
    let mut widths = vec![0.0];
    let mut caret = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(prev) = prev {
            caret += font.kern(prev, id);
        }
        caret += font.h_advance(id);
        widths.push(caret);
        prev = Some(id);
    }
    widths
}

fn text_width(font: &Scaled, text: &str) -> f32 {
    prefix_widths(font, text).last().copied().unwrap_or(0.0)
}

/// Rasterises one line with its pen starting at (`x`, `baseline`), blending each pixel's
/// coverage from background towards [`INK`]; pixels outside `clip` are left alone.
fn draw_line(sheet: &mut RgbImage, font: &Scaled, text: &str, x: f32, baseline: f32, clip: Rect) {
    let mut caret = x;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(prev) = prev {
            caret += font.kern(prev, id);
        }
        let glyph = id.with_scale_and_position(font.scale(), point(caret, baseline));
        caret += font.h_advance(id);
        prev = Some(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue; // spaces have no outline
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i64 + i64::from(gx);
            let py = bounds.min.y as i64 + i64::from(gy);
            if clip.contains(px, py) {
                blend(sheet.get_pixel_mut(px as u32, py as u32), coverage);
            }
        });
    }
}

/// Linear blend towards the ink by the glyph's coverage of the pixel (0 = untouched).
fn blend(pixel: &mut Rgb<u8>, coverage: f32) {
    let a = coverage.clamp(0.0, 1.0);
    for (channel, ink) in pixel.0.iter_mut().zip(INK.0) {
        let mixed = f32::from(*channel) * (1.0 - a) + f32::from(ink) * a;
        *channel = mixed.round() as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell of one flat, light colour (no channel below 128, so never "dark").
    fn flat(w: u32, h: u32, shade: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb([200, 128 + shade / 2, 255 - shade / 2]))
    }

    fn cell(w: u32, h: u32, shade: u8, label: &str) -> SheetCell {
        SheetCell {
            image: flat(w, h, shade),
            label: label.into(),
        }
    }

    fn is_dark(p: &Rgb<u8>) -> bool {
        p.0.iter().all(|&c| c < 100)
    }

    fn pixels_in(sheet: &RgbImage, r: Rect) -> Vec<Rgb<u8>> {
        let mut out = Vec::new();
        for y in r.y..r.y + r.h {
            for x in r.x..r.x + r.w {
                out.push(*sheet.get_pixel(x as u32, y as u32));
            }
        }
        out
    }

    fn dark_count(sheet: &RgbImage, r: Rect) -> usize {
        pixels_in(sheet, r).iter().filter(|p| is_dark(p)).count()
    }

    fn font() -> FontRef<'static> {
        FontRef::try_from_slice(FONT_DATA).unwrap()
    }

    /// The crop of `r` as its own image, to compare strips at different places.
    fn crop(sheet: &RgbImage, r: Rect) -> RgbImage {
        image::imageops::crop_imm(sheet, r.x as u32, r.y as u32, r.w as u32, r.h as u32).to_image()
    }

    #[test]
    fn near_square_is_a1111s_rule_for_1_to_20() {
        for n in 1..=20usize {
            let (cols, rows) = near_square(n);
            // Independent form of A1111's `image_grid`: cols = ceil(sqrt(n)) in floating point
            // (exact for these small n), rows = ceil(n / cols).
            let want_cols = (n as f64).sqrt().ceil() as usize;
            let want_rows = (n as f64 / want_cols as f64).ceil() as usize;
            assert_eq!((cols, rows), (want_cols, want_rows), "n = {n}");
            assert!(cols >= rows && cols * rows >= n, "n = {n}: {cols}x{rows}");
            // As square as possible: one fewer row or column would not hold n.
            assert!(
                cols * (rows - 1) < n && (cols - 1) * (cols - 1) < n,
                "n = {n}"
            );
            assert!(cols - rows <= 1, "n = {n}: {cols}x{rows}");
        }
    }

    #[test]
    fn near_square_examples() {
        assert_eq!(near_square(0), (0, 0));
        assert_eq!(near_square(1), (1, 1));
        assert_eq!(near_square(2), (2, 1));
        assert_eq!(near_square(3), (2, 2));
        assert_eq!(near_square(5), (3, 2));
        assert_eq!(near_square(9), (3, 3));
        assert_eq!(near_square(10), (4, 3));
        assert_eq!(near_square(16), (4, 4));
        assert_eq!(near_square(17), (5, 4));
        // Exact where a float square root would round wrongly.
        let big = (1usize << 26) + 1;
        assert_eq!(near_square(big * big), (big, big));
        assert_eq!(near_square(big * big + 1), (big + 1, big));
    }

    #[test]
    fn sheet_size_matches_the_rendered_sheet() {
        let labels = |n: usize, what: &str| Some((0..n).map(|i| format!("{what} {i}")).collect());
        for (w, h) in [(64, 64), (64, 96), (100, 40), (512, 512)] {
            for (n, cols, rows) in [(1, 1, 1), (4, 2, 2), (5, 3, 2), (3, 1, 3)] {
                let cells: Vec<_> = (0..n).map(|i| cell(w, h, i as u8 * 20, "seed 1")).collect();
                let mut layouts = vec![SheetLayout::new(cols, rows)];
                layouts.push(SheetLayout {
                    col_labels: labels(cols, "cfg"),
                    row_labels: labels(rows, "steps"),
                    title: Some("a lighthouse at dawn".into()),
                    ..SheetLayout::new(cols, rows)
                });
                layouts.push(SheetLayout {
                    col_labels: labels(cols, "cfg"),
                    ..SheetLayout::new(cols, rows)
                });
                layouts.push(SheetLayout {
                    row_labels: labels(rows, "steps"),
                    ..SheetLayout::new(cols, rows)
                });
                layouts.push(SheetLayout {
                    title: Some("title".into()),
                    ..SheetLayout::new(cols, rows)
                });
                let mut sizes = Vec::new();
                for layout in &layouts {
                    let sheet = render_sheet(&cells, layout).unwrap();
                    assert_eq!(sheet.dimensions(), sheet_size(w, h, layout), "{layout:?}");
                    sizes.push(sheet.dimensions());
                }
                let (plain, full) = (sizes[0], sizes[1]);
                // Labels and title only ever add room.
                assert!(full.0 > plain.0 && full.1 > plain.1, "{plain:?} {full:?}");
                assert!(plain.0 >= cols as u32 * w && plain.1 >= rows as u32 * h);
                // Column labels and title add height only; row labels add width only.
                assert_eq!((sizes[2].0, sizes[4].0), (plain.0, plain.0));
                assert!(sizes[2].1 > plain.1 && sizes[4].1 > plain.1);
                assert_eq!(sizes[3].1, plain.1);
                assert!(sizes[3].0 > plain.0);
            }
        }
    }

    #[test]
    fn cells_sit_row_major_and_only_captions_hold_text() {
        let (w, h) = (64, 64);
        let labels = ["seed 721", "seed 722\ncfg 7.5", "seed 723", ""];
        let cells: Vec<_> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| cell(w, h, i as u8 * 60, l))
            .collect();
        let layout = SheetLayout::new(3, 2); // 4 cells, 2 places left empty
        let sheet = render_sheet(&cells, &layout).unwrap();
        let g = Geometry::new(w, h, &layout);
        let mut owned = vec![false; (g.width * g.height) as usize];
        let mut claim = |r: Rect| {
            for y in r.y..r.y + r.h {
                for x in r.x..r.x + r.w {
                    owned[(y * g.width + x) as usize] = true;
                }
            }
        };
        for i in 0..6 {
            let (col, row) = (i % 3, i / 3);
            let (image, caption) = (g.cell_rect(col, row), g.caption_rect(col, row));
            claim(image);
            claim(caption);
            let px = pixels_in(&sheet, image);
            let strip = pixels_in(&sheet, caption);
            if i < cells.len() {
                // Cell i, untouched, at (i % cols, i / cols).
                assert!(
                    px.iter().all(|p| p == cells[i].image.get_pixel(0, 0)),
                    "cell {i}"
                );
            } else {
                assert!(px.iter().all(|p| *p == BACKGROUND), "missing cell {i}");
            }
            let dark = strip.iter().filter(|p| is_dark(p)).count();
            let labelled = i < labels.len() && !labels[i].is_empty();
            if labelled {
                assert!(
                    dark >= 20,
                    "cell {i}: only {dark} dark pixels under '{}'",
                    labels[i]
                );
                // Anti-aliased: edge pixels lie strictly between background and ink.
                let grey = strip
                    .iter()
                    .filter(|p| **p != BACKGROUND && **p != INK && !is_dark(p))
                    .count();
                assert!(grey > 0, "cell {i}: no partial coverage");
            } else {
                assert!(strip.iter().all(|p| *p == BACKGROUND), "cell {i} caption");
            }
        }
        // Everything else (gaps, margins) is plain background.
        for (i, p) in sheet.pixels().enumerate() {
            if !owned[i] {
                assert_eq!(
                    *p,
                    BACKGROUND,
                    "pixel {} {}",
                    i as u64 % g.width,
                    i as u64 / g.width
                );
            }
        }
    }

    #[test]
    fn different_labels_draw_different_strips() {
        let cells = [
            cell(64, 64, 0, "seed 721"),
            cell(64, 64, 0, "seed 722"),
            cell(64, 64, 0, "seed 721"),
        ];
        let layout = SheetLayout::new(3, 1);
        let sheet = render_sheet(&cells, &layout).unwrap();
        let g = Geometry::new(64, 64, &layout);
        let strips: Vec<_> = (0..3).map(|c| crop(&sheet, g.caption_rect(c, 0))).collect();
        assert_ne!(strips[0], strips[1]);
        // The same label draws the same pixels wherever the cell is.
        assert_eq!(strips[0], strips[2]);
    }

    #[test]
    fn two_lines_use_both_halves_of_the_strip_and_one_line_is_centred() {
        let cells = [
            cell(128, 128, 0, "seed 1\ncfg 7"),
            cell(128, 128, 0, "seed 1"),
        ];
        let layout = SheetLayout::new(2, 1);
        let sheet = render_sheet(&cells, &layout).unwrap();
        let g = Geometry::new(128, 128, &layout);
        let dark_rows = |col: usize| {
            let r = g.caption_rect(col, 0);
            (r.y..r.y + r.h)
                .filter(|&y| dark_count(&sheet, Rect { y, h: 1, ..r }) > 0)
                .map(|y| y - r.y)
                .collect::<Vec<_>>()
        };
        let mid = g.caption_h / 2;
        let two = dark_rows(0);
        assert!(
            two.iter().any(|&y| y < mid) && two.iter().any(|&y| y > mid),
            "{two:?}"
        );
        let one = dark_rows(1);
        let centre = (one[0] + one[one.len() - 1]) as f64 / 2.0;
        assert!(
            (centre - mid as f64).abs() <= 2.0,
            "{one:?} in {}",
            g.caption_h
        );
    }

    #[test]
    fn long_labels_wrap_and_ellipsise_within_the_cell() {
        let font = font();
        let scaled = font.as_scaled(PxScale::from(12.0));
        let long = "a lighthouse at dawn, golden hour, oil painting, highly detailed";
        let lines = fit_lines(&scaled, long, 100.0, 2);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines.iter().all(|l| text_width(&scaled, l) <= 100.0),
            "{lines:?}"
        );
        assert!(lines[0].starts_with("a lighthouse"), "{lines:?}");
        assert!(!lines[0].ends_with('…'), "{lines:?}");
        assert!(lines[1].ends_with('…'), "{lines:?}");
        // The words shown are the label's words in order.
        let shown = format!("{} {}", lines[0], lines[1].trim_end_matches('…'));
        assert!(long.starts_with(shown.trim_end_matches(',')), "{shown}");
        // Explicit lines are kept; a word wider than the line is cut with an ellipsis.
        let lines = fit_lines(&scaled, "seed 1\nsupercalifragilistic", 56.0, 2);
        assert_eq!(lines[0], "seed 1");
        assert!(
            lines[1].starts_with("sup") && lines[1].ends_with('…'),
            "{lines:?}"
        );
        assert!(text_width(&scaled, &lines[1]) <= 56.0);
        // Fits: unchanged. Blank lines dropped.
        assert_eq!(fit_lines(&scaled, "a\n\nb\n", 56.0, 2), ["a", "b"]);
        assert_eq!(fit_lines(&scaled, "", 56.0, 2), Vec::<String>::new());
        // Nothing fits: nothing drawn rather than a stray glyph.
        assert_eq!(ellipsise(&scaled, "seed", 1.0, false), "");
    }

    #[test]
    fn axis_labels_and_title_draw_in_their_bands_only() {
        let cells: Vec<_> = (0..4).map(|i| cell(64, 64, i * 50, "")).collect();
        let layout = SheetLayout {
            col_labels: Some(vec![
                "cfg 5".into(),
                "cfg 9 with a long tail of words".into(),
            ]),
            row_labels: Some(vec!["steps 10".into(), "steps 20".into()]),
            title: Some("a lighthouse at dawn".into()),
            ..SheetLayout::new(2, 2)
        };
        let sheet = render_sheet(&cells, &layout).unwrap();
        let g = Geometry::new(64, 64, &layout);
        let bands = [
            g.title_rect(),
            g.col_label_rect(0),
            g.col_label_rect(1),
            g.row_label_rect(0),
            g.row_label_rect(1),
        ];
        for band in bands {
            assert!(dark_count(&sheet, band) >= 20, "{band:?}");
        }
        let total = sheet.pixels().filter(|p| is_dark(p)).count();
        assert_eq!(
            total,
            bands.iter().map(|b| dark_count(&sheet, *b)).sum::<usize>()
        );
        // Bands do not overlap each other or the cells.
        let mut all = bands.to_vec();
        all.extend((0..4).map(|i| g.cell_rect(i % 2, i / 2)));
        all.extend((0..4).map(|i| g.caption_rect(i % 2, i / 2)));
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                let apart =
                    a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn font_scales_with_the_cell() {
        let layout = SheetLayout::new(1, 1);
        assert_eq!(Geometry::new(64, 64, &layout).text_px, 12);
        assert_eq!(Geometry::new(256, 256, &layout).text_px, 16);
        assert_eq!(Geometry::new(512, 512, &layout).text_px, 28);
        assert_eq!(Geometry::new(512, 64, &layout).text_px, 12);
        // A 512-pixel cell holds a caption of ~30 characters on one line.
        let font = font();
        let scaled = font.as_scaled(PxScale::from(28.0));
        let caption = "seed 4294967295, cfg 7.5, 25";
        assert!(text_width(&scaled, caption) < 512.0 - 2.0 * 7.0);
    }

    fn invalid(r: Result<RgbImage>) -> String {
        match r {
            Err(Error::Invalid(msg)) => msg,
            other => panic!("expected Error::Invalid, got {other:?}"),
        }
    }

    #[test]
    fn refuses_what_cannot_make_a_sheet() {
        let msg = invalid(render_sheet(&[], &SheetLayout::new(1, 1)));
        assert!(msg.contains("at least one cell"), "{msg}");

        let mixed = [
            cell(64, 64, 0, "a"),
            cell(64, 64, 0, "b"),
            cell(64, 48, 0, "c"),
        ];
        let msg = invalid(render_sheet(&mixed, &SheetLayout::new(3, 1)));
        assert!(
            msg.contains("cell 2 is 64x48") && msg.contains("cell 0 is 64x64"),
            "{msg}"
        );

        let cells = [cell(8, 8, 0, ""), cell(8, 8, 0, ""), cell(8, 8, 0, "")];
        let msg = invalid(render_sheet(&cells, &SheetLayout::new(2, 1)));
        assert!(
            msg.contains("3 cells do not fit a 2 x 1") && msg.contains("2 x 2"),
            "{msg}"
        );
        let msg = invalid(render_sheet(&cells, &SheetLayout::new(0, 3)));
        assert!(msg.contains("at least 1 column"), "{msg}");

        let layout = SheetLayout {
            col_labels: Some(vec!["x".into()]),
            ..SheetLayout::new(3, 1)
        };
        let msg = invalid(render_sheet(&cells, &layout));
        assert!(
            msg.contains("1 column labels given for a sheet of 3 columns"),
            "{msg}"
        );
        let layout = SheetLayout {
            row_labels: Some(vec![]),
            ..SheetLayout::new(3, 1)
        };
        let msg = invalid(render_sheet(&cells, &layout));
        assert!(
            msg.contains("0 row labels given for a sheet of 1 rows"),
            "{msg}"
        );

        let empty = [SheetCell {
            image: RgbImage::new(0, 4),
            label: String::new(),
        }];
        let msg = invalid(render_sheet(&empty, &SheetLayout::new(1, 1)));
        assert!(msg.contains("0x4"), "{msg}");

        // Too large to draw (and to read back): refused before allocating.
        let msg = invalid(render_sheet(&cells[..1], &SheetLayout::new(3_000_000, 1)));
        assert!(msg.contains("fewer cells per sheet"), "{msg}");
        assert_eq!(
            sheet_size(8, 8, &SheetLayout::new(usize::MAX, usize::MAX)),
            (u32::MAX, u32::MAX)
        );
    }

    /// Not a check: writes a sample sheet to look at (`SEEDLING_SHEET_EXAMPLE=path cargo test
    /// --lib sheet_example -- --ignored`).
    #[test]
    #[ignore]
    fn sheet_example() {
        let path =
            std::env::var("SEEDLING_SHEET_EXAMPLE").unwrap_or("/tmp/sheet_example.png".into());
        let size: u32 = std::env::var("SEEDLING_SHEET_CELL")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(64);
        let cells: Vec<_> = (0..6u32)
            .map(|i| SheetCell {
                image: RgbImage::from_fn(size, size, |x, y| {
                    Rgb([
                        (x * 255 / size) as u8,
                        (y * 255 / size) as u8,
                        (i * 40) as u8,
                    ])
                }),
                label: format!("seed {}\ncfg {}", 721 + i, [3.5, 7.0, 12.0][i as usize % 3]),
            })
            .collect();
        let layout = SheetLayout {
            col_labels: Some(vec![
                "cfg 3.5".into(),
                "cfg 7".into(),
                "cfg 12, a long value".into(),
            ]),
            row_labels: Some(vec!["euler_a".into(), "ddim with eta 0.5".into()]),
            title: Some("a lighthouse at dawn, golden hour, oil painting".into()),
            ..SheetLayout::new(3, 2)
        };
        render_sheet(&cells, &layout).unwrap().save(path).unwrap();
    }
}
