//! Colour themes: TOML files in `themes/`, built in so the binary needs no files, or any file
//! given by path. Every key must be present and known, and a bad value is reported with its key,
//! because a theme that silently falls back is a theme nobody notices is broken.

use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use thiserror::Error;

use crate::control::ServerStatus;

/// The themes shipped in `themes/`, by name.
pub const BUILT_IN: [(&str, &str); 5] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("monochrome", include_str!("../../themes/monochrome.toml")),
    (
        "nord-truecolor",
        include_str!("../../themes/nord-truecolor.toml"),
    ),
];

#[derive(Debug, Error)]
pub enum ThemeError {
    #[error("theme {source_name}: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    #[error("theme {source_name}: key '{key}': {problem}")]
    Key {
        source_name: String,
        key: String,
        problem: String,
    },
    #[error("theme '{0}': no built-in theme by that name and no such file (built in: default, light, high-contrast, monochrome, nord-truecolor)")]
    NotFound(String),
    #[error("theme {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Styles for every part of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub title: Style,
    pub tab: Style,
    pub tab_active: Style,
    pub header: Style,
    pub selected: Style,
    pub border: Style,
    pub status_line: Style,
    pub ok: Style,
    pub warning: Style,
    pub error: Style,
    pub online: Style,
    pub shunned: Style,
    pub offline_soft: Style,
    pub offline_hard: Style,
    pub changed: Style,
    pub sparkline: Style,
    pub dialog_border: Style,
    pub sql: Style,
}

/// The `[styles]` keys, in file order.
const KEYS: [&str; 20] = [
    "text",
    "muted",
    "title",
    "tab",
    "tab_active",
    "header",
    "selected",
    "border",
    "status_line",
    "ok",
    "warning",
    "error",
    "online",
    "shunned",
    "offline_soft",
    "offline_hard",
    "changed",
    "sparkline",
    "dialog_border",
    "sql",
];

impl Theme {
    fn slot(&mut self, key: &str) -> Option<&mut Style> {
        Some(match key {
            "text" => &mut self.text,
            "muted" => &mut self.muted,
            "title" => &mut self.title,
            "tab" => &mut self.tab,
            "tab_active" => &mut self.tab_active,
            "header" => &mut self.header,
            "selected" => &mut self.selected,
            "border" => &mut self.border,
            "status_line" => &mut self.status_line,
            "ok" => &mut self.ok,
            "warning" => &mut self.warning,
            "error" => &mut self.error,
            "online" => &mut self.online,
            "shunned" => &mut self.shunned,
            "offline_soft" => &mut self.offline_soft,
            "offline_hard" => &mut self.offline_hard,
            "changed" => &mut self.changed,
            "sparkline" => &mut self.sparkline,
            "dialog_border" => &mut self.dialog_border,
            "sql" => &mut self.sql,
            _ => return None,
        })
    }

    fn blank(name: &str) -> Theme {
        let s = Style::new();
        Theme {
            name: name.to_owned(),
            text: s,
            muted: s,
            title: s,
            tab: s,
            tab_active: s,
            header: s,
            selected: s,
            border: s,
            status_line: s,
            ok: s,
            warning: s,
            error: s,
            online: s,
            shunned: s,
            offline_soft: s,
            offline_hard: s,
            changed: s,
            sparkline: s,
            dialog_border: s,
            sql: s,
        }
    }

    /// Parses a theme file; `source_name` (a theme name or path) is used in errors.
    pub fn parse(source_name: &str, text: &str) -> Result<Theme, ThemeError> {
        let key_err = |key: &str, problem: String| ThemeError::Key {
            source_name: source_name.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| ThemeError::Syntax {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
        let mut name = source_name.to_owned();
        let mut truecolor = false;
        let mut styles = None;
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("name", toml::Value::String(s)) => name = s.clone(),
                ("truecolor", toml::Value::Boolean(b)) => truecolor = *b,
                ("styles", toml::Value::Table(t)) => styles = Some(t),
                ("name", _) => return Err(key_err(key, "must be a string".into())),
                ("truecolor", _) => return Err(key_err(key, "must be true or false".into())),
                ("styles", _) => return Err(key_err(key, "must be a table".into())),
                _ => {
                    return Err(key_err(
                        key,
                        "unknown key (expected name, truecolor, [styles])".into(),
                    ))
                }
            }
        }
        let styles = styles.ok_or_else(|| key_err("styles", "missing [styles] table".into()))?;
        let mut theme = Theme::blank(&name);
        for (key, value) in styles {
            let full = format!("styles.{key}");
            let slot = theme.slot(key).ok_or_else(|| {
                key_err(&full, format!("unknown style (known: {})", KEYS.join(", ")))
            })?;
            let spec = value
                .as_str()
                .ok_or_else(|| key_err(&full, "must be a string such as \"bold red\"".into()))?;
            *slot = parse_style(spec, truecolor).map_err(|p| key_err(&full, p))?;
        }
        if let Some(missing) = KEYS.iter().find(|k| !styles.contains_key(**k)) {
            return Err(key_err(&format!("styles.{missing}"), "missing".into()));
        }
        Ok(theme)
    }

