//! The console's state machine without a terminal: keys in, state and effects out.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use support::console;

use std::time::Duration;

use switchyard::control::{Action, ServerStatus, ServerTarget};
use switchyard::ops::{PlanState, StepState};
use switchyard::tui::app::{Effect, Mode, OpsRequest, OpsUpdate, Tone, MAX_REFRESH, MIN_REFRESH};
use switchyard::tui::event::Key;
use switchyard::tui::views::{self, arrange, RowKey, Scope, View};

fn keys(app: &mut switchyard::tui::app::App, ks: &[Key]) -> Vec<Effect> {
    ks.iter().filter_map(|k| app.handle_key(*k)).collect()
}

fn visible(app: &switchyard::tui::app::App) -> Vec<RowKey> {
    let data = views::table(app.view(), &app.model, app.scope()).expect("a table view");
    arrange(&data, &app.view_state(app.view()))
        .into_iter()
        .map(|r| r.key.clone())
        .collect()
}

fn server(hg: u32, host: &str) -> ServerTarget {
    ServerTarget::new(Some(hg), host, 3306)
}

#[test]
fn views_switch_by_digit_and_tab() {
    let mut app = console::app_with_reads(2, false);
    assert_eq!(app.view(), View::Overview);
    keys(&mut app, &[Key::Char('3')]);
    assert_eq!(app.view(), View::Servers);
    keys(&mut app, &[Key::Tab, Key::Tab]);
    assert_eq!(app.view(), View::Sessions);
    keys(&mut app, &[Key::BackTab]);
    assert_eq!(app.view(), View::Pools);
    keys(&mut app, &[Key::Char('1'), Key::BackTab]);
    assert_eq!(app.view(), View::Fleet, "shift-tab wraps around");
    keys(&mut app, &[Key::Char('l'), Key::Char('l'), Key::Char('h')]);
    assert_eq!(app.view(), View::Overview, "vim keys too");
}

#[test]
fn q_goes_back_then_quits_and_esc_never_quits() {
    let mut app = console::app_with_reads(2, false);
    assert_eq!(keys(&mut app, &[Key::Esc]), []);
    keys(&mut app, &[Key::Char('2'), Key::Enter]);
    assert_eq!(app.view(), View::Servers);
    assert_eq!(keys(&mut app, &[Key::Char('q')]), []);
    assert_eq!(app.view(), View::Hostgroups);
    assert_eq!(keys(&mut app, &[Key::Char('q')]), [Effect::Quit]);
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('?')]);
    assert_eq!(
        keys(&mut app, &[Key::CtrlC]),
        [Effect::Quit],
        "Ctrl-c quits from any mode"
    );
}

#[test]
fn drill_down_goes_hostgroup_server_pool_events_and_back() {
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('2'), Key::Down, Key::Enter]);
    assert_eq!(app.view(), View::Servers);
    assert_eq!(app.scope(), &Scope::Hostgroup(20));
    assert_eq!(visible(&app).len(), 5);
    keys(&mut app, &[Key::Down, Key::Enter]);
    assert_eq!(app.view(), View::Pools);
    assert_eq!(app.scope(), &Scope::Server(server(20, "db3.prod")));
    assert_eq!(visible(&app), [RowKey::Server(server(20, "db3.prod"))]);
    keys(&mut app, &[Key::Enter]);
    assert_eq!(app.view(), View::Events);
    assert_eq!(app.depth(), 4);
    assert_eq!(visible(&app).len(), 1);
    keys(&mut app, &[Key::Esc, Key::Esc]);
    assert_eq!(app.view(), View::Servers);
    assert_eq!(app.scope(), &Scope::Hostgroup(20));
    keys(&mut app, &[Key::Char('5')]);
    assert_eq!(app.depth(), 1, "switching views leaves the drill-down");
}

#[test]
fn selection_stays_within_the_rows() {
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('3')]);
    keys(&mut app, &[Key::Up]);
    assert_eq!(app.view_state(View::Servers).selected, 0);
    keys(&mut app, &[Key::PageDown]);
    assert_eq!(app.view_state(View::Servers).selected, 6);
    keys(&mut app, &[Key::Char('k'), Key::Char('g')]);
    assert_eq!(app.view_state(View::Servers).selected, 0);
    keys(&mut app, &[Key::Char('G')]);
    assert_eq!(app.view_state(View::Servers).selected, 6);
}

