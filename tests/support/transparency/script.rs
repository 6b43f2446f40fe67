//! Session scripts: generated from the grammar with a seed, written as JSON lines that every
//! client driver (Rust, Python, the CLI) reads.

use serde::{Deserialize, Serialize};

use super::grammar::{self, Family, Gen, FAMILIES, STICKY_EVERY};

/// splitmix64: a tiny RNG of our own so the scripts of a seed never change with a crate version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One statement of a script. `bin`: the binary-protocol client may prepare and execute it;
/// `check`: its result is compared (setup statements are not).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub family: String,
    pub sql: String,
    pub bin: bool,
    pub check: bool,
}

impl Step {
    pub fn new(family: &str, sql: String, bin: bool) -> Step {
        Step {
            family: family.to_owned(),
            sql,
            bin,
            check: true,
        }
    }

    pub fn unchecked(mut self) -> Step {
        self.check = false;
        self
    }
}

/// The families a run uses: `TRANSPARENCY_FAMILIES=lid,row_count` (all when unset or `all`).
pub fn selected_families(spec: Option<&str>) -> Result<Vec<&'static Family>, String> {
    match spec.map(str::trim) {
        None | Some("") | Some("all") => Ok(FAMILIES.iter().collect()),
        Some(list) => list
            .split(',')
            .map(|n| {
                grammar::family(n.trim()).ok_or_else(|| {
                    let names: Vec<_> = FAMILIES.iter().map(|f| f.name).collect();
                    format!("unknown family '{n}' (known: {})", names.join(","))
                })
            })
            .collect(),
    }
}

/// The script of session `index` (tag e.g. `a17`): the prologue, then random blocks of the
/// families until it holds at least `statements` statements.
pub fn generate(
    seed: u64,
    tag: &str,
    index: usize,
    statements: usize,
    families: &[&'static Family],
    cli: bool,
) -> Vec<Step> {
    let mut g = Gen::new(
        seed ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
        tag,
    );
    let mut steps = grammar::prologue(&mut g);
    let usable: Vec<&Family> = families
        .iter()
        .copied()
        .filter(|f| (!f.sticky || index.is_multiple_of(STICKY_EVERY)) && (!cli || f.cli))
        .collect();
    let total: u32 = usable.iter().map(|f| f.weight).sum();
    if total == 0 {
        return steps;
    }
    while steps.len() < statements {
        let mut pick = g.rng.below(u64::from(total)) as u32;
        let f = usable
            .iter()
            .find(|f| {
                if pick < f.weight {
                    true
                } else {
                    pick -= f.weight;
                    false
                }
            })
            .unwrap_or(&usable[0]);
        g.set_family(f.name);
        steps.extend((f.block)(&mut g));
    }
    steps
}

pub fn to_jsonl(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default() + "\n")
        .collect()
}
