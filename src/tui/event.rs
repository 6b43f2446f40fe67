//! Input → [`UiAction`]. One table of bindings drives both dispatch and the `?` help, so the
//! help can never list a key that does nothing (or miss one that does something).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::views::View;

/// A key as the bindings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Tab,
    BackTab,
    Backspace,
    CtrlC,
}

impl Key {
    /// `None` for key releases and keys the console does not use.
    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        if ev.modifiers.contains(KeyModifiers::CONTROL) {
            return match ev.code {
                KeyCode::Char('c') | KeyCode::Char('C') => Some(Key::CtrlC),
                _ => None,
            };
        }
        Some(match ev.code {
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Enter => Key::Enter,
            KeyCode::Esc => Key::Esc,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::PageUp => Key::PageUp,
            KeyCode::PageDown => Key::PageDown,
            KeyCode::Home => Key::Home,
            KeyCode::End => Key::End,
            KeyCode::Tab => Key::Tab,
            KeyCode::BackTab => Key::BackTab,
            KeyCode::Backspace => Key::Backspace,
            _ => return None,
        })
    }
}

/// What a key asks for in normal mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiAction {
    Quit,
    Back,
    /// `q`: back, or quit from a top view.
    BackOrQuit,
    NextView,
    PrevView,
    GoTo(View),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    DrillDown,
    Help,
    Filter,
    ClearFilter,
    SortNext,
    SortReverse,
    Pause,
    Slower,
    Faster,
    Drain,
    Fence,
    Unfence,
    SetOnline,
    SetWeight,
    SetTier,
    LoadToRuntime,
    SaveToDisk,
    Kill,
    EditRule,
    CancelDrain,
    /// Failover view: read the topology again.
    ReadTopology,
    PlanFailover,
    PlanSwitchover,
    PlanRejoin,
    /// Run the next step of the plan shown.
    RunStep,
    /// Run every step that is left.
    RunAll,
    AbortPlan,
    /// Backups view: list the store again.
    ListBackups,
    NewBackup,
    CancelBackup,
    ResumeBackup,
    VerifyBackup,
    RestoreBackup,
    PruneBackups,
    /// SST view: edit the selected field of the form.
    SstEdit,
    /// SST view: run the benchmark with the form's settings.
    SstRun,
    /// SST view: cancel the run.
    SstCancel,
    /// SST view: write the recommended `[sst]` section to the form's file.
    SstWrite,
}

/// One line of the keymap.
pub struct Binding {
    pub keys: &'static [Key],
    /// How the help writes the keys.
    pub label: &'static str,
    pub action: UiAction,
    pub help: &'static str,
    /// The views it works in; empty means all.
    pub views: &'static [View],
}

const SERVER_VIEWS: &[View] = &[View::Hostgroups, View::Servers, View::Pools];
const CONFIG_VIEWS: &[View] = &[
    View::Hostgroups,
    View::Servers,
    View::Pools,
    View::Rules,
    View::Users,
    View::Variables,
];
/// The table views (the failover view's table is its topology).
const TABLE_VIEWS: &[View] = &[
    View::Hostgroups,
    View::Servers,
    View::Pools,
    View::Sessions,
    View::Digests,
    View::Rules,
    View::Users,
    View::Variables,
    View::Events,
    View::Failover,
    View::Backups,
    View::Capacity,
    View::Fleet,
];
/// Where Up/Down move something: a table's rows, the SST form's fields.
const MOVE_VIEWS: &[View] = &[
    View::Hostgroups,
    View::Servers,
    View::Pools,
    View::Sessions,
    View::Digests,
    View::Rules,
    View::Users,
    View::Variables,
    View::Events,
    View::Failover,
    View::Backups,
    View::Sst,
    View::Capacity,
    View::Fleet,
];
const FAILOVER: &[View] = &[View::Failover];
const SST: &[View] = &[View::Sst];
/// Where `F` jumps to the failover view (in it, `F` plans a failover).
const NOT_FAILOVER: &[View] = &[
    View::Overview,
    View::Hostgroups,
    View::Servers,
    View::Pools,
    View::Sessions,
    View::Digests,
    View::Rules,
    View::Users,
    View::Variables,
    View::Events,
    View::Backups,
    View::Sst,
    View::Capacity,
    View::Fleet,
];
const BACKUPS: &[View] = &[View::Backups];

