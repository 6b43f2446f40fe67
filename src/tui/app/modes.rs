//! The overlays that take the keys from the view: the filter line, the confirmation dialog
//! and the number prompt. Each handler says what its keys do and nothing else.

use crate::control::{Action, RuleEdit, ServerTarget, MAX_TIER, MAX_WEIGHT};

use super::{App, BackupConfirm, BackupForm, BackupPrompt, Effect, OpsConfirm, Tone};
use crate::tui::event::Key;

/// An action waiting for a deliberate `Y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub action: Action,
    pub statements: Vec<String>,
    /// What the operator must know before saying yes (the last ONLINE server of a hostgroup).
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Help,
    /// Typing a filter; the view's filter follows the buffer live.
    Filter,
    Confirm(Confirm),
    /// An operation step (or the rest of a plan) waiting for `Y`.
    ConfirmOps(OpsConfirm),
    /// Typing a number for a server setting.
    Number {
        field: NumberField,
        target: ServerTarget,
        input: String,
    },
    /// Editing a query rule; Enter shows the SQL for confirmation.
    EditRule(RuleForm),
    /// The new-backup form (backups view); Enter shows the backup for confirmation.
    BackupForm(BackupForm),
    /// A line typed for the backups view (restore target, prune retention).
    BackupPrompt {
        what: BackupPrompt,
        input: String,
    },
    /// A backups action waiting for `Y`.
    ConfirmBackup(BackupConfirm),
    /// Typing a value of the SST benchmark form (field index, text so far).
    SstEdit {
        field: usize,
        input: String,
    },
}

/// The fields of the rule editor, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleField {
    MatchPattern,
    DestinationHostgroup,
    Active,
}

/// A query rule being edited: the operator's text, checked only when Enter asks for the SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleForm {
    pub rule_id: u32,
    pub match_pattern: String,
    pub destination_hostgroup: String,
    pub active: bool,
    pub focus: RuleField,
}

impl RuleForm {
    /// The longest pattern the editor takes (rules are short; this only stops runaway pastes).
    const MAX_PATTERN: usize = 1024;

    fn step(&mut self, forward: bool) {
        use RuleField::*;
        self.focus = match (self.focus, forward) {
            (MatchPattern, true) | (Active, false) => DestinationHostgroup,
            (DestinationHostgroup, true) | (MatchPattern, false) => Active,
            (Active, true) | (DestinationHostgroup, false) => MatchPattern,
        };
    }

    /// The edit, or what is wrong with the form.
    pub fn edit(&self) -> Result<RuleEdit, String> {
        let destination_hostgroup = match self.destination_hostgroup.trim() {
            "" => None,
            hg => Some(
                hg.parse::<u32>()
                    .map_err(|_| format!("destination hostgroup '{hg}' is not a number"))?,
            ),
        };
        Ok(RuleEdit {
            rule_id: self.rule_id,
            match_pattern: Some(self.match_pattern.clone()).filter(|p| !p.is_empty()),
            destination_hostgroup,
            active: self.active,
        })
    }
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

    /// A key in a confirmation dialog: `Some(true)` runs (capital `Y` only), `Some(false)`
    /// cancels, `None` keeps the dialog open (Enter and `y` say how to confirm).
    pub(super) fn answer(&mut self, key: Key, what: &dyn std::fmt::Display) -> Option<bool> {
        match key {
            Key::Char('Y') => {
                self.mode = Mode::Normal;
                Some(true)
            }
            Key::Char('n') | Key::Char('N') | Key::Char('q') | Key::Esc => {
                self.mode = Mode::Normal;
                self.say(Tone::Info, format!("cancelled: {what}"));
                Some(false)
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

    pub(super) fn confirm_key(&mut self, key: Key, c: Confirm) -> Option<Effect> {
        if self.answer(key, &c.action)? {
            self.say(Tone::Info, format!("running: {}", c.action));
            return Some(Effect::Execute(c.action));
        }
        None
    }

    pub(super) fn confirm_ops_key(&mut self, key: Key, c: OpsConfirm) -> Option<Effect> {
        if self.answer(key, &c.request)? {
            return Some(self.send_ops(c.request));
        }
        None
    }

    pub(super) fn rule_key(&mut self, key: Key, mut form: RuleForm) -> Option<Effect> {
        match key {
            Key::Esc => {
                self.mode = Mode::Normal;
                self.say(
                    Tone::Info,
                    format!("cancelled: edit query rule {}", form.rule_id),
                );
                return None;
            }
            Key::Enter => {
                match form.edit() {
                    Ok(edit) => {
                        self.mode = Mode::Normal;
                        self.ask(Action::EditRule(edit));
                    }
                    Err(e) => self.say(Tone::Error, e),
                }
                return None;
            }
            Key::Tab | Key::Down => form.step(true),
            Key::BackTab | Key::Up => form.step(false),
            Key::Backspace => match form.focus {
                RuleField::MatchPattern => {
                    form.match_pattern.pop();
                }
                RuleField::DestinationHostgroup => {
                    form.destination_hostgroup.pop();
                }
                RuleField::Active => {}
            },
            Key::Char(c) if !c.is_control() => match form.focus {
                RuleField::MatchPattern if form.match_pattern.len() < RuleForm::MAX_PATTERN => {
                    form.match_pattern.push(c)
                }
                RuleField::DestinationHostgroup
                    if c.is_ascii_digit() && form.destination_hostgroup.len() < 10 =>
                {
                    form.destination_hostgroup.push(c)
                }
                RuleField::Active if c == ' ' => form.active = !form.active,
                _ => {}
            },
            _ => {}
        }
        self.mode = Mode::EditRule(form);
        None
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