#[test]
fn drain_asks_with_the_sql_and_only_capital_y_runs_it() {
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('3'), Key::Char('/')]);
    for c in "db5".chars() {
        keys(&mut app, &[Key::Char(c)]);
    }
    keys(&mut app, &[Key::Enter]);
    assert_eq!(visible(&app), [RowKey::Server(server(20, "db5.prod"))]);
    keys(&mut app, &[Key::Char('d')]);
    let Mode::Confirm(c) = &app.mode else {
        panic!("no confirmation: {:?}", app.mode)
    };
    assert_eq!(c.action, Action::Drain(server(20, "db5.prod")));
    assert_eq!(
        c.statements,
        [
            "UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostgroup_id=20 AND hostname='db5.prod' AND port=3306",
            "LOAD MYSQL SERVERS TO RUNTIME",
            "SAVE MYSQL SERVERS TO DISK",
        ]
    );
    assert_eq!(
        keys(&mut app, &[Key::Enter, Key::Char('y'), Key::Char(' ')]),
        []
    );
    assert!(
        matches!(app.mode, Mode::Confirm(_)),
        "Enter and y do not confirm"
    );
    let effects = keys(&mut app, &[Key::Char('Y')]);
    assert_eq!(
        effects,
        [Effect::Execute(Action::Drain(server(20, "db5.prod")))]
    );
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn cancel_leaves_everything_as_it_was() {
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('3'), Key::Char('f')]);
    assert!(matches!(app.mode, Mode::Confirm(_)));
    assert_eq!(keys(&mut app, &[Key::Char('n')]), []);
    assert_eq!(app.mode, Mode::Normal);
    assert!(app
        .status
        .as_ref()
        .is_some_and(|s| s.text.starts_with("cancelled")));
}

#[test]
fn read_only_refuses_every_action_and_says_so() {
    let mut app = console::app_with_reads(2, true);
    keys(&mut app, &[Key::Char('3')]);
    for k in ['d', 'f', 'u', 'o', 'w', 't', 'L', 'W'] {
        assert_eq!(keys(&mut app, &[Key::Char(k)]), [], "{k}");
        assert_eq!(app.mode, Mode::Normal, "{k} opened something");
        let status = app.status.clone().expect("a status message");
        assert_eq!(status.tone, Tone::Error);
        assert!(status.text.contains("read-only"), "{k}: {}", status.text);
    }
}

#[test]
fn weight_prompt_accepts_digits_and_bounds_the_value() {
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('3'), Key::Char('w')]);
    assert!(matches!(app.mode, Mode::Number { .. }));
    keys(
        &mut app,
        &[
            Key::Char('2'),
            Key::Char('x'),
            Key::Char('5'),
            Key::Char('0'),
            Key::Enter,
        ],
    );
    let Mode::Confirm(c) = &app.mode else {
        panic!("no confirmation: {:?}", app.mode)
    };
    assert_eq!(c.action, Action::SetWeight(server(10, "db1.prod"), 250));
    keys(&mut app, &[Key::Esc, Key::Char('w')]);
    for _ in 0..8 {
        keys(&mut app, &[Key::Char('9')]);
    }
    keys(&mut app, &[Key::Enter]);
    assert!(
        matches!(app.mode, Mode::Number { .. }),
        "99999999 is over the maximum"
    );
    assert_eq!(app.status.as_ref().map(|s| s.tone), Some(Tone::Error));
}

#[test]
fn set_online_and_load_and_save_follow_the_view() {
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('3'), Key::Char('o')]);
    let Mode::Confirm(c) = app.mode.clone() else {
        panic!()
    };
    assert_eq!(
        c.action,
        Action::SetStatus(server(10, "db1.prod"), ServerStatus::Online)
    );
    keys(&mut app, &[Key::Esc, Key::Char('7'), Key::Char('L')]);
    let Mode::Confirm(c) = app.mode.clone() else {
        panic!()
    };
    assert_eq!(c.statements, ["LOAD MYSQL QUERY RULES TO RUNTIME"]);
    keys(&mut app, &[Key::Esc, Key::Char('8'), Key::Char('W')]);
    let Mode::Confirm(c) = app.mode.clone() else {
        panic!()
    };
    assert_eq!(c.statements, ["SAVE MYSQL USERS TO DISK"]);
}

