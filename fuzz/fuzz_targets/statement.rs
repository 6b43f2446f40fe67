//! The statement read once (`query::statement::Statement`: the shared lexer's tokens, the digest
//! built in the same pass), what the session derives from it (the effects, the local answers,
//! the `@@socket` rewrite), the command class and the rewrite that substitutes session values
//! never panic, whatever a client sends as a query; every token and every substituted call lies
//! on char boundaries inside the text; the one-pass digest equals the digest of the text alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::query::digest;
use switchyard_proxy::query::statement::Statement;
use switchyard_proxy::session::sql;
use switchyard_proxy::session::state::{self, Vars};
use switchyard_proxy::stats;

fuzz_target!(|data: &[u8]| {
    let _ = stats::classify(data);
    let st = Statement::new(data);
    let text = st.text();
    assert!(st.digest_text().len() <= digest::MAX_DIGEST_TEXT);
    assert_eq!(st.digest_text(), digest::digest_text(text));
    assert_eq!(st.digest(), digest::hash(st.digest_text()));
    for t in st.tokens() {
        assert!(
            text.get(t.start()..t.end()).is_some(),
            "token {t:?} outside the text or inside a character"
        );
    }
    let effects = sql::effects_of(&st);
    assert_eq!(effects, sql::effects(text), "the statement's effects are its text's");
    for c in &effects.calls {
        assert!(
            c.start <= c.end && c.end <= text.len(),
            "call span outside the statement"
        );
    }
    if !effects.calls.is_empty() {
        let rewritten = sql::substitute(text, &effects.calls, |_| Some("0".to_string()));
        assert!(
            rewritten.is_some(),
            "a reported call span is not on a char boundary"
        );
    }
    let mut vars = Vars::default();
    state::apply(&mut vars, &effects.assigns);
    let _ = state::reconcile(&Vars::default(), &vars, 45);
    let _ = state::reconcile(&vars, &Vars::default(), 224);
    assert_eq!(sql::local_query_of(&st), sql::local_query(text));
    assert_eq!(sql::without_socket_of(&st), sql::without_socket(text));
    let _ = sql::read_rewritten(text, 256);
    let _ = sql::is_computed(text);
});
