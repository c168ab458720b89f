//! Stage 3a: SGR (`ESC [ ... m`) parameters read into a [`Style`]; every other attribute is
//! dropped.

use super::style::{Color, Style};

/// Applies the parameters of one SGR sequence to `style`.
pub(super) fn apply(style: &mut Style, params: &vte::Params) {
    let mut params = params.iter();
    while let Some(param) = params.next() {
        match *param {
            [0] => *style = Style::default(),
            [1] => style.bold = true,
            [2] => style.dim = true,
            [3] => style.italic = true,
            // 4:0 is "no underline"; 4:1..4:5 are underline styles (curly, ...).
            [4, 0] => style.underline = false,
            [4, ..] => style.underline = true,
            [7] => style.reverse = true,
            [21] => style.bold = false,
            [22] => {
                style.bold = false;
                style.dim = false;
            }
            [23] => style.italic = false,
            [24] => style.underline = false,
            [27] => style.reverse = false,
            [n @ 30..=37] => style.fg = Some(Color::Indexed(n as u8 - 30)),
            [38, ref sub @ ..] => {
                if let Some(color) = extended_color(sub, &mut params) {
                    style.fg = Some(color);
                }
            }
            [39] => style.fg = None,
            [n @ 40..=47] => style.bg = Some(Color::Indexed(n as u8 - 40)),
            [48, ref sub @ ..] => {
                if let Some(color) = extended_color(sub, &mut params) {
                    style.bg = Some(color);
                }
            }
            [49] => style.bg = None,
            // Underline colour: not kept, but its arguments must not be read as
            // SGR codes of their own (58;5;1 is not bold).
            [58, ref sub @ ..] => {
                extended_color(sub, &mut params);
            }
            [n @ 90..=97] => style.fg = Some(Color::Indexed(n as u8 - 90 + 8)),
            [n @ 100..=107] => style.bg = Some(Color::Indexed(n as u8 - 100 + 8)),
            _ => {}
        }
    }
}

/// Reads the colour of SGR 38/48/58, in the colon form (`sub` holds the rest of the
/// parameter) or the semicolon form (the colour is in the following parameters).
fn extended_color(sub: &[u16], params: &mut vte::ParamsIter<'_>) -> Option<Color> {
    if !sub.is_empty() {
        return match *sub {
            [5, n] => Some(Color::Indexed(u8::try_from(n).ok()?)),
            [2, r, g, b] | [2, _, r, g, b, ..] => rgb(r, g, b),
            _ => None,
        };
    }
    let mut next = || match params.next() {
        Some(&[value]) => Some(value),
        _ => None,
    };
    match next()? {
        5 => Some(Color::Indexed(u8::try_from(next()?).ok()?)),
        2 => {
            let (r, g, b) = (next(), next(), next());
            rgb(r?, g?, b?)
        }
        _ => None,
    }
}

