//! The benchmarks' result tables: a header, a rule, rows of cells, and the formatting of the
//! figures that go in them. A bench builds its rows; how they are laid out is decided here.

use std::fmt;
use std::ops::RangeBounds;

/// Which side of its column a cell keeps to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with one header line. Each column is as wide as its header or widest cell; the
/// first column is left-aligned (it names the row), the others right-aligned (figures),
/// unless [`Table::align`] says otherwise.
pub struct Table {
    headers: Vec<String>,
    aligns: Vec<Align>,
    lines: Vec<Line>,
    notes: Vec<String>,
}

enum Line {
    /// Cells from the first column on; missing ones are blank. A remark follows the cells,
    /// in place of the figures a row does not have, and does not widen any column.
    Cells {
        cells: Vec<String>,
        remark: Option<String>,
    },
    /// A blank line between groups of rows.
    Gap,
}

/// Spaces between two columns.
const GAP: usize = 2;

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        let headers: Vec<String> = headers.into_iter().map(Into::into).collect();
        let aligns = (0..headers.len())
            .map(|column| {
                if column == 0 {
                    Align::Left
                } else {
                    Align::Right
                }
            })
            .collect();
        Table {
            headers,
            aligns,
            lines: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Aligns the `columns` (indices) to `align`.
    pub fn align(mut self, columns: impl RangeBounds<usize>, align: Align) -> Table {
        for (column, slot) in self.aligns.iter_mut().enumerate() {
            if columns.contains(&column) {
                *slot = align;
            }
        }
        self
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.push(cells, None);
    }

    /// A row whose first cells are followed by `remark` instead of the remaining figures
    /// (`skipped: ...`).
    pub fn row_with_remark<S: Into<String>>(
        &mut self,
        cells: impl IntoIterator<Item = S>,
        remark: impl Into<String>,
    ) {
        self.push(cells, Some(remark.into()));
    }

    fn push<S: Into<String>>(
        &mut self,
        cells: impl IntoIterator<Item = S>,
        remark: Option<String>,
    ) {
        let cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        assert!(
            cells.len() <= self.headers.len(),
            "a row of {} cells in a table of {} columns",
            cells.len(),
            self.headers.len()
        );
        self.lines.push(Line::Cells { cells, remark });
    }

    /// A blank line, to set the rows that follow apart from those before.
    pub fn gap(&mut self) {
        self.lines.push(Line::Gap);
    }

    /// A line printed right under the rows (what a ratio row means, say).
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Prints a blank line, then the table.
    pub fn print(&self) {
        println!();
        print!("{self}");
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|header| width(header)).collect();
        for line in &self.lines {
            if let Line::Cells { cells, .. } = line {
                for (slot, cell) in widths.iter_mut().zip(cells) {
                    *slot = (*slot).max(width(cell));
                }
            }
        }
        widths
    }

    fn write_cells(
        &self,
        out: &mut fmt::Formatter<'_>,
        widths: &[usize],
        cells: &[String],
        remark: Option<&str>,
    ) -> fmt::Result {
        let mut line = String::new();
        for (column, (cell, &column_width)) in cells.iter().zip(widths).enumerate() {
            if column > 0 {
                line.push_str(&" ".repeat(GAP));
            }
            let pad = " ".repeat(column_width.saturating_sub(width(cell)));
            match self.aligns[column] {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
        }
        if let Some(remark) = remark {
            line.push_str(&" ".repeat(GAP));
            line.push_str(remark);
        }
        writeln!(out, "{}", line.trim_end())
    }
}

impl fmt::Display for Table {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths = self.widths();
        self.write_cells(out, &widths, &self.headers, None)?;
        let rule = widths.iter().sum::<usize>() + GAP * widths.len().saturating_sub(1);
        writeln!(out, "{}", "-".repeat(rule))?;
        for line in &self.lines {
            match line {
                Line::Cells { cells, remark } => {
                    self.write_cells(out, &widths, cells, remark.as_deref())?;
                }
                Line::Gap => writeln!(out)?,
            }
        }
        for note in &self.notes {
            writeln!(out, "{note}")?;
        }
        Ok(())
    }
}

/// Columns are counted in characters, not bytes.
fn width(text: &str) -> usize {
    text.chars().count()
}

// ---------------------------------------------------------------------------------------------
// Figures

pub fn fmt_latency(ns: Option<u64>) -> String {
    match ns {
        None => "-".to_owned(),
        Some(ns) if ns < 1_000_000 => format!("{:.1} us", ns as f64 / 1e3),
        Some(ns) if ns < 1_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        Some(ns) => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// `a / b` as `1.23x`, or `-` without both or with `b` not above 0.
pub fn fmt_ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_owned(),
    }
}

/// KiB as `12.3 MiB`.
pub fn fmt_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Whether a goal was reached, in the words the reports use.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