#[test]
fn filter_sort_and_clear() {
    let mut app = console::app_with_reads(2, false);
    keys(
        &mut app,
        &[
            Key::Char('3'),
            Key::Char('/'),
            Key::Char('O'),
            Key::Char('F'),
            Key::Char('F'),
        ],
    );
    assert_eq!(app.mode, Mode::Filter);
    assert_eq!(
        visible(&app).len(),
        2,
        "OFFLINE_SOFT and OFFLINE_HARD, case-insensitive"
    );
    keys(
        &mut app,
        &[Key::Backspace, Key::Backspace, Key::Backspace, Key::Esc],
    );
    assert_eq!(app.view_state(View::Servers).filter, "");
    keys(
        &mut app,
        &[
            Key::Char('/'),
            Key::Char('d'),
            Key::Char('b'),
            Key::Char('6'),
            Key::Enter,
        ],
    );
    assert_eq!(visible(&app).len(), 1);
    keys(&mut app, &[Key::Char('\\')]);
    assert_eq!(visible(&app).len(), 7);

    // Weight is column 4; sorting descending puts the weight-1 report server last.
    keys(
        &mut app,
        &[
            Key::Char('s'),
            Key::Char('s'),
            Key::Char('s'),
            Key::Char('s'),
        ],
    );
    assert_eq!(app.view_state(View::Servers).sort, Some((4, false)));
    assert_eq!(
        visible(&app)[0],
        RowKey::Server(ServerTarget::new(Some(30), "report1.prod", 3306))
    );
    keys(&mut app, &[Key::Char('r')]);
    assert_eq!(app.view_state(View::Servers).sort, Some((4, true)));
    assert_eq!(
        visible(&app).last(),
        Some(&RowKey::Server(ServerTarget::new(
            Some(30),
            "report1.prod",
            3306
        )))
    );
}

#[test]
fn pause_ignores_new_reads() {
    let mut app = console::app_with_reads(2, false);
    assert_eq!(keys(&mut app, &[Key::Char('p')]), [Effect::Reschedule]);
    assert!(app.paused);
    let before = app.model.current().map(|s| s.taken_at_ms);
    app.on_snapshot(console::snapshot(5));
    assert_eq!(app.model.current().map(|s| s.taken_at_ms), before);
    keys(&mut app, &[Key::Char('p')]);
    app.on_snapshot(console::snapshot(5));
    assert_ne!(app.model.current().map(|s| s.taken_at_ms), before);
}

#[test]
fn refresh_interval_stays_within_bounds() {
    let mut app = console::app_with_reads(1, false);
    for _ in 0..20 {
        assert_eq!(keys(&mut app, &[Key::Char('-')]), [Effect::Reschedule]);
    }
    assert_eq!(app.refresh, MIN_REFRESH);
    for _ in 0..20 {
        keys(&mut app, &[Key::Char('+')]);
    }
    assert_eq!(app.refresh, MAX_REFRESH);
    keys(&mut app, &[Key::Char('-')]);
    assert_eq!(app.refresh, Duration::from_secs(30));
}

#[test]
fn help_opens_and_closes() {
    let mut app = console::app_with_reads(1, false);
    keys(&mut app, &[Key::Char('?')]);
    assert_eq!(app.mode, Mode::Help);
    keys(&mut app, &[Key::Char('d')]);
    assert_eq!(app.mode, Mode::Help, "keys do nothing behind the help");
    keys(&mut app, &[Key::Esc]);
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn action_results_reach_the_status_line_and_the_events_view() {
    let mut app = console::app_with_reads(2, false);
    let action = Action::Fence(server(20, "db2.prod"));
    app.on_action_done(
        &action,
        Err("Lost connection".into()),
        console::T0_MS + 9_000,
    );
    let status = app.status.clone().expect("status");
    assert_eq!(status.tone, Tone::Error);
    assert!(status.text.contains("Lost connection"));
    keys(&mut app, &[Key::Char('0')]);
    assert_eq!(visible(&app).len(), 4, "three proxy events and ours");
    app.on_action_done(&action, Ok(vec![]), console::T0_MS + 10_000);
    assert_eq!(app.status.map(|s| s.tone), Some(Tone::Info));
}

#[test]
fn kill_asks_for_the_selected_session() {
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('5')]);
    assert_eq!(app.view(), View::Sessions);
    // Longest-running first: the report query.
    assert_eq!(visible(&app)[0], RowKey::Session(4104));
    keys(&mut app, &[Key::Char('K')]);
    let Mode::Confirm(c) = app.mode.clone() else {
        panic!("no confirmation: {:?}", app.mode)
    };
    assert_eq!(c.action, Action::KillConnection(4104));
    assert_eq!(c.statements, ["KILL CONNECTION 4104"]);
    assert_eq!(
        keys(&mut app, &[Key::Char('Y')]),
        [Effect::Execute(Action::KillConnection(4104))]
    );
    keys(&mut app, &[Key::Char('k')]);
    assert_eq!(app.mode, Mode::Normal, "lower-case k only moves");
}

