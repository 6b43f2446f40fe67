//! The overlays that take the keys from the view: the filter line, the confirmation dialog
//! and the number prompt. Each handler says what its keys do and nothing else.

use crate::control::{Action, ServerTarget, MAX_TIER, MAX_WEIGHT};

use super::{App, Effect, Tone};
use crate::tui::event::Key;

/// An action waiting for a deliberate `Y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub action: Action,
    pub statements: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Help,
    /// Typing a filter; the view's filter follows the buffer live.
    Filter,
    Confirm(Confirm),
    /// Typing a number for a server setting.
    Number {
        field: NumberField,
        target: ServerTarget,
        input: String,
    },
}

/// A server setting typed as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberField {
    Weight,
    Tier,
}

impl NumberField {
    pub fn name(self) -> &'static str {
        match self {
            NumberField::Weight => "weight",
            NumberField::Tier => "tier",
        }
    }

    pub fn max(self) -> u32 {
        match self {
            NumberField::Weight => MAX_WEIGHT,
            NumberField::Tier => MAX_TIER,
        }
    }

    fn action(self, target: ServerTarget, value: u32) -> Action {
        match self {
            NumberField::Weight => Action::SetWeight(target, value),
            NumberField::Tier => Action::SetTier(target, value),
        }
    }
}

impl App {
    pub(super) fn filter_key(&mut self, key: Key) {
        match key {
            Key::Enter => self.mode = Mode::Normal,
            Key::Esc => {
                self.state_mut().filter.clear();
                self.mode = Mode::Normal;
            }
            Key::Backspace => {
                self.state_mut().filter.pop();
            }
            Key::Char(c) if !c.is_control() => self.state_mut().filter.push(c),
            _ => {}
        }
        self.state_mut().selected = 0;
    }

    pub(super) fn confirm_key(&mut self, key: Key, c: Confirm) -> Option<Effect> {
        match key {
            Key::Char('Y') => {
                self.mode = Mode::Normal;
                self.say(Tone::Info, format!("running: {}", c.action));
                Some(Effect::Execute(c.action))
            }
            Key::Char('n') | Key::Char('N') | Key::Char('q') | Key::Esc => {
                self.mode = Mode::Normal;
                self.say(Tone::Info, format!("cancelled: {}", c.action));
                None
            }
            Key::Enter | Key::Char('y') => {
                self.say(
                    Tone::Info,
                    "press Y (capital) to run it, n or Esc to cancel",
                );
                None
            }
            _ => None,
        }
    }

    pub(super) fn number_key(
        &mut self,
        key: Key,
        field: NumberField,
        target: ServerTarget,
        mut input: String,
    ) -> Option<Effect> {
        match key {
            Key::Esc => {
                self.mode = Mode::Normal;
                self.say(Tone::Info, format!("cancelled: set {}", field.name()));
            }
            Key::Backspace => {
                input.pop();
                self.mode = Mode::Number {
                    field,
                    target,
                    input,
                };
            }
            Key::Char(c) if c.is_ascii_digit() && input.len() < 8 => {
                input.push(c);
                self.mode = Mode::Number {
                    field,
                    target,
                    input,
                };
            }
            Key::Enter => match input.parse::<u32>() {
                Ok(v) if v <= field.max() => {
                    self.mode = Mode::Normal;
                    self.ask(field.action(target, v));
                }
                _ => self.say(
                    Tone::Error,
                    format!("{} must be 0 to {}", field.name(), field.max()),
                ),
            },
            _ => {}
        }
        None
    }
}