    /// A built-in theme by name.
    pub fn built_in(name: &str) -> Option<Result<Theme, ThemeError>> {
        BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Theme::parse(n, text))
    }

    /// A built-in name, else a file path.
    pub fn load(name_or_path: &str) -> Result<Theme, ThemeError> {
        if let Some(theme) = Theme::built_in(name_or_path) {
            return theme;
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(ThemeError::NotFound(name_or_path.to_owned()));
        }
        let text = std::fs::read_to_string(path).map_err(|source| ThemeError::Io {
            path: name_or_path.to_owned(),
            source,
        })?;
        Theme::parse(name_or_path, &text)
    }

    /// The style of a server status; the status text is always drawn too.
    pub fn status(&self, status: ServerStatus) -> Style {
        match status {
            ServerStatus::Online => self.online,
            ServerStatus::Shunned | ServerStatus::ShunnedReplicationLag => self.shunned,
            ServerStatus::OfflineSoft => self.offline_soft,
            ServerStatus::OfflineHard => self.offline_hard,
        }
    }

    fn map_styles(mut self, f: impl Fn(Style) -> Style) -> Theme {
        for key in KEYS {
            if let Some(slot) = self.slot(key) {
                *slot = f(*slot);
            }
        }
        self
    }

    /// Keeps bold/underline/reverse and drops every colour (NO_COLOR).
    pub fn without_colour(self) -> Theme {
        self.map_styles(|s| Style {
            fg: None,
            bg: None,
            ..s
        })
    }

    /// Converts 24-bit colours to the 256-colour set for terminals without truecolor.
    pub fn downsampled(self) -> Theme {
        let conv = |c: Option<Color>| match c {
            Some(Color::Rgb(r, g, b)) => Some(Color::Indexed(rgb_to_256(r, g, b))),
            other => other,
        };
        self.map_styles(|s| Style {
            fg: conv(s.fg),
            bg: conv(s.bg),
            ..s
        })
    }
}

/// What the environment says about colour, read once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColourEnv {
    /// `NO_COLOR` set and non-empty.
    pub no_color: bool,
    /// `COLORTERM` is `truecolor` or `24bit`.
    pub truecolor: bool,
    /// `SWITCHYARD_THEME`.
    pub theme: Option<String>,
}

impl ColourEnv {
    pub fn from_env() -> ColourEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        ColourEnv {
            no_color: var("NO_COLOR").is_some(),
            truecolor: var("COLORTERM").is_some_and(|v| {
                v.eq_ignore_ascii_case("truecolor") || v.eq_ignore_ascii_case("24bit")
            }),
            theme: var("SWITCHYARD_THEME"),
        }
    }
}

/// Picks the theme: `--theme`, else `SWITCHYARD_THEME`, else default (monochrome under
/// NO_COLOR); NO_COLOR then strips every colour whatever was chosen.
pub fn select(arg: Option<&str>, env: &ColourEnv) -> Result<Theme, ThemeError> {
    let fallback = if env.no_color {
        "monochrome"
    } else {
        "default"
    };
    let name = arg.or(env.theme.as_deref()).unwrap_or(fallback);
    let theme = Theme::load(name)?;
    Ok(if env.no_color {
        theme.without_colour()
    } else if env.truecolor {
        theme
    } else {
        theme.downsampled()
    })
}

fn parse_colour(word: &str, truecolor: bool) -> Result<Color, String> {
    let named = match word.to_ascii_lowercase().as_str() {
        "reset" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => {
            if let Some(hex) = word.strip_prefix('#') {
                if !truecolor {
                    return Err(format!(
                        "'{word}' is a 24-bit colour; add truecolor = true at the top of the theme"
                    ));
                }
                let v = u32::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 6)
                    .ok_or_else(|| format!("'{word}' is not #rrggbb"))?;
                let [_, r, g, b] = v.to_be_bytes();
                return Ok(Color::Rgb(r, g, b));
            }
            return word
                .parse::<u8>()
                .map(Color::Indexed)
                .map_err(|_| format!("unknown colour or word '{word}'"));
        }
    };
    Ok(named)
}

fn parse_style(spec: &str, truecolor: bool) -> Result<Style, String> {
    let mut style = Style::new();
    let mut words = spec.split_whitespace();
    while let Some(word) = words.next() {
        let modifier = match word.to_ascii_lowercase().as_str() {
            "bold" => Some(Modifier::BOLD),
            "dim" => Some(Modifier::DIM),
            "italic" => Some(Modifier::ITALIC),
            "underlined" => Some(Modifier::UNDERLINED),
            "reversed" => Some(Modifier::REVERSED),
            _ => None,
        };
        if let Some(m) = modifier {
            style = style.add_modifier(m);
        } else if word.eq_ignore_ascii_case("on") {
            let bg = words
                .next()
                .ok_or_else(|| "'on' needs a colour after it".to_owned())?;
            style = style.bg(parse_colour(bg, truecolor)?);
        } else {
            style = style.fg(parse_colour(word, truecolor)?);
        }
    }
    Ok(style)
}

