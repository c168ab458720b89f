//! Where everything goes on a screen of a given size: one pure function of the app's state,
//! used by `ui` to draw and by the app to find the pane under a click and a page's height, so
//! that a click lands on the pane that was drawn there.

use ratatui::layout::{Constraint, Layout, Rect};

use super::App;

/// Where everything goes on a screen of a given size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenLayout {
    pub status: Rect,
    pub serial: Rect,
    /// One per chat pane, in the app's pane order.
    pub panes: Vec<Rect>,
    pub gauge: Option<Rect>,
    pub hint: Option<Rect>,
    pub footer: Rect,
}

/// Narrower than this a chat line is mostly wrapping.
const MIN_PANE_WIDTH: u16 = 28;
/// A border, the input line and at least two lines of chat.
const MIN_PANE_HEIGHT: u16 = 5;

pub fn layout(area: Rect, app: &App) -> ScreenLayout {
    let flashing = app.flash_progress().is_some();
    let hint = app.hint.is_some();
    let [status, main, gauge, hint_row, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(u16::from(flashing)),
        Constraint::Length(u16::from(hint)),
        Constraint::Length(1),
    ])
    .areas(area);
    let n = app.panes().len();
    let (serial, chats) = if n == 0 {
        (main, Rect::default())
    } else {
        // The console is where the board's IP and errors show; the chats are the work. A third
        // of the height keeps about ten console lines on a 40-line terminal.
        let serial_height = (main.height / 3).max(MIN_PANE_HEIGHT).min(main.height);
        let [serial, chats] =
            Layout::vertical([Constraint::Length(serial_height), Constraint::Fill(1)]).areas(main);
        (serial, chats)
    };
    ScreenLayout {
        status,
        serial,
        panes: grid(chats, n),
        gauge: flashing.then_some(gauge),
        hint: hint.then_some(hint_row),
        footer,
    }
}

/// Tiles `n` panes: the column count whose cells come closest to a comfortable reading shape
/// (about four times wider than tall, in cells), without going below the minimum size where
/// that can be avoided. A short last row stretches its panes to the full width.
pub fn grid(area: Rect, n: usize) -> Vec<Rect> {
    if n == 0 {
        return Vec::new();
    }
    let score = |cols: usize| {
        let rows = n.div_ceil(cols);
        let w = f64::from(area.width) / cols as f64;
        let h = f64::from(area.height) / rows as f64;
        let cramped = (w < f64::from(MIN_PANE_WIDTH)) as u8 as f64 * 100.0
            + (h < f64::from(MIN_PANE_HEIGHT)) as u8 as f64 * 100.0;
        let empty = (rows * cols - n) as f64 * 0.5;
        cramped + empty + ((w / h.max(1.0)) / 4.0).ln().abs()
    };
    let cols = (1..=n)
        .min_by(|a, b| score(*a).total_cmp(&score(*b)))
        .unwrap_or(1);
    let rows = n.div_ceil(cols);
    let row_rects = Layout::vertical(vec![Constraint::Fill(1); rows]).split(area);
    let mut rects = Vec::with_capacity(n);
    for (r, row) in row_rects.iter().enumerate() {
        let in_row = (n - r * cols).min(cols);
        rects.extend(
            Layout::horizontal(vec![Constraint::Fill(1); in_row])
                .split(*row)
                .iter(),
        );
    }
    rects
}