macro_rules! bind {
    ($keys:expr, $label:expr, $action:expr, $help:expr, $views:expr) => {
        Binding {
            keys: $keys,
            label: $label,
            action: $action,
            help: $help,
            views: $views,
        }
    };
}

/// The keymap, in help order. Digits are handled by [`digit_view`] and listed here for help.
pub const BINDINGS: &[Binding] = &[
    bind!(
        &[Key::Char('?')],
        "?",
        UiAction::Help,
        "help for this view",
        &[]
    ),
    bind!(
        &[Key::Char('q')],
        "q",
        UiAction::BackOrQuit,
        "back; quit at a top view",
        &[]
    ),
    bind!(
        &[Key::Esc],
        "Esc",
        UiAction::Back,
        "back (never quits)",
        &[]
    ),
    bind!(&[Key::CtrlC], "Ctrl-c", UiAction::Quit, "quit", &[]),
    bind!(
        &[Key::Tab, Key::Char('l')],
        "Tab l",
        UiAction::NextView,
        "next view",
        &[]
    ),
    bind!(
        &[Key::BackTab, Key::Char('h')],
        "S-Tab h",
        UiAction::PrevView,
        "previous view",
        &[]
    ),
    bind!(
        &[Key::Up, Key::Char('k')],
        "Up k",
        UiAction::Up,
        "move up",
        MOVE_VIEWS
    ),
    bind!(
        &[Key::Down, Key::Char('j')],
        "Down j",
        UiAction::Down,
        "move down",
        MOVE_VIEWS
    ),
    bind!(
        &[Key::PageUp],
        "PgUp",
        UiAction::PageUp,
        "page up",
        TABLE_VIEWS
    ),
    bind!(
        &[Key::PageDown],
        "PgDn",
        UiAction::PageDown,
        "page down",
        TABLE_VIEWS
    ),
    bind!(
        &[Key::Home, Key::Char('g')],
        "Home g",
        UiAction::Top,
        "first row",
        TABLE_VIEWS
    ),
    bind!(
        &[Key::End, Key::Char('G')],
        "End G",
        UiAction::Bottom,
        "last row",
        TABLE_VIEWS
    ),
    bind!(
        &[Key::Enter],
        "Enter",
        UiAction::DrillDown,
        "drill: HG>server>pool>events",
        SERVER_VIEWS
    ),
    bind!(
        &[Key::Char('/')],
        "/",
        UiAction::Filter,
        "filter rows; Esc clears",
        TABLE_VIEWS
    ),
    bind!(
        &[Key::Char('\\')],
        "\\",
        UiAction::ClearFilter,
        "clear the filter",
        TABLE_VIEWS
    ),
    bind!(
        &[Key::Char('s')],
        "s",
        UiAction::SortNext,
        "sort by the next column",
        TABLE_VIEWS
    ),
    bind!(
        &[Key::Char('r')],
        "r",
        UiAction::SortReverse,
        "reverse the sort",
        TABLE_VIEWS
    ),
    bind!(
        &[Key::Char('p')],
        "p",
        UiAction::Pause,
        "pause / resume refresh",
        &[]
    ),
    bind!(
        &[Key::Char('+')],
        "+",
        UiAction::Slower,
        "refresh less often",
        &[]
    ),
    bind!(
        &[Key::Char('-')],
        "-",
        UiAction::Faster,
        "refresh more often",
        &[]
    ),
    bind!(
        &[Key::Char('d')],
        "d",
        UiAction::Drain,
        "drain server (OFFLINE_SOFT)",
        &[View::Servers, View::Pools]
    ),
    bind!(
        &[Key::Char('f')],
        "f",
        UiAction::Fence,
        "fence server (OFFLINE_HARD)",
        &[View::Servers, View::Pools]
    ),
    bind!(
        &[Key::Char('u')],
        "u",
        UiAction::Unfence,
        "unfence server (ONLINE)",
        &[View::Servers, View::Pools]
    ),
    bind!(
        &[Key::Char('o')],
        "o",
        UiAction::SetOnline,
        "set the server ONLINE",
        &[View::Servers, View::Pools]
    ),
    bind!(
        &[Key::Char('w')],
        "w",
        UiAction::SetWeight,
        "set the server's weight",
        &[View::Servers, View::Pools]
    ),
    bind!(
        &[Key::Char('t')],
        "t",
        UiAction::SetTier,
        "set the server's tier",
        &[View::Servers, View::Pools]
    ),
    bind!(
        &[Key::Char('e')],
        "e",
        UiAction::EditRule,
        "edit the rule (pattern, HG, active)",
        &[View::Rules]
    ),
    bind!(
        &[Key::Char('c')],
        "c",
        UiAction::CancelDrain,
        "cancel drain (ONLINE)",
        &[View::Servers, View::Pools]
    ),
    bind!(
        &[Key::Char('K')],
        "K",
        UiAction::Kill,
        "kill the client connection",
        &[View::Sessions]
    ),
    bind!(
        &[Key::Char('L')],
        "L",
        UiAction::LoadToRuntime,
        "load config to runtime",
        CONFIG_VIEWS
    ),
    bind!(
        &[Key::Char('W')],
        "W",
        UiAction::SaveToDisk,
        "save config to disk",
        CONFIG_VIEWS
    ),
    bind!(
        &[Key::Char('F')],
        "F",
        UiAction::GoTo(View::Failover),
        "failover view",
        NOT_FAILOVER
    ),
    bind!(
        &[Key::Char('R')],
        "R",
        UiAction::ReadTopology,
        "read the topology again",
        FAILOVER
    ),
    bind!(
        &[Key::Char('F')],
        "F",
        UiAction::PlanFailover,
        "plan a failover (primary down)",
        FAILOVER
    ),
    bind!(
        &[Key::Char('S')],
        "S",
        UiAction::PlanSwitchover,
        "plan a switchover to the selected",
        FAILOVER
    ),
    bind!(
        &[Key::Char('J')],
        "J",
        UiAction::PlanRejoin,
        "plan a rejoin of the selected",
        FAILOVER
    ),
    bind!(
        &[Key::Char('n')],
        "n",
        UiAction::RunStep,
        "run the next step (confirmed)",
        FAILOVER
    ),
    bind!(
        &[Key::Char('A')],
        "A",
        UiAction::RunAll,
        "run all steps left (confirmed)",
        FAILOVER
    ),
    bind!(
        &[Key::Char('X')],
        "X",
        UiAction::AbortPlan,
        "abandon the plan (undoes nothing)",
        FAILOVER
    ),
    bind!(
        &[Key::Char('B')],
        "B",
        UiAction::GoTo(View::Backups),
        "backups view",
        &[]
    ),
    bind!(
        &[Key::Char('R')],
        "R",
        UiAction::ListBackups,
        "list the store again",
        BACKUPS
    ),
    bind!(
        &[Key::Char('b')],
        "b",
        UiAction::NewBackup,
        "new backup, with sizing advice",
        BACKUPS
    ),
    bind!(
        &[Key::Char('x')],
        "x",
        UiAction::CancelBackup,
        "cancel the job (confirmed)",
        BACKUPS
    ),
    bind!(
        &[Key::Char('u')],
        "u",
        UiAction::ResumeBackup,
        "resume the stopped backup",
        BACKUPS
    ),
    bind!(
        &[Key::Char('v')],
        "v",
        UiAction::VerifyBackup,
        "verify selected (confirmed)",
        BACKUPS
    ),
    bind!(
        &[Key::Char('o')],
        "o",
        UiAction::RestoreBackup,
        "restore selected to a file",
        BACKUPS
    ),
    bind!(
        &[Key::Char('P')],
        "P",
        UiAction::PruneBackups,
        "prune: keep the newest N",
        BACKUPS
    ),
    bind!(
        &[Key::Char('C')],
        "C",
        UiAction::GoTo(View::Sst),
        "SST benchmark view",
        &[]
    ),
    bind!(
        &[Key::Char('U')],
        "U",
        UiAction::GoTo(View::Capacity),
        "capacity (USL) view",
        &[]
    ),
    bind!(
        &[Key::Char('E')],
        "E",
        UiAction::GoTo(View::Fleet),
        "fleet view (etcd cluster)",
        &[]
    ),
    bind!(
        &[Key::Enter],
        "Enter",
        UiAction::SstEdit,
        "edit the selected setting",
        SST
    ),
    bind!(
        &[Key::Char('r')],
        "r",
        UiAction::SstRun,
        "run the benchmark",
        SST
    ),
    bind!(
        &[Key::Char('x')],
        "x",
        UiAction::SstCancel,
        "cancel the run",
        SST
    ),
    bind!(
        &[Key::Char('w')],
        "w",
        UiAction::SstWrite,
        "write the [sst] section to the file",
        SST
    ),
];

