//! Rendering: pure functions of [`App`]'s state into a buffer; nothing here changes the app.
//! Where things go is [`crate::app::layout`], which mouse handling uses too.

mod overlay;
mod pane;
mod status;
#[cfg(test)]
mod tests;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;

use crate::app::layout::layout;
use crate::app::{App, Focus, Overlay};

/// Colours of the house, dropped under NO_COLOR.
pub(crate) struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    /// Keys in the footer and the help: they must stand out even without colour.
    pub fn key(&self) -> Style {
        if self.color {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let layout = layout(area, self);
        let theme = Theme { color: self.color };
        status::render_status(self, &theme, layout.status, buf);
        pane::render_serial(self, &theme, layout.serial, buf);
        for (index, rect) in layout.panes.iter().enumerate() {
            pane::render_chat(self, &theme, index, *rect, buf);
        }
        if let Some(rect) = layout.gauge {
            status::render_gauge(self, &theme, rect, buf);
        }
        if let (Some(rect), Some(hint)) = (layout.hint, &self.hint) {
            buf.set_stringn(
                rect.x + 1,
                rect.y,
                hint,
                usize::from(rect.width.saturating_sub(1)),
                theme.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            );
        }
        status::render_footer(self, &theme, layout.footer, buf);
        match self.overlay() {
            Some(Overlay::Help) => overlay::render_help(self, &theme, area, buf),
            Some(Overlay::ConfirmQuit) => overlay::render_confirm(&theme, area, buf),
            Some(Overlay::ConfirmAddress(ip)) => {
                overlay::render_confirm_address(&theme, ip, area, buf)
            }
            None => {}
        }
    }
}

impl App {
    pub(crate) fn is_focused(&self, focus: Focus) -> bool {
        self.focus() == focus
    }
}