#[test]
fn tier_prompt_leads_to_the_tier_sql() {
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('3'), Key::Char('G'), Key::Char('t')]);
    let Mode::Number { field, .. } = app.mode.clone() else {
        panic!("no prompt: {:?}", app.mode)
    };
    assert_eq!(field.name(), "tier");
    keys(
        &mut app,
        &[Key::Char('3'), Key::Char('0'), Key::Char('0'), Key::Enter],
    );
    assert!(
        matches!(app.mode, Mode::Number { .. }),
        "300 is over the maximum tier"
    );
    keys(&mut app, &[Key::Backspace, Key::Backspace, Key::Enter]);
    let Mode::Confirm(c) = app.mode.clone() else {
        panic!("no confirmation: {:?}", app.mode)
    };
    assert_eq!(c.action, Action::SetTier(server(30, "report1.prod"), 3));
    assert!(c.statements[0].starts_with("REPLACE INTO switchyard_mysql_servers"));
}

#[test]
fn the_selection_follows_its_server_when_rows_re_sort() {
    let mut app = console::app_with_reads(1, false);
    // Servers sorted by connections in use, most first: db1 (22+), db2 (14+), db6 (6), db5 (9-i)…
    keys(&mut app, &[Key::Char('3')]);
    for _ in 0..7 {
        keys(&mut app, &[Key::Char('s')]);
    }
    keys(&mut app, &[Key::Char('r')]);
    assert_eq!(app.view_state(View::Servers).sort, Some((7, true)));
    let db5 = RowKey::Server(server(20, "db5.prod"));
    let at = visible(&app)
        .iter()
        .position(|k| *k == db5)
        .expect("db5 listed");
    for _ in 0..at {
        keys(&mut app, &[Key::Down]);
    }
    // db5 drains from 9 to 4 connections and falls below db6 (6).
    app.on_snapshot(console::snapshot(5));
    let rows = visible(&app);
    let now_at = rows.iter().position(|k| *k == db5).expect("db5 listed");
    assert_ne!(
        now_at, at,
        "the fixture must move db5 for this test to mean anything"
    );
    assert_eq!(app.view_state(View::Servers).selected, now_at);
    keys(&mut app, &[Key::Char('d')]);
    let Mode::Confirm(c) = app.mode.clone() else {
        panic!()
    };
    assert_eq!(c.action, Action::Drain(server(20, "db5.prod")));
}

#[test]
fn a_rule_is_edited_in_a_form_then_confirmed_with_its_sql() {
    use switchyard::control::RuleEdit;
    use switchyard::tui::app::RuleField;
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('7')]);
    assert_eq!(app.view(), View::Rules);
    // Rules are listed by id: the third is rule 30 (match_pattern ^SELECT, no HG, inactive).
    keys(&mut app, &[Key::Char('j'), Key::Char('j'), Key::Char('e')]);
    let Mode::EditRule(form) = &app.mode else {
        panic!("editor open: {:?}", app.mode)
    };
    assert_eq!(
        (form.rule_id, form.match_pattern.as_str(), form.active),
        (30, "^SELECT", false)
    );
    assert_eq!(form.focus, RuleField::MatchPattern);
    // Typed keys go to the field, never to the view ('q' does not quit, 'd' does not drain).
    keys(
        &mut app,
        &[
            Key::Char(' '),
            Key::Char('q'),
            Key::Backspace,
            Key::Backspace,
        ],
    );
    keys(&mut app, &[Key::Char('d')]);
    keys(
        &mut app,
        &[Key::Tab, Key::Backspace, Key::Backspace, Key::Backspace],
    );
    keys(&mut app, &[Key::Char('2'), Key::Char('x'), Key::Char('0')]);
    keys(&mut app, &[Key::Tab, Key::Char(' ')]);
    let Mode::EditRule(form) = &app.mode else {
        panic!("still editing: {:?}", app.mode)
    };
    assert_eq!(form.match_pattern, "^SELECTd");
    assert_eq!(form.destination_hostgroup, "20", "digits only");
    assert!(form.active);
    assert_eq!(keys(&mut app, &[Key::Enter]), []);
    let Mode::Confirm(c) = &app.mode else {
        panic!("confirmation: {:?}", app.mode)
    };
    let expected = Action::EditRule(RuleEdit {
        rule_id: 30,
        match_pattern: Some("^SELECTd".into()),
        destination_hostgroup: Some(20),
        active: true,
    });
    assert_eq!(c.action, expected);
    assert_eq!(
        c.statements[0],
        "UPDATE mysql_query_rules SET match_pattern='^SELECTd', destination_hostgroup=20, active=1 WHERE rule_id=30"
    );
    assert_eq!(
        keys(&mut app, &[Key::Char('Y')]),
        [Effect::Execute(expected)]
    );

    // Esc leaves the editor without a change; read-only never opens it.
    keys(&mut app, &[Key::Char('e'), Key::Esc]);
    assert_eq!(app.mode, Mode::Normal);
    let mut ro = console::app_with_reads(2, true);
    keys(&mut ro, &[Key::Char('7'), Key::Char('e')]);
    assert_eq!(ro.mode, Mode::Normal);
    assert_eq!(ro.status.as_ref().map(|s| s.tone), Some(Tone::Error));
}

