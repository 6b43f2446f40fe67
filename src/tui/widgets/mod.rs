//! Pieces drawn by more than one view: the shared table, dialogs, help, the bars.

mod bars;
mod dialog;
mod help;
mod table;

pub use bars::{render_status_line, render_tabs, render_too_small, MIN_HEIGHT, MIN_WIDTH};
pub use dialog::{
    render_confirm, render_confirm_ops, render_prompt, render_question, render_rule_form,
};
pub use help::render_help;
pub use table::{render_table, role_style};

/// Replaces control characters (C0, C1, DEL, ESC) with `?` and tabs/newlines with a space:
/// query text and names come from clients and must not drive the terminal.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn control_characters_never_reach_the_screen() {
        assert_eq!(sanitize("SELECT 1\n\tFROM t"), "SELECT 1  FROM t");
        assert_eq!(sanitize("x\u{1b}[2Jy\u{7}"), "x?[2Jy?");
        assert_eq!(sanitize("a\u{9b}31mb\u{7f}"), "a?31mb?");
        assert_eq!(sanitize("café ✓"), "café ✓");
    }
}
