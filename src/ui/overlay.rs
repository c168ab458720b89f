//! Pop-ups over the screen: the help (generated from the key table) and the quit confirmation.

use std::net::Ipv4Addr;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use super::Theme;
use crate::app::App;
use crate::app::keys::{KeyTable, Scope};

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    rect
}

fn popup<'a>(theme: &Theme, title: &'a str, bottom: &'a str) -> Block<'a> {
    Block::new()
        .borders(Borders::ALL)
        .border_set(border::DOUBLE)
        .border_style(theme.fg(Color::Cyan))
        .title(Line::from(Span::styled(title, theme.accent())))
        .title_bottom(Line::from(Span::styled(bottom, theme.dim())).right_aligned())
}

/// Key column width in the help: the longest chord ("Shift-Tab") plus a gap.
const KEY_WIDTH: usize = 11;

fn section(
    table: &KeyTable,
    theme: &Theme,
    title: &str,
    scope: Scope,
    indent: &str,
) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(
        title.to_string(),
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
    ))];
    for binding in table.help(scope) {
        let key = format!("{indent}{}", binding.chord);
        lines.push(Line::from(vec![
            Span::styled(format!("{key:<KEY_WIDTH$}"), theme.fg(Color::Yellow)),
            Span::raw(binding.description),
        ]));
    }
    lines
}

pub(super) fn render_help(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let table = &app.keys;
    let mut left = section(table, theme, "Everywhere", Scope::Global, "");
    left.push(Line::default());
    left.extend(section(table, theme, "Chat panes", Scope::Chat, ""));
    for (key, what) in [("Enter", "send the line"), ("Up/Down", "line history")] {
        left.push(Line::from(vec![
            Span::styled(format!("{key:<KEY_WIDTH$}"), theme.fg(Color::Yellow)),
            Span::raw(what),
        ]));
    }
    let mut right = section(table, theme, "Serial console", Scope::Serial, "");
    right.extend(
        section(table, theme, "", Scope::Prefix, "  ")
            .into_iter()
            .skip(1),
    );
    right.push(Line::default());
    let mut notes = vec![
        "Every other key goes to the".to_string(),
        "board: Ctrl-C interrupts it.".into(),
    ];
    if let Some(prefix) = table.prefix() {
        notes.push(format!("{prefix} {prefix} sends {prefix}."));
    }
    for note in notes {
        right.push(Line::from(Span::styled(note, theme.dim())));
    }

    let column = 38u16;
    let two_columns = area.width >= column * 2 + 4;
    let (width, height) = if two_columns {
        (column * 2 + 3, left.len().max(right.len()) as u16 + 2)
    } else {
        (column + 2, (left.len() + right.len() + 1) as u16 + 2)
    };
    let rect = centered(area, width, height);
    Clear.render(rect, buf);
    let block = popup(theme, " espchat keys ", " any key closes ");
    let inner = block.inner(rect);
    block.render(rect, buf);
    let inner = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(1),
        ..inner
    };
    if two_columns {
        let [l, r] =
            Layout::horizontal([Constraint::Length(column), Constraint::Fill(1)]).areas(inner);
        Paragraph::new(left).render(l, buf);
        Paragraph::new(right).render(r, buf);
    } else {
        left.push(Line::default());
        left.extend(right);
        Paragraph::new(left).render(inner, buf);
    }
}

pub(super) fn render_confirm(theme: &Theme, area: Rect, buf: &mut Buffer) {
    let question = Question {
        title: " quit? ",
        width: 42,
        lines: vec!["flash in progress: quit anyway?".into()],
        yes: "quit",
        no: "keep flashing",
    };
    question.render(theme, area, buf);
}

/// "The console shows a public address: connect?" Any device can print any address, so the
/// panes do not go to a public one on the console's word.
pub(super) fn render_confirm_address(theme: &Theme, ip: Ipv4Addr, area: Rect, buf: &mut Buffer) {
    let question = Question {
        title: " connect? ",
        width: 60,
        lines: vec![
            format!("The console shows a public address, {ip}."),
            "Is it your board's? Connect the chat panes to it?".into(),
        ],
        yes: "connect",
        no: "wait for a local address",
    };
    question.render(theme, area, buf);
}

/// A yes/no popup: the question (its first line bold), then the two answers.
struct Question {
    title: &'static str,
    width: u16,
    lines: Vec<String>,
    yes: &'static str,
    no: &'static str,
}

impl Question {
    fn render(self, theme: &Theme, area: Rect, buf: &mut Buffer) {
        let height = u16::try_from(self.lines.len())
            .unwrap_or(u16::MAX)
            .saturating_add(4);
        let rect = centered(area, self.width, height);
        Clear.render(rect, buf);
        let block = popup(theme, self.title, "");
        let inner = block.inner(rect);
        block.render(rect, buf);
        let mut text: Vec<Line> = self
            .lines
            .into_iter()
            .enumerate()
            .map(|(index, line)| {
                let style = if index == 0 {
                    Style::new().add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                };
                Line::from(Span::styled(line, style)).centered()
            })
            .collect();
        text.push(
            Line::from(vec![
                Span::styled(" y ", theme.key()),
                Span::raw(format!(" {}   ", self.yes)),
                Span::styled(" n ", theme.key()),
                Span::raw(format!(" {}", self.no)),
            ])
            .centered(),
        );
        Paragraph::new(text).render(
            Rect {
                y: inner.y + u16::from(inner.height > 2),
                ..inner
            },
            buf,
        );
    }
}
