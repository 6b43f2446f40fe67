//! `switchyard config load|save`: move configuration between the admin layers, as
//! `LOAD … TO RUNTIME` (MEMORY → RUNTIME) and `SAVE … TO DISK` (MEMORY → DISK).
//!
//! The `config` noun is shared: other verbs (e.g. `convert`) live in their own files and join
//! [`ConfigVerb`].

use clap::{Args, Subcommand, ValueEnum};

use crate::control::{Action, Module};

use super::act::{perform, ActArgs};
use super::admin::{with_session, AdminArgs};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub verb: ConfigVerb,
}

#[derive(Debug, Subcommand)]
pub enum ConfigVerb {
    /// MEMORY → RUNTIME (LOAD … TO RUNTIME) for the modules given.
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Load(LayerArgs),
    /// MEMORY → DISK (SAVE … TO DISK) for the modules given.
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Save(LayerArgs),
    /// Write the TOML equivalent of a proxysql.cnf (or of any config file switchyard reads);
    /// needs no admin interface.
    Convert(super::config_convert::ConvertArgs),
}

#[derive(Debug, Args)]
pub struct LayerArgs {
    /// Modules to move (`all` for every one).
    #[arg(required = true, value_enum)]
    pub modules: Vec<ModuleArg>,
    #[command(flatten)]
    pub act: ActArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModuleArg {
    Servers,
    Users,
    Rules,
    MysqlVariables,
    AdminVariables,
    All,
}

fn modules(args: &[ModuleArg]) -> Vec<Module> {
    const ALL: [Module; 5] = [
        Module::MysqlServers,
        Module::MysqlUsers,
        Module::MysqlQueryRules,
        Module::MysqlVariables,
        Module::AdminVariables,
    ];
    let mut out: Vec<Module> = Vec::new();
    for a in args {
        let add: &[Module] = match a {
            ModuleArg::Servers => &[Module::MysqlServers],
            ModuleArg::Users => &[Module::MysqlUsers],
            ModuleArg::Rules => &[Module::MysqlQueryRules],
            ModuleArg::MysqlVariables => &[Module::MysqlVariables],
            ModuleArg::AdminVariables => &[Module::AdminVariables],
            ModuleArg::All => &ALL,
        };
        for m in add {
            if !out.contains(m) {
                out.push(*m);
            }
        }
    }
    out
}

pub fn run(args: ConfigArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let (layer, make): (&LayerArgs, fn(Module) -> Action) = match args.verb {
        ConfigVerb::Load(ref l) => (l, Action::LoadToRuntime),
        ConfigVerb::Save(ref l) => (l, Action::SaveToDisk),
        ConfigVerb::Convert(a) => {
            return super::config_convert::convert(a, conn.output_file.clone())
        }
    };
    let actions: Vec<Action> = modules(&layer.modules).into_iter().map(make).collect();
    let act = layer.act;
    with_session(conn, async |s| {
        perform(&mut s.control, conn, act, actions).await
    })
}
