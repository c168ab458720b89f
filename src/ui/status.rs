//! The one-line bars: the status line on top, the flash gauge and the key hints at the bottom.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::Theme;
use crate::app::keys::Scope;
use crate::app::{App, Connection, Focus};

const SEPARATOR: &str = " │ ";

pub(super) fn render_status(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let bar = if theme.color {
        Style::new().bg(Color::Indexed(236)).fg(Color::White)
    } else {
        Style::new()
    };
    buf.set_style(area, bar);
    let board = app.board();
    let mut spans = vec![Span::styled(" espchat", theme.accent())];
    let part = |spans: &mut Vec<Span<'static>>, text: String, style: Style| {
        spans.push(Span::styled(SEPARATOR, theme.dim()));
        spans.push(Span::styled(text, style));
    };
    match (&board.port, &board.lost) {
        (Some(port), Some(_)) => part(
            &mut spans,
            format!("{port} lost"),
            theme.fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        (Some(port), None) => part(&mut spans, port.clone(), Style::new()),
        (None, _) => part(&mut spans, "no board".into(), theme.dim()),
    }
    if let Some(chip) = &board.chip {
        part(
            &mut spans,
            chip.clone(),
            Style::new().add_modifier(Modifier::BOLD),
        );
    }
    let address = match (board.address.ip, board.address.port) {
        (Some(ip), Some(port)) => format!("{ip}:{port}"),
        (Some(ip), None) => ip.to_string(),
        (None, _) => "IP: waiting".into(),
    };
    let address_style = if board.address.ip.is_some() {
        theme.fg(Color::Green).add_modifier(Modifier::BOLD)
    } else {
        theme.dim()
    };
    part(&mut spans, address, address_style);
    // Lit must be unmistakable without colour too: reversed and in capitals.
    let (led, led_style) = match board.led {
        Some(true) => (
            " LED ● ON ".to_string(),
            if theme.color {
                Style::new()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
            },
        ),
        Some(false) => ("LED ○ off".into(), theme.dim()),
        None => ("LED ?".into(), theme.dim()),
    };
    part(&mut spans, led, led_style);

    let used: usize = spans.iter().map(Span::width).sum();
    let room = usize::from(area.width).saturating_sub(used + SEPARATOR.len());
    let long = chats(app, false);
    let text = if long.chars().count() <= room {
        long
    } else {
        chats(app, true)
    };
    if !app.panes().is_empty() {
        part(&mut spans, text, Style::new());
    }
    Line::from(spans).render(area, buf);
}

/// Each chat pane's state: in words when there is room, else one symbol each.
fn chats(app: &App, short: bool) -> String {
    let parts: Vec<String> = app
        .panes()
        .iter()
        .map(|pane| {
            if let Connection::Listening(_) = pane.connection {
                return if short {
                    "L".to_owned()
                } else {
                    "listen".to_owned()
                };
            }
            if short {
                let symbol = match &pane.connection {
                    Connection::Connected(_) => "●".to_string(),
                    Connection::Connecting(_) | Connection::Waiting => "…".into(),
                    Connection::Reconnecting { .. } => "↻".into(),
                    Connection::Disconnected(_) | Connection::Closed => "✗".into(),
                    Connection::Listening(_) => "L".into(),
                };
                format!("{}{symbol}", pane.id)
            } else {
                let state = match &pane.connection {
                    Connection::Connected(_) => "connected".to_string(),
                    Connection::Waiting => "waiting".into(),
                    Connection::Connecting(_) => "connecting".into(),
                    Connection::Disconnected(_) => "disconnected".into(),
                    Connection::Closed => "closed".into(),
                    Connection::Reconnecting { .. } | Connection::Listening(_) => {
                        pane.connection_text(app.now)
                    }
                };
                format!("{} {state}", pane.id)
            }
        })
        .collect();
    let joined = parts.join(if short { " " } else { " · " });
    format!("chat {joined}")
}