#[test]
fn a_drain_started_here_is_followed_to_zero_or_to_its_deadline() {
    let db5 = server(20, "db5.prod");
    // Reaches zero: the snapshots count db5's connections down (9 - i).
    let mut app = console::app_with_reads(2, false);
    app.on_action_done(&Action::Drain(db5.clone()), Ok(vec![]), console::T0_MS);
    assert_eq!(app.drains.len(), 1);
    app.on_snapshot(console::snapshot(3));
    let text = app
        .status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default();
    assert!(
        text.contains("draining 20/db5.prod:3306: 6 conn left"),
        "{text}"
    );
    assert!(text.contains("c cancels"), "{text}");
    app.on_snapshot(console::snapshot(9));
    let text = app
        .status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default();
    assert!(text.contains("drained 20/db5.prod:3306"), "{text}");
    assert!(app.drains.is_empty());

    // Past the deadline with work left: the fence is offered, with its SQL, never run unasked.
    let mut app = console::app_with_reads(2, false);
    app.drain_deadline = Duration::from_secs(3);
    app.on_action_done(&Action::Drain(db5.clone()), Ok(vec![]), console::T0_MS);
    app.on_snapshot(console::snapshot(4)); // T0 + 8 s: past the deadline, 5 left
    let Mode::Confirm(c) = &app.mode else {
        panic!("fence offered: {:?}", app.mode)
    };
    assert_eq!(c.action, Action::Fence(db5.clone()));
    assert!(c.statements.iter().any(|s| s.contains("OFFLINE_HARD")));
    assert_eq!(app.status.as_ref().map(|s| s.tone), Some(Tone::Error));
    assert!(app.drains.is_empty(), "offered once");
    assert_eq!(keys(&mut app, &[Key::Char('n')]), []);

    // c cancels a drain: back ONLINE, confirmed like every action; not on a server that is
    // not draining.
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('3')]);
    keys(
        &mut app,
        &[Key::Down, Key::Down, Key::Down, Key::Down, Key::Char('c')],
    );
    let Mode::Confirm(c) = &app.mode else {
        panic!("cancel asks: {:?}", app.mode)
    };
    assert_eq!(c.action, Action::SetStatus(db5, ServerStatus::Online));
    keys(&mut app, &[Key::Esc, Key::Char('g'), Key::Char('c')]);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.status.as_ref().map(|s| s.tone), Some(Tone::Error));
}

fn failover_app(read_only: bool) -> switchyard::tui::app::App {
    let mut app = console::app_with_reads(2, read_only);
    let effects = keys(&mut app, &[Key::Char('F')]);
    assert_eq!(app.view(), View::Failover);
    assert_eq!(
        effects,
        vec![Effect::Ops(OpsRequest::ReadTopology)],
        "arriving at the view reads the topology"
    );
    assert!(app.model.ops.busy.is_some(), "busy from the request on");
    app.on_ops_update(
        OpsUpdate::Topology(Box::new(console::failover::topology()), console::T0_MS),
        console::T0_MS,
    );
    app.on_ops_update(
        OpsUpdate::Finished(Ok("topology read".into())),
        console::T0_MS,
    );
    assert!(app.model.ops.busy.is_none());
    app
}

