//! Rendering tests: every view at 80×24 and 200×50 drawn into a `TestBackend`, compared with the
//! committed text in `tests/snapshots/` (regenerate with `UPDATE_SNAPSHOTS=1`, then read the
//! diff), plus cell style assertions for status colours and NO_COLOR.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use support::console;

use std::path::PathBuf;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;
use switchyard::tui::app::{App, OpsUpdate};
use switchyard::tui::event::Key;
use switchyard::tui::theme::{self, ColourEnv, Theme};
use switchyard::tui::ui::draw;
use switchyard::tui::views::View;

fn default_theme() -> Theme {
    theme::select(Some("default"), &ColourEnv::default()).expect("built-in theme")
}

fn render(app: &App, theme: &Theme, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|f| draw(f, app, theme))
        .expect("draw into the test backend");
    terminal.backend().buffer().clone()
}

/// The screen as text, one line per row, trailing spaces cut.
fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn check_snapshot(name: &str, buf: &Buffer) {
    let actual = text(buf);
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "snapshots",
        &format!("{name}.txt"),
    ]
    .iter()
    .collect();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    assert_eq!(actual, expected, "screen differs from {}", path.display());
}

/// Finds `needle` on screen; returns its first cell.
fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    for y in 0..buf.area.height {
        let row: Vec<String> = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_owned())
            .collect();
        let line = row.concat();
        if let Some(byte) = line.find(needle) {
            // Every symbol here is one char wide; map the byte offset back to a cell.
            let mut acc = 0;
            for (x, s) in row.iter().enumerate() {
                if acc == byte {
                    return Some((x as u16, y));
                }
                acc += s.len();
            }
        }
    }
    None
}

fn on(view: View) -> App {
    let mut app = console::app_with_reads(6, false);
    app.handle_key(Key::Char(view.key()));
    assert_eq!(app.view(), view);
    if view == View::Failover {
        let t0 = console::T0_MS;
        app.on_ops_update(
            OpsUpdate::Topology(Box::new(console::failover::topology()), t0),
            t0,
        );
        app.on_ops_update(
            OpsUpdate::Plan(Some(Box::new(console::failover::stopped_plan()))),
            t0,
        );
        app.on_ops_update(OpsUpdate::Finished(Ok("topology read".into())), t0);
    }
    app
}

fn name(view: View) -> String {
    view.title().to_lowercase()
}

#[test]
fn every_view_at_80x24_and_200x50() {
    let theme = default_theme();
    for view in View::ALL {
        let app = on(view);
        check_snapshot(
            &format!("{}_80x24", name(view)),
            &render(&app, &theme, 80, 24),
        );
        check_snapshot(
            &format!("{}_200x50", name(view)),
            &render(&app, &theme, 200, 50),
        );
    }
}

#[test]
fn too_small_says_both_sizes() {
    let app = on(View::Servers);
    let buf = render(&app, &default_theme(), 79, 24);
    check_snapshot("too_small_79x24", &buf);
    let screen = text(&buf);
    assert!(screen.contains("current 79x24"));
    assert!(screen.contains("needs 80x24"));
    assert!(text(&render(&app, &default_theme(), 80, 23)).contains("Terminal too small"));
}

#[test]
fn status_colours_and_words() {
    let theme = default_theme();
    let buf = render(&on(View::Servers), &theme, 200, 50);
    for (word, style) in [
        ("SHUNNED", theme.shunned),
        ("OFFLINE_HARD", theme.offline_hard),
        ("OFFLINE_SOFT", theme.offline_soft),
        ("ONLINE", theme.online),
    ] {
        let (x, y) = find(&buf, word).unwrap_or_else(|| panic!("{word} not on screen"));
        let cell = &buf[(x, y)];
        assert_eq!(Some(cell.fg), style.fg, "{word} colour");
        assert!(
            cell.modifier.contains(style.add_modifier),
            "{word} modifiers"
        );
    }
    assert_eq!(theme.shunned.fg, Some(Color::Red));
    assert_eq!(theme.online.fg, Some(Color::Green));
    let screen = text(&buf);
    assert!(
        screen.contains("5 connect errors in 1s; retry in 35s"),
        "{screen}"
    );
    assert!(
        screen.contains("fenced by admin:oncall@10.0.4.2 12m15s ago"),
        "{screen}"
    );
    assert!(screen.contains("draining 1m45s, 4 conn left"), "{screen}");
}

