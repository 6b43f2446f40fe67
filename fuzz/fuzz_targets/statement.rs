//! The statement lexer, what it derives (the session effects, the local answers, the digest and
//! the command class) and the rewrite that substitutes session values never panic, whatever a
//! client sends as a query; a substitution always lands on the spans the lexer reported.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::query::digest;
use switchyard_proxy::session::sql;
use switchyard_proxy::session::state::{self, Vars};
use switchyard_proxy::stats;

fuzz_target!(|data: &[u8]| {
    let _ = stats::classify(data);
    let text = String::from_utf8_lossy(data);
    let d = digest::digest_text(&text);
    assert!(d.len() <= digest::MAX_DIGEST_TEXT);
    let effects = sql::effects(&text);
    for c in &effects.calls {
        assert!(
            c.start <= c.end && c.end <= text.len(),
            "call span outside the statement"
        );
    }
    if !effects.calls.is_empty() {
        let rewritten = sql::substitute(&text, &effects.calls, |_| Some("0".to_string()));
        assert!(
            rewritten.is_some(),
            "a reported call span is not on a char boundary"
        );
    }
    let mut vars = Vars::default();
    state::apply(&mut vars, &effects.assigns);
    let _ = state::reconcile(&Vars::default(), &vars, 45);
    let _ = state::reconcile(&vars, &Vars::default(), 224);
    let _ = sql::local_query(&text);
    let _ = sql::without_socket(&text);
    let _ = sql::is_computed(&text);
});
