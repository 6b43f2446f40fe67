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