#[test]
fn no_color_draws_no_colour_but_keeps_states_distinct() {
    let env = ColourEnv {
        no_color: true,
        ..ColourEnv::default()
    };
    let theme = theme::select(None, &env).expect("monochrome");
    for view in View::ALL {
        let buf = render(&on(view), &theme, 200, 50);
        for cell in buf.content() {
            assert_eq!(cell.fg, Color::Reset, "{view:?}: a cell has a colour");
            assert_eq!(cell.bg, Color::Reset, "{view:?}: a cell has a background");
        }
    }
    let buf = render(&on(View::Servers), &theme, 200, 50);
    let style_of = |word| {
        let (x, y) = find(&buf, word).unwrap_or_else(|| panic!("{word}"));
        buf[(x, y)].modifier
    };
    assert!(style_of("SHUNNED").contains(Modifier::REVERSED));
    assert!(style_of("OFFLINE_SOFT").contains(Modifier::UNDERLINED));
    assert_ne!(style_of("SHUNNED"), style_of("ONLINE"));
}

#[test]
fn query_text_control_characters_are_not_drawn() {
    let buf = render(&on(View::Digests), &default_theme(), 200, 50);
    for cell in buf.content() {
        assert!(
            !cell.symbol().chars().any(char::is_control),
            "control character on screen: {:?}",
            cell.symbol()
        );
    }
    assert!(text(&buf).contains("GROUP BY ??[31m?"));
}

#[test]
fn confirmation_shows_the_exact_sql() {
    let mut app = on(View::Servers);
    app.handle_key(Key::Char('j'));
    app.handle_key(Key::Char('j'));
    app.handle_key(Key::Char('j'));
    app.handle_key(Key::Char('j'));
    app.handle_key(Key::Char('d'));
    let buf = render(&app, &default_theme(), 80, 24);
    check_snapshot("confirm_drain_80x24", &buf);
    let screen = text(&buf);
    assert!(
        screen.contains("UPDATE mysql_servers SET status='OFFLINE_SOFT'"),
        "{screen}"
    );
    assert!(
        screen.contains("LOAD MYSQL SERVERS TO RUNTIME;"),
        "{screen}"
    );
}

#[test]
fn help_lists_the_keys_of_the_view() {
    let mut app = on(View::Servers);
    app.handle_key(Key::Char('?'));
    let buf = render(&app, &default_theme(), 80, 24);
    check_snapshot("help_servers_80x24", &buf);
    let screen = text(&buf);
    assert!(screen.contains("drain server"));
    let mut app = on(View::Digests);
    app.handle_key(Key::Char('?'));
    assert!(!text(&render(&app, &default_theme(), 200, 50)).contains("drain server"));
}

#[test]
fn a_proxysql_admin_shows_what_is_unavailable() {
    let mut app = App::new("admin@proxysql:6032", false);
    for i in 0..3 {
        app.on_snapshot(console::proxysql_snapshot(i));
    }
    let theme = default_theme();
    check_snapshot("proxysql_overview_80x24", &render(&app, &theme, 80, 24));
    app.handle_key(Key::Char('3'));
    let buf = render(&app, &theme, 80, 24);
    check_snapshot("proxysql_servers_80x24", &buf);
    assert!(text(&buf).contains("unavailable on this admin interface"));
    app.handle_key(Key::Char('0'));
    assert!(text(&render(&app, &theme, 120, 30)).contains("stats_switchyard_events"));
}