fn rgb(r: u16, g: u16, b: u16) -> Option<Color> {
    Some(Color::Rgb(
        u8::try_from(r).ok()?,
        u8::try_from(g).ok()?,
        u8::try_from(b).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serial::decode::StyledLine;
    use crate::serial::decode::tests::{decode, fg, line};

    #[test]
    fn sgr_attributes_and_their_resets() {
        let run = decode(
            b"\x1b[1ma\x1b[2mb\x1b[3mc\x1b[4md\x1b[7me\
              \x1b[21mf\x1b[22mg\x1b[23mh\x1b[24mi\x1b[27mj\x1b[1;3mk\x1b[0ml\n",
        );
        let bold = Style {
            bold: true,
            ..Style::default()
        };
        let bold_dim = Style { dim: true, ..bold };
        let italic = Style {
            italic: true,
            ..bold_dim
        };
        let underline = Style {
            underline: true,
            ..italic
        };
        let reverse = Style {
            reverse: true,
            ..underline
        };
        let no_bold = Style {
            bold: false,
            ..reverse
        };
        let normal = Style {
            dim: false,
            ..no_bold
        };
        let no_italic = Style {
            italic: false,
            ..normal
        };
        let no_underline = Style {
            underline: false,
            ..no_italic
        };
        let bold_italic = Style {
            bold: true,
            italic: true,
            ..Style::default()
        };
        assert_eq!(
            run.lines,
            [line(&[
                ("a", bold),
                ("b", bold_dim),
                ("c", italic),
                ("d", underline),
                ("e", reverse),
                ("f", no_bold),
                ("g", normal),
                ("h", no_italic),
                ("i", no_underline),
                ("j", Style::default()),
                ("k", bold_italic),
                ("l", Style::default()),
            ])]
        );
    }

    #[test]
    fn sgr_basic_and_bright_colours() {
        let run = decode(b"\x1b[31;42ma\x1b[97;104mb\x1b[39mc\x1b[49md\x1b[30;47me\x1b[90;100mf\n");
        let both = |f, b| Style {
            fg: f,
            bg: b,
            ..Style::default()
        };
        use Color::Indexed;
        assert_eq!(
            run.lines,
            [line(&[
                ("a", both(Some(Indexed(1)), Some(Indexed(2)))),
                ("b", both(Some(Indexed(15)), Some(Indexed(12)))),
                ("c", both(None, Some(Indexed(12)))),
                ("d", Style::default()),
                ("e", both(Some(Indexed(0)), Some(Indexed(7)))),
                ("f", both(Some(Indexed(8)), Some(Indexed(8)))),
            ])]
        );
    }

    #[test]
    fn sgr_256_and_truecolour_in_semicolon_and_colon_forms() {
        let run = decode(
            b"\x1b[38;5;208ma\x1b[38;2;1;2;3mb\x1b[38:5:9mc\x1b[38:2::4:5:6md\
              \x1b[38:2:7:8:9me\x1b[0;48;5;17mf\x1b[48:2::10:11:12mg\n",
        );
        let bg = |color| Style {
            bg: Some(color),
            ..Style::default()
        };
        assert_eq!(
            run.lines,
            [line(&[
                ("a", fg(Color::Indexed(208))),
                ("b", fg(Color::Rgb(1, 2, 3))),
                ("c", fg(Color::Indexed(9))),
                ("d", fg(Color::Rgb(4, 5, 6))),
                ("e", fg(Color::Rgb(7, 8, 9))),
                ("f", bg(Color::Indexed(17))),
                ("g", bg(Color::Rgb(10, 11, 12))),
            ])]
        );
    }

    #[test]
    fn extended_colour_arguments_are_not_read_as_codes() {
        // 58;5;1 would otherwise turn bold on; 38;5;300 is out of range.
        let run = decode(b"\x1b[58;5;1ma\x1b[38;5;300;4mb\x1b[58:2::1:2:3mc\n");
        let underline = Style {
            underline: true,
            ..Style::default()
        };
        assert_eq!(
            run.lines,
            [line(&[("a", Style::default()), ("bc", underline)])]
        );
    }

    #[test]
    fn styles_persist_across_lines_until_reset() {
        let red = fg(Color::Indexed(1));
        let run = decode(b"\x1b[31mone\ntwo\x1b[m\nthree\n");
        assert_eq!(
            run.lines,
            [
                line(&[("one", red)]),
                line(&[("two", red)]),
                line(&[("three", Style::default())]),
            ]
        );
    }

    #[test]
    fn m_with_a_private_marker_is_not_sgr() {
        let run = decode(b"\x1b[>4;1mx\x1b[?1mx\n");
        assert_eq!(run.lines, [line(&[("xx", Style::default())])]);
    }

    #[test]
    fn esp_idf_log_line_is_one_coloured_span() {
        let run = decode(b"\x1b[0;32mI (312) espchat: got ip: 192.168.1.42\x1b[0m\r\n");
        assert_eq!(
            run.lines,
            [line(&[(
                "I (312) espchat: got ip: 192.168.1.42",
                fg(Color::Indexed(2))
            )])]
        );
    }

    #[test]
    fn same_style_text_is_one_span_and_no_span_is_empty() {
        let run = decode(b"a\x1b[31m\x1b[39mb\x1b[1m\x1b[0mc\x1b[32m\x1b[0m\n\x1b[31m\x1b[0m\n");
        assert_eq!(
            run.lines,
            [line(&[("abc", Style::default())]), StyledLine::default()]
        );
    }
}