#[test]
fn failover_steps_run_one_at_a_time_and_only_after_a_capital_y() {
    let mut app = failover_app(false);
    assert!(keys(&mut app, &[Key::Char('n')]).is_empty());
    assert!(app.status.as_ref().unwrap().text.contains("no plan"));

    assert_eq!(
        keys(&mut app, &[Key::Char('F')]),
        vec![Effect::Ops(OpsRequest::PlanFailover)],
        "in the failover view F plans a failover"
    );
    app.on_ops_update(OpsUpdate::Busy("plan a failover…".into()), console::T0_MS);
    assert!(
        keys(&mut app, &[Key::Char('F')]).is_empty(),
        "one request at a time"
    );
    app.on_ops_update(OpsUpdate::Finished(Ok("planned".into())), console::T0_MS);
    let plan = console::failover::stopped_plan();
    app.on_ops_update(
        OpsUpdate::Plan(Some(Box::new(plan.clone()))),
        console::T0_MS,
    );
    assert!(
        keys(&mut app, &[Key::Char('S')]).is_empty(),
        "no new plan while one is open"
    );

    assert!(keys(&mut app, &[Key::Char('n')]).is_empty());
    let Mode::ConfirmOps(c) = app.mode.clone() else {
        panic!("n asks first: {:?}", app.mode)
    };
    let run_step_3 = OpsRequest::Run {
        plan_id: plan.id.clone(),
        from_step: 2,
        one_step: true,
    };
    assert_eq!(c.request, run_step_3);
    assert_eq!(
        c.statements, plan.steps[2].statements,
        "the step that stopped"
    );
    assert!(c.question.contains("Run step 3 of 6"), "{}", c.question);
    assert!(keys(&mut app, &[Key::Enter, Key::Char('y')]).is_empty());
    assert_eq!(
        keys(&mut app, &[Key::Char('Y')]),
        vec![Effect::Ops(run_step_3)]
    );

    // Keys typed ahead cannot queue a second run behind the first.
    assert!(keys(&mut app, &[Key::Char('n')]).is_empty());
    assert!(app.status.as_ref().unwrap().text.starts_with("busy"));
    assert_eq!(app.mode, Mode::Normal);

    // Progress patches the plan on screen while the step runs.
    let mut rec = plan.steps[2].clone();
    rec.state = StepState::Running;
    app.on_ops_update(OpsUpdate::Step(2, Box::new(rec.clone())), console::T0_MS);
    let shown = app.model.ops.plan.as_ref().unwrap();
    assert_eq!(shown.state, PlanState::Running);
    assert_eq!(shown.steps[2].state, StepState::Running);
    assert!(app.model.ops.busy.as_ref().unwrap().contains("catch_up"));

    // Quitting mid-step warns once.
    assert!(keys(&mut app, &[Key::Char('q')]).is_empty());
    assert!(app.status.as_ref().unwrap().text.contains("q again quits"));
    assert_eq!(keys(&mut app, &[Key::Char('q')]), vec![Effect::Quit]);
}

#[test]
fn run_all_lists_every_step_left_and_read_only_refuses() {
    let mut app = failover_app(false);
    app.on_ops_update(
        OpsUpdate::Plan(Some(Box::new(console::failover::stopped_plan()))),
        console::T0_MS,
    );
    keys(&mut app, &[Key::Char('A')]);
    let Mode::ConfirmOps(c) = app.mode.clone() else {
        panic!("A asks first")
    };
    assert_eq!(
        c.request,
        OpsRequest::Run {
            plan_id: console::failover::stopped_plan().id,
            from_step: 2,
            one_step: false
        }
    );
    assert_eq!(
        c.statements.iter().filter(|s| s.starts_with("-- ")).count(),
        4,
        "steps 3 to 6: {:?}",
        c.statements
    );
    keys(&mut app, &[Key::Esc]);
    assert_eq!(app.mode, Mode::Normal);

    let mut ro = failover_app(true);
    ro.on_ops_update(
        OpsUpdate::Plan(Some(Box::new(console::failover::stopped_plan()))),
        console::T0_MS,
    );
    for k in ['n', 'A', 'X'] {
        assert!(keys(&mut ro, &[Key::Char(k)]).is_empty());
        assert_eq!(ro.mode, Mode::Normal, "{k}");
        assert!(ro.status.as_ref().unwrap().text.starts_with("read-only"));
    }
}