#[test]
fn drill_down_hostgroup_to_events() {
    let theme = default_theme();
    let mut app = on(View::Hostgroups);
    app.handle_key(Key::Char('j'));
    app.handle_key(Key::Enter);
    check_snapshot("drill_servers_in_hg20_80x24", &render(&app, &theme, 80, 24));
    app.handle_key(Key::Char('j'));
    app.handle_key(Key::Enter);
    app.handle_key(Key::Enter);
    let buf = render(&app, &theme, 120, 30);
    check_snapshot("drill_events_of_db3_120x30", &buf);
    assert!(text(&buf).contains("Events in 20/db3.prod:3306"));
}

#[test]
fn a_long_message_leaves_the_refresh_and_help_hints_visible() {
    let mut app = on(View::Servers);
    let action = switchyard::control::Action::Drain(switchyard::control::ServerTarget::new(
        Some(20),
        "db2.prod",
        3306,
    ));
    app.on_action_done(&action, Err("x".repeat(200)), console::T0_MS);
    let buf = render(&app, &default_theme(), 80, 24);
    let last = text(&buf).lines().last().unwrap_or_default().to_owned();
    assert!(last.ends_with("every 2s | ? help"), "{last}");
    assert!(
        last.starts_with(" failed: drain 20/db2.prod:3306"),
        "{last}"
    );
    assert!(last.contains('…'), "{last}");
}

#[test]
fn a_draining_server_shows_its_progress() {
    let mut app = on(View::Servers);
    for _ in 0..4 {
        app.handle_key(Key::Down);
    }
    let buf = render(&app, &default_theme(), 80, 24);
    check_snapshot("servers_draining_selected_80x24", &buf);
    let screen = text(&buf);
    assert!(
        screen.contains("drained 5 of 9 connections, 4 left"),
        "{screen}"
    );
}

#[test]
fn paused_and_failing_reads_show_the_age_of_the_data() {
    let mut app = on(View::Hostgroups);
    app.handle_key(Key::Char('p'));
    let last = |app: &App| {
        text(&render(app, &default_theme(), 80, 24))
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        last(&app).contains("PAUSED, data of 11-22 03:12:10"),
        "{}",
        last(&app)
    );
    app.handle_key(Key::Char('p'));
    app.on_read_error("Connection refused (os error 111)".into());
    let line = last(&app);
    assert!(line.contains("read failed: Connection refused"), "{line}");
    assert!(line.contains("data of 11-22 03:12:10"), "{line}");
}

#[test]
fn the_rule_editor_shows_its_fields() {
    let mut app = on(View::Rules);
    app.handle_key(Key::Char('e'));
    app.handle_key(Key::Tab);
    let buf = render(&app, &default_theme(), 80, 24);
    check_snapshot("rule_editor_80x24", &buf);
    let screen = text(&buf);
    assert!(screen.contains("Edit query rule 10"), "{screen}");
    assert!(screen.contains("> destination_hostgroup 10_"), "{screen}");
    app.handle_key(Key::Enter);
    let screen = text(&render(&app, &default_theme(), 120, 30));
    assert!(
        screen.contains("UPDATE mysql_query_rules SET match_pattern=NULL, destination_hostgroup=10, active=1 WHERE rule_id=10"),
        "{screen}"
    );
}

#[test]
fn failover_step_confirmation_shows_where_each_statement_goes() {
    let mut app = on(View::Failover);
    app.handle_key(Key::Char('n'));
    let buf = render(&app, &default_theme(), 120, 30);
    check_snapshot("confirm_failover_step_120x30", &buf);
    let screen = text(&buf);
    assert!(
        screen.contains("Run step 3 of 6 of the failover"),
        "{screen}"
    );
    assert!(
        screen.contains("127.0.0.1:3307: SELECT MASTER_GTID_WAIT('0-1-1204', 60)"),
        "{screen}"
    );
}

