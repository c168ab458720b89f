//! The serial console and the chat panes: a bordered scrollback, wrapped, newest at the bottom.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};
use unicode_width::UnicodeWidthChar;

use super::Theme;
use crate::app::keys::Action;
use crate::app::scrollback::Scrollback;
use crate::app::{App, Connection, Focus};
use crate::serial::StyledLine;
use crate::serial::decode;
use crate::session::LISTEN_PANE;

fn frame<'a>(app: &App, theme: &Theme, focus: Focus, title: String) -> Block<'a> {
    let focused = app.is_focused(focus);
    let (set, style, title_style) = if focused {
        (border::THICK, theme.fg(Color::Cyan), theme.accent())
    } else {
        (border::PLAIN, theme.dim(), Style::new())
    };
    Block::new()
        .borders(Borders::ALL)
        .border_set(set)
        .border_style(style)
        .title(Line::from(Span::styled(format!(" {title} "), title_style)))
}

/// "↓ 42 newer lines (PgDn)" when reading back, so nobody wonders why the board went quiet.
fn scrolled_note(app: &App, sb: &Scrollback, theme: &Theme) -> Option<Line<'static>> {
    (sb.offset() > 0).then(|| {
        let key = app
            .keys
            .chord_for(&Action::ScrollDown)
            .map(|chord| format!(" ({})", chord.short()))
            .unwrap_or_default();
        Line::from(Span::styled(
            format!(" ↓ {} newer lines{key} ", sb.offset()),
            theme.fg(Color::Yellow),
        ))
        .right_aligned()
    })
}

pub(super) fn render_serial(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let board = app.board();
    let mut title = String::from("serial");
    if let Some(port) = &board.port {
        title.push(' ');
        title.push_str(port);
    }
    if let Some(baud) = board.baud {
        title.push_str(&format!(" {baud}"));
    }
    if app.hex {
        title.push_str(" · hex");
    }
    if app.prefix
        && let Some(prefix) = app.keys.prefix()
    {
        title.push_str(&format!(" · {prefix} …"));
    }
    let mut block = frame(app, theme, Focus::Serial, title);
    if let Some(note) = scrolled_note(app, &app.serial, theme) {
        block = block.title_bottom(note);
    }
    let inner = block.inner(area);
    block.render(area, buf);
    render_scrollback(app, theme, Focus::Serial, &app.serial, inner, buf);
}

pub(super) fn render_chat(app: &App, theme: &Theme, index: usize, area: Rect, buf: &mut Buffer) {
    let Some(pane) = app.panes().get(index) else {
        return;
    };
    if area.is_empty() {
        return;
    }
    let focus = Focus::Chat(index);
    let name = match pane.id {
        LISTEN_PANE => "listen".to_owned(),
        id => format!("chat {id}"),
    };
    let mut title = format!("{name} — {}", pane.connection_text(app.now));
    // Narrow panes keep the state and drop the details (the address is on the status line).
    if title.chars().count() + 4 > usize::from(area.width) {
        let state = match &pane.connection {
            Connection::Connected(_) => "connected".to_string(),
            Connection::Connecting(_) => "connecting".into(),
            Connection::Disconnected(_) => "disconnected".into(),
            Connection::Waiting => "waiting".into(),
            _ => pane.connection_text(app.now),
        };
        title = format!("{name} — {state}");
    }
    let mut block = frame(app, theme, focus, title);
    if let Some(note) = scrolled_note(app, &pane.scrollback, theme) {
        block = block.title_bottom(note);
    }
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }
    let history = Rect {
        height: inner.height - 1,
        ..inner
    };
    render_scrollback(app, theme, focus, &pane.scrollback, history, buf);
    let input = Rect {
        y: inner.bottom() - 1,
        height: 1,
        ..inner
    };
    render_input(
        pane.input.text(),
        pane.input.cursor(),
        app.is_focused(focus),
        theme,
        input,
        buf,
    );
}