/// The digit keys jump to the views in tab order: `1`…`9`, then `0` for the tenth.
pub fn digit_view(key: Key) -> Option<View> {
    match key {
        Key::Char(c) => {
            let n = c.to_digit(10)? as usize;
            View::ALL.get((n + 9) % 10).copied()
        }
        _ => None,
    }
}

/// The bindings that work in `view`, for help and dispatch.
pub fn bindings_for(view: View) -> impl Iterator<Item = &'static Binding> {
    BINDINGS
        .iter()
        .filter(move |b| b.views.is_empty() || b.views.contains(&view))
}

/// The action of a key in normal mode in `view`.
pub fn action_for(view: View, key: Key) -> Option<UiAction> {
    if let Some(v) = digit_view(key) {
        return Some(UiAction::GoTo(v));
    }
    bindings_for(view)
        .find(|b| b.keys.contains(&key))
        .map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice_in_one_view() {
        for view in View::ALL {
            let mut seen = Vec::new();
            for b in bindings_for(view) {
                for k in b.keys {
                    assert!(!seen.contains(k), "{k:?} bound twice in {view:?}");
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn actions_depend_on_the_view() {
        assert_eq!(
            action_for(View::Servers, Key::Char('d')),
            Some(UiAction::Drain)
        );
        assert_eq!(action_for(View::Digests, Key::Char('d')), None);
        assert_eq!(
            action_for(View::Overview, Key::Char('3')),
            Some(UiAction::GoTo(View::Servers))
        );
        assert_eq!(
            action_for(View::Overview, Key::Char('0')),
            Some(UiAction::GoTo(View::Events))
        );
        assert_eq!(
            action_for(View::Sessions, Key::Char('K')),
            Some(UiAction::Kill)
        );
        assert_eq!(action_for(View::Servers, Key::Char('K')), None);
        assert_eq!(
            action_for(View::Events, Key::Char('j')),
            Some(UiAction::Down)
        );
    }

    #[test]
    fn releases_and_unknown_control_keys_are_ignored() {
        let mut ev = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(Key::from_event(&ev), Some(Key::Char('q')));
        ev.kind = KeyEventKind::Release;
        assert_eq!(Key::from_event(&ev), None);
        let ctrl_x = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::CONTROL);
        assert_eq!(Key::from_event(&ctrl_x), None);
    }
}