/// A three-proxy cluster at revision 3: one proxy a revision behind, one with its writes fenced
/// and not ready; an operation holds the lock.
fn fleet_sample() -> switchyard::tui::fleet_worker::FleetData {
    use switchyard::cli::fleet::FleetStatus;
    use switchyard_proxy::fleet::{Holder, Member, Revision, Table, Tables};
    let t0 = console::T0_MS as i64;
    let servers = |rows: &[(&str, &str)]| -> Tables {
        let mut t = Tables::new();
        t.insert(
            "mysql_servers".into(),
            Table {
                columns: vec!["hostname".into(), "status".into()],
                rows: rows
                    .iter()
                    .map(|(h, s)| vec![Some(h.to_string()), Some(s.to_string())])
                    .collect(),
            },
        );
        t
    };
    let rev = |n: u64, who: &str, why: &str, tables: Tables| Revision {
        revision: n,
        parent: n - 1,
        who: who.into(),
        when_ms: t0 - (4 - n as i64) * 3_600_000,
        why: why.into(),
        tables,
    };
    let history = vec![
        rev(1, "alice@ops1", "first", servers(&[("db1", "ONLINE")])),
        rev(
            2,
            "bob@ops2",
            "add db2",
            servers(&[("db1", "ONLINE"), ("db2", "ONLINE")]),
        ),
        rev(
            3,
            "switchyard failover",
            "fence db1",
            servers(&[("db1", "OFFLINE_HARD"), ("db2", "ONLINE")]),
        ),
    ];
    let member = |name: &str, port: u16, revision: u64| Member {
        name: name.into(),
        admin: format!("127.0.0.1:{port}"),
        version: "0.1.0".into(),
        revision,
        health: "ok".into(),
        write_fenced: None,
        updated_ms: t0,
        lease_ttl_ms: 5000,
        fence_within_ms: 6000,
        not_ready: None,
        generated_errors: 0,
    };
    let mut c = member("proxy-c", 6034, 2);
    c.health = "apply of revision 3 failed: hostgroup 99 unknown".into();
    c.write_fenced = Some("etcd quorum lost for 5.2s".into());
    c.not_ready = Some("writes fenced".into());
    switchyard::tui::fleet_worker::FleetData {
        status: FleetStatus {
            current: history.last().cloned(),
            members: vec![member("proxy-a", 6032, 3), member("proxy-b", 6033, 3), c],
            lock: Some(Holder {
                who: "carol@ops3".into(),
                pid: 4242,
                what: "switchover to 127.0.0.1:3307".into(),
                since_ms: t0 - 30_000,
            }),
        },
        history,
        read_at_ms: console::T0_MS,
    }
}

#[test]
fn fleet_view_shows_proxies_lock_history_and_the_selected_diff() {
    let theme = default_theme();
    let mut app = on(View::Fleet);
    assert!(text(&render(&app, &theme, 80, 24)).contains("--etcd http://HOST:2379 --cluster NAME"));
    app.fleet = switchyard::tui::app::FleetPane::enabled("prod");
    app.on_fleet_update(Ok(fleet_sample()));
    let buf = render(&app, &theme, 120, 40);
    check_snapshot("fleet_sample_120x40", &buf);
    let screen = text(&buf);
    assert!(screen.contains("operation lock: held by carol@ops3 (pid 4242)"));
    assert!(
        screen.contains("FENCED fenced: etcd quorum lost"),
        "{screen}"
    );
    // The newest revision is selected first: its diff against revision 2.
    assert!(screen.contains("+ mysql_servers: hostname=db1, status=OFFLINE_HARD"));
    assert!(screen.contains("- mysql_servers: hostname=db1, status=ONLINE"));
    app.handle_key(Key::Down);
    let screen = text(&render(&app, &theme, 120, 40));
    assert!(screen.contains("+ mysql_servers: hostname=db2, status=ONLINE"));
    assert!(!screen.contains("OFFLINE_HARD"));
    check_snapshot("fleet_sample_80x24", &render(&app, &theme, 80, 24));
    // A failed read keeps the last good one on screen and says why.
    app.on_fleet_update(Err("no answer from etcd within 10s".into()));
    let screen = text(&render(&app, &theme, 120, 40));
    assert!(screen.contains("etcd read failed: no answer from etcd within 10s"));
    assert!(screen.contains("proxy-c"));
}
