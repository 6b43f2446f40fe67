//! The digest normaliser and the rule engine never panic, whatever a client sends as a query and
//! whatever an operator writes as a pattern: a bad pattern is refused, a good one matches and
//! rewrites, and the digest text stays within its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::config::QueryRuleRow;
use switchyard_proxy::query::digest;
use switchyard_proxy::query::rules::{RuleSet, Subject};
use switchyard_proxy::query::statement::Statement;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let d = digest::digest_text(&text);
    assert!(d.len() <= digest::MAX_DIGEST_TEXT);
    // Input: "pattern \0 replacement \0 query"; any part may be missing.
    let mut parts = text.splitn(3, '\0');
    let pattern = parts.next().unwrap_or_default();
    let replacement = parts.next();
    let query = parts.next().unwrap_or(&text);
    let flags = data.first().copied().unwrap_or(0);
    let row = QueryRuleRow {
        rule_id: 1,
        active: true,
        match_pattern: Some(pattern.to_string()),
        match_digest: (flags & 1 != 0).then(|| pattern.to_string()),
        negate_match_pattern: flags & 2 != 0,
        re_modifiers: if flags & 4 != 0 {
            "CASELESS,GLOBAL"
        } else {
            "CASELESS"
        }
        .into(),
        replace_pattern: replacement.map(str::to_string),
        flagOUT: Some(u32::from(flags >> 4)),
        ..QueryRuleRow::default()
    };
    let Ok(set) = RuleSet::compile(&[row]) else {
        return;
    };
    // The rules' inputs as the session makes them: one statement, read once.
    let st = Statement::new(query.as_bytes());
    let _ = set.evaluate(&Subject {
        text: st.text(),
        digest_text: st.digest_text(),
        digest: st.digest(),
        username: "app",
        schema: Some("app"),
        client_addr: std::net::IpAddr::from([127, 0, 0, 1]),
        proxy_addr: None,
        proxy_port: None,
        flag_in: 0,
    });
});