/// `› text` with the cursor as a reversed cell; long lines scroll to keep the cursor in view.
fn render_input(
    text: &str,
    cursor: usize,
    focused: bool,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let prompt_style = if focused { theme.accent() } else { theme.dim() };
    buf.set_string(area.x, area.y, "› ", prompt_style);
    let width = usize::from(area.width.saturating_sub(2));
    if width == 0 {
        return;
    }
    let chars: Vec<char> = text.chars().collect();
    let start = cursor.saturating_sub(width - 1);
    let mut x = area.x + 2;
    for (i, c) in chars.iter().enumerate().skip(start) {
        // A pasted line break stays in the line (each line is sent as one): shown as ⏎.
        let shown = if *c == '\n' { '⏎' } else { *c };
        // Every character takes a cell at least, so that the cursor can sit on it.
        let w = shown.width().unwrap_or(0).max(1) as u16;
        if x + w > area.right() {
            break;
        }
        let style = if focused && i == cursor {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        buf[(x, area.y)].set_char(shown).set_style(style);
        x += w;
    }
    if focused && cursor >= chars.len() && x < area.right() {
        buf[(x, area.y)]
            .set_char(' ')
            .set_style(Style::new().add_modifier(Modifier::REVERSED));
    }
}

/// One screen row of a wrapped line: runs of text in one style.
type Row = Vec<(String, Style)>;

/// Renders the visible window only: walks back from the newest visible line until the area is
/// full, so the cost follows the screen size, not the scrollback's.
fn render_scrollback(
    app: &App,
    theme: &Theme,
    focus: Focus,
    sb: &Scrollback,
    area: Rect,
    buf: &mut Buffer,
) {
    if area.is_empty() {
        return;
    }
    let height = usize::from(area.height);
    let width = usize::from(area.width);
    let search = app
        .search
        .as_ref()
        .filter(|s| s.focus == focus && !s.query.is_empty());
    let query = search.map(|s| s.query.text().to_ascii_lowercase());
    let current = search.and_then(|s| s.current);

    let mut rows: Vec<Row> = Vec::with_capacity(height);
    let mut push_line = |line: &StyledLine, at: Option<Option<Duration>>, is_current: bool| {
        let wrapped = wrap(line, at, query.as_deref(), is_current, theme, width);
        // Rows are collected newest first and reversed at the end.
        rows.extend(wrapped.into_iter().rev());
        rows.len() >= height
    };
    let stamp = |at: Option<Duration>| app.timestamps.then_some(at);
    let mut full = false;
    if sb.offset() == 0
        && let Some(partial) = sb.partial()
    {
        full = push_line(partial, stamp(None), false);
    }
    let newest = sb.len().saturating_sub(sb.offset());
    let mut index = newest;
    while !full && index > 0 {
        index -= 1;
        let Some(entry) = sb.get(index) else { break };
        let is_current = current == Some(sb.seq(index));
        full = push_line(&entry.line, stamp(entry.at), is_current);
    }
    rows.truncate(height);
    for (y, row) in rows.iter().rev().enumerate() {
        let mut x = area.x;
        for (text, style) in row {
            let (next, _) = buf.set_stringn(
                x,
                area.y + y as u16,
                text,
                usize::from(area.right() - x),
                *style,
            );
            x = next;
        }
    }
}

/// Splits a line into rows of `width` cells, with an optional timestamp column and search
/// matches highlighted.
fn wrap(
    line: &StyledLine,
    at: Option<Option<Duration>>,
    query: Option<&str>,
    is_current: bool,
    theme: &Theme,
    width: usize,
) -> Vec<Row> {
    let mut cells: Vec<(char, Style)> = Vec::with_capacity(line.len() + 12);
    if let Some(at) = at {
        let stamp = match at {
            Some(at) => format!("{:>9.3} ", at.as_secs_f64()),
            None => " ".repeat(10),
        };
        cells.extend(stamp.chars().map(|c| (c, theme.dim())));
    }
    let text_start = cells.len();
    for span in &line.spans {
        let style = convert(&span.style, theme.color);
        cells.extend(span.text.chars().map(|c| (c, style)));
    }
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        highlight(&mut cells[text_start..], query, is_current, theme);
    }

    let mut rows = Vec::new();
    let mut row: Row = Vec::new();
    let mut used = 0;
    for (c, style) in cells {
        let w = c.width().unwrap_or(0);
        if used + w > width && used > 0 {
            rows.push(std::mem::take(&mut row));
            used = 0;
        }
        used += w;
        match row.last_mut() {
            Some((text, s)) if *s == style => text.push(c),
            _ => row.push((c.to_string(), style)),
        }
    }
    rows.push(row);
    rows
}

fn highlight(cells: &mut [(char, Style)], query: &str, is_current: bool, theme: &Theme) {
    let query: Vec<char> = query.chars().collect();
    let style = match (theme.color, is_current) {
        (true, true) => Style::new().fg(Color::Black).bg(Color::LightYellow),
        (true, false) => Style::new().fg(Color::Black).bg(Color::Yellow),
        (false, true) => Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        (false, false) => Style::new().add_modifier(Modifier::REVERSED),
    };
    let mut i = 0;
    while i + query.len() <= cells.len() {
        let hit = cells[i..i + query.len()]
            .iter()
            .zip(&query)
            .all(|((c, _), q)| c.to_ascii_lowercase() == *q);
        if hit {
            for cell in &mut cells[i..i + query.len()] {
                cell.1 = style;
            }
            i += query.len();
        } else {
            i += 1;
        }
    }
}

/// The decoder's SGR style as a ratatui style; colours only when allowed.
pub(crate) fn convert(style: &decode::Style, color: bool) -> Style {
    let mut out = Style::new();
    if color {
        let map = |c: decode::Color| match c {
            decode::Color::Indexed(i) => Color::Indexed(i),
            decode::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
        };
        if let Some(fg) = style.fg {
            out = out.fg(map(fg));
        }
        if let Some(bg) = style.bg {
            out = out.bg(map(bg));
        }
    }
    let flags = [
        (style.bold, Modifier::BOLD),
        (style.dim, Modifier::DIM),
        (style.italic, Modifier::ITALIC),
        (style.underline, Modifier::UNDERLINED),
        (style.reverse, Modifier::REVERSED),
    ];
    for (on, modifier) in flags {
        if on {
            out = out.add_modifier(modifier);
        }
    }
    out
}