#[test]
fn switchover_and_rejoin_act_on_the_selected_server() {
    let mut app = failover_app(false);
    // Rows: the primary first, then the replicas in topology order.
    assert_eq!(
        keys(&mut app, &[Key::Down, Key::Char('S')]),
        vec![Effect::Ops(OpsRequest::PlanSwitchover(
            console::failover::ep(3307)
        ))]
    );
    app.on_ops_update(OpsUpdate::Finished(Ok("planned".into())), console::T0_MS);
    assert_eq!(
        keys(&mut app, &[Key::Char('g'), Key::Char('J')]),
        vec![Effect::Ops(OpsRequest::PlanRejoin(console::failover::ep(
            3306
        )))]
    );
}

#[test]
fn taking_out_the_last_online_server_of_a_hostgroup_is_said_loudly() {
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('3'), Key::Char('f')]);
    let Mode::Confirm(c) = app.mode.clone() else {
        panic!("f asks first")
    };
    assert_eq!(c.action, Action::Fence(server(10, "db1.prod")));
    let warning = c.warning.expect("db1 is hostgroup 10's only ONLINE server");
    assert!(
        warning.contains("last ONLINE server of hostgroup 10"),
        "{warning}"
    );
    keys(&mut app, &[Key::Esc, Key::Char('j'), Key::Char('f')]);
    let Mode::Confirm(c) = app.mode.clone() else {
        panic!("f asks first")
    };
    assert_eq!(c.action, Action::Fence(server(20, "db2.prod")));
    assert_eq!(c.warning, None, "hostgroup 20 has other ONLINE servers");
}

/// The backups view: no store says how to give one; read-only refuses what writes to the store
/// (start, prune) but not a verify; the memory bound refuses an unsafe form before any dialog.
#[test]
fn backups_view_keys_refuse_what_cannot_or_may_not_run() {
    use switchyard::tui::app::{BackupRequest, BackupSettings, Backups};
    let mut app = console::app_with_reads(2, false);
    keys(&mut app, &[Key::Char('B')]);
    assert_eq!(app.view(), View::Backups);
    assert_eq!(keys(&mut app, &[Key::Char('b')]), []);
    assert!(app.status.as_ref().unwrap().text.contains("--backup-store"));

    let mut settings = BackupSettings::none();
    settings.store = Some("file:///nonexistent".into());
    settings.available_memory = Some(1 << 30);
    let mut ro = console::app_with_reads(2, true);
    ro.backups = Backups::new(settings.clone());
    keys(&mut ro, &[Key::Char('B')]);
    for k in ['b', 'P'] {
        assert_eq!(keys(&mut ro, &[Key::Char(k)]), []);
        assert!(ro
            .status
            .as_ref()
            .unwrap()
            .text
            .starts_with("read-only: refused"));
        assert_eq!(ro.mode, Mode::Normal);
    }

    let mut app = console::app_with_reads(2, false);
    app.backups = Backups::new(settings);
    let effects = keys(&mut app, &[Key::Char('B'), Key::Char('b')]);
    assert!(
        matches!(
            effects.last(),
            Some(Effect::Backup(BackupRequest::Measure(_)))
        ),
        "{effects:?}"
    );
    // Chunk size up to 4GiB: × (4 parallel + 1) is over the 1 GiB available.
    keys(&mut app, &[Key::Tab, Key::Char('/'), Key::Tab, Key::Tab]);
    keys(&mut app, &[Key::Char('+'); 5]);
    assert_eq!(keys(&mut app, &[Key::Enter]), []);
    assert!(matches!(app.mode, Mode::BackupForm(_)), "{:?}", app.mode);
    let status = app.status.as_ref().unwrap();
    assert_eq!(status.tone, Tone::Error);
    assert!(
        status.text.starts_with("refused: memory bound"),
        "{}",
        status.text
    );
    // Back to 64MiB: the confirmation shows the same backup as a command line.
    keys(&mut app, &[Key::Char('-'); 5]);
    keys(&mut app, &[Key::Enter]);
    match &app.mode {
        Mode::ConfirmBackup(c) => {
            assert!(
                c.details[0].contains("--chunk-size 64MiB --parallel 4"),
                "{c:?}"
            );
            assert!(matches!(c.request, BackupRequest::Start(_)));
        }
        m => panic!("no confirmation: {m:?}"),
    }
}