pub(super) fn render_gauge(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let Some(flash) = app.flash_progress() else {
        return;
    };
    let label = match flash.address {
        Some(address) => format!(" flash {} {address:#x} ", flash.phase),
        None => format!(" flash {} ", flash.phase),
    };
    let mut stats = format!(" {:>3}%", flash.percent());
    if flash.total > 0 {
        stats.push_str(&format!(
            "  {} / {}",
            bytes(flash.done as f64),
            bytes(flash.total as f64)
        ));
    }
    if let Some(rate) = flash.rate() {
        stats.push_str(&format!("  {}/s", bytes(rate)));
    }
    if let Some(eta) = flash.eta() {
        stats.push_str(&format!("  ETA {}", duration(eta)));
    }
    stats.push(' ');
    let label_style = theme.accent();
    let (x, _) = buf.set_stringn(area.x, area.y, &label, usize::from(area.width), label_style);
    let stats_width = stats.chars().count() as u16;
    let bar_width = area.right().saturating_sub(x + stats_width);
    // Block characters rather than colours, so the bar shows under NO_COLOR and in snapshots.
    let filled = (u64::from(bar_width) * flash.percent() / 100) as u16;
    for i in 0..bar_width {
        let (symbol, style) = if i < filled {
            ("█", theme.fg(Color::Cyan))
        } else {
            ("░", theme.dim())
        };
        buf[(x + i, area.y)].set_symbol(symbol).set_style(style);
    }
    buf.set_stringn(
        x + bar_width,
        area.y,
        &stats,
        usize::from(stats_width),
        Style::new(),
    );
}

fn bytes(n: f64) -> String {
    if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n:.0} B")
    }
}

fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64().ceil() as u64;
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

pub(super) fn render_footer(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let mut spans: Vec<Span> = vec![Span::raw(" ")];
    let width = usize::from(area.width);
    // A hint is shown whole or not at all: "F7 tim" helps nobody.
    let key = |spans: &mut Vec<Span<'static>>, key: String, hint: &str| {
        let used: usize = spans.iter().map(Span::width).sum();
        let key = Span::styled(format!(" {key} "), theme.key());
        let hint = Span::raw(format!(" {hint}  "));
        if used + key.width() + hint.width() - 2 <= width {
            spans.push(key);
            spans.push(hint);
        }
    };
    if let Some(search) = &app.search {
        let scope = if search.editing {
            spans.push(Span::styled("search: ", theme.accent()));
            spans.push(Span::raw(format!("{}▏", search.query.text())));
            spans.push(Span::styled(
                format!("  {} matches  ", search.matches),
                theme.dim(),
            ));
            Scope::SearchQuery
        } else {
            spans.push(Span::styled(
                format!("“{}”: {} matches  ", search.query.text(), search.matches),
                theme.accent(),
            ));
            Scope::SearchMatches
        };
        for binding in app.keys.hints(scope) {
            key(&mut spans, binding.chord.short(), binding.hint);
        }
    } else if app.prefix {
        if let Some(prefix) = app.keys.prefix() {
            spans.push(Span::styled(format!("{prefix} then: "), theme.accent()));
        }
        for binding in app.keys.help(Scope::Prefix) {
            key(&mut spans, binding.chord.to_string(), binding.description);
        }
    } else {
        let scope = match app.focus() {
            Focus::Serial => Scope::Serial,
            Focus::Chat(_) => Scope::Chat,
        };
        let prefix_keys = (scope == Scope::Serial)
            .then(|| app.keys.hints(Scope::Prefix))
            .into_iter()
            .flatten();
        let prefix = app
            .keys
            .prefix()
            .map(|chord| chord.short())
            .unwrap_or_default();
        for binding in app.keys.hints(scope) {
            key(&mut spans, binding.chord.short(), binding.hint);
        }
        for binding in prefix_keys {
            key(
                &mut spans,
                format!("{prefix} {}", binding.chord.short()),
                binding.hint,
            );
        }
        for binding in app.keys.hints(Scope::Global) {
            key(&mut spans, binding.chord.short(), binding.hint);
        }
    }
    Line::from(spans).render(area, buf);
}