/// Nearest colour of the xterm 6×6×6 cube or grey ramp.
fn rgb_to_256(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let nearest = |v: u8| {
        (0..6u8)
            .min_by_key(|i| (i32::from(LEVELS[usize::from(*i)]) - i32::from(v)).abs())
            .unwrap_or(0)
    };
    let (ri, gi, bi) = (nearest(r), nearest(g), nearest(b));
    let cube = 16 + 36 * ri + 6 * gi + bi;
    let dist = |a: (u8, u8, u8)| {
        let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
        d(a.0, r) + d(a.1, g) + d(a.2, b)
    };
    let cube_rgb = (
        LEVELS[usize::from(ri)],
        LEVELS[usize::from(gi)],
        LEVELS[usize::from(bi)],
    );
    let avg = ((u16::from(r) + u16::from(g) + u16::from(b)) / 3) as u8;
    let grey_index = (avg.saturating_sub(8) / 10).min(23);
    let grey = 8 + 10 * grey_index;
    if dist((grey, grey, grey)) < dist(cube_rgb) {
        232 + grey_index
    } else {
        cube
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_loads() {
        for (name, _) in BUILT_IN {
            let theme = Theme::load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(theme.name, name);
        }
    }

    #[test]
    fn styles_parse_colours_backgrounds_and_modifiers() {
        let s = parse_style("bold black on cyan", false).unwrap();
        assert_eq!(s.fg, Some(Color::Black));
        assert_eq!(s.bg, Some(Color::Cyan));
        assert!(s.add_modifier.contains(Modifier::BOLD));
        assert_eq!(
            parse_style("208", false).unwrap().fg,
            Some(Color::Indexed(208))
        );
    }

    fn error_of(text: &str) -> String {
        Theme::parse("broken.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn a_broken_theme_names_the_key() {
        let good = BUILT_IN[0].1;
        let bad_colour = good.replace("online = \"green\"", "online = \"grean\"");
        let err = error_of(&bad_colour);
        assert!(err.contains("styles.online"), "{err}");
        assert!(err.contains("grean"), "{err}");

        let missing = good.replace("sql = \"cyan\"", "");
        assert!(error_of(&missing).contains("styles.sql"));

        let unknown = format!("{good}\nonlne = \"red\"\n");
        assert!(error_of(&unknown).contains("styles.onlne"));

        let rgb = good.replace("sql = \"cyan\"", "sql = \"#112233\"");
        let err = error_of(&rgb);
        assert!(
            err.contains("styles.sql") && err.contains("truecolor"),
            "{err}"
        );

        assert!(error_of("name = 3\n[styles]\n").contains("'name'"));
        assert!(error_of("[styles\n").contains("broken.toml"));
    }

    #[test]
    fn no_color_selects_monochrome_and_strips_any_colour() {
        let env = ColourEnv {
            no_color: true,
            ..ColourEnv::default()
        };
        let theme = select(None, &env).unwrap();
        assert_eq!(theme.name, "monochrome");
        let forced = select(Some("high-contrast"), &env).unwrap();
        assert_eq!(forced.shunned.fg, None);
        assert_eq!(forced.shunned.bg, None);
        assert!(forced.shunned.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn truecolour_is_downsampled_unless_the_terminal_says_so() {
        let plain = select(Some("nord-truecolor"), &ColourEnv::default()).unwrap();
        assert!(matches!(plain.online.fg, Some(Color::Indexed(_))));
        let env = ColourEnv {
            truecolor: true,
            ..ColourEnv::default()
        };
        let rich = select(Some("nord-truecolor"), &env).unwrap();
        assert_eq!(rich.online.fg, Some(Color::Rgb(0xa3, 0xbe, 0x8c)));
    }

    #[test]
    fn rgb_maps_to_the_nearest_palette_entry() {
        assert_eq!(rgb_to_256(255, 0, 0), 196);
        assert_eq!(rgb_to_256(0, 0, 0), 16);
        assert_eq!(rgb_to_256(128, 128, 128), 244);
    }

    #[test]
    fn a_theme_file_by_path_reports_its_path_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        let text = BUILT_IN[0]
            .1
            .replace("shunned = \"bold red\"", "shunned = \"bold on\"");
        std::fs::write(&path, text).unwrap();
        let name = path.to_string_lossy().into_owned();
        let err = Theme::load(&name).unwrap_err().to_string();
        assert!(
            err.contains(&name) && err.contains("styles.shunned"),
            "{err}"
        );
        assert!(err.contains("'on' needs a colour"), "{err}");
        std::fs::write(&path, BUILT_IN[1].1).unwrap();
        assert_eq!(Theme::load(&name).unwrap().name, "light");
    }

    #[test]
    fn an_unknown_theme_name_is_reported() {
        let err = select(Some("no-such-theme"), &ColourEnv::default()).unwrap_err();
        assert!(err.to_string().contains("no-such-theme"));
    }
}
