//! `tessera pde`: tools for PDEs defined in TOML — check a definition and
//! print what the solver will see, or emit its residual as CUDA C.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tessera_constraints::Pde as _;
use tessera_scenarios::Scenario;
use tessera_scenarios::config::PdeConfig;
use tessera_scenarios::custom::{CustomPde, Distribution, InitialCondition};

/// `tessera pde …`
#[derive(Debug, clap::Subcommand)]
pub enum Pde {
    /// Parse and check a definition; list its terms, residual rows and inputs.
    Check(Source),
    /// Print the residual (value, gradient, Hessian over a dual-number type)
    /// as source for a GPU back end.
    Emit(Emit),
}

/// Where the definition is: a definition file, or a scenario file whose
/// `[pde]` table is `kind = "custom"`.
#[derive(Debug, clap::Args)]
pub struct Source {
    /// A PDE definition (TOML) or a scenario file with a custom `[pde]`.
    file: PathBuf,
    /// Override a scenario setting first, e.g. `--set pde.parameters.nu=0.1`
    /// or `--set pde.initial.amplitude=0.25` (repeatable; a scenario only).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Arguments of `tessera pde emit`.
#[derive(Debug, clap::Args)]
pub struct Emit {
    /// The output language.
    #[arg(long, value_enum, default_value = "cuda")]
    target: Target,
    #[command(flatten)]
    source: Source,
}

/// Languages `pde emit` writes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Target {
    /// CUDA C: one `__device__` function per PDE.
    Cuda,
}

impl Pde {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Check(source) => {
                let (pde, domain) = source.load()?;
                println!("{}", summary(&pde));
                if let Some(family) = pde.initial_family() {
                    println!("  family    {}", describe(family));
                }
                // Only a scenario says where the family is drawn.
                for seam in domain.map(|d| pde.seams(&d)).unwrap_or_default() {
                    println!("  initial   {}", seam.describe());
                }
            }
            Self::Emit(emit) => {
                let (pde, _) = emit.source.load()?;
                match emit.target {
                    Target::Cuda => print!("{}", pde.emit_cuda()),
                }
            }
        }
        Ok(())
    }
}

impl Source {
    /// The definition in `file`, directly or through a scenario, and the
    /// scenario's domain (`[lo, hi]` per space axis) if it came through one.
    fn load(&self) -> anyhow::Result<(CustomPde, Option<Vec<[f64; 2]>>)> {
        let path = &self.file;
        if !is_scenario(path)? {
            if !self.overrides.is_empty() {
                bail!(
                    "{}: --set changes a scenario's settings, and this is a definition file \
                     (give the scenario that uses it)",
                    path.display()
                );
            }
            return Ok((CustomPde::from_file(path)?, None));
        }
        let mut scenario = Scenario::from_file(path)?;
        scenario.set_all(&self.overrides)?;
        match &scenario.pde {
            PdeConfig::Custom(params) => Ok((
                params.pde(&path.display().to_string())?,
                Some(params.domain.clone()),
            )),
            other => bail!(
                "{}: [pde] is the built-in `{}`, not a definition (its TOML restatement, where \
                 there is one, is in scenarios/pdes/)",
                path.display(),
                other.kind()
            ),
        }
    }
}

/// Whether `path` is a scenario file (it has a `[pde]` table) rather than a
/// definition.
///
/// Only `pde` is read, into a table whose contents are skipped: every other
/// value is left to the parser the file goes to. A [`toml::Table`] would have
/// to hold them all as TOML values, and a scenario with a number that is none
/// (a seed beyond `i64::MAX`, which the scenario's own validation names)
/// failed to parse as one and was reported as a definition with unknown keys.
fn is_scenario(path: &Path) -> anyhow::Result<bool> {
    /// The top level of the file: `[pde]` if present.
    #[derive(serde::Deserialize)]
    struct TopLevel {
        pde: Option<AnyTable>,
    }
    /// Any table, its keys ignored (a value that is not a table is refused).
    #[derive(serde::Deserialize)]
    struct AnyTable {}

    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // A file that is not TOML is reported by the definition parser, with its
    // line and column.
    Ok(toml::from_str::<TopLevel>(&text).is_ok_and(|top| top.pde.is_some()))
}

/// The `[initial]` family as `pde check` prints it: which family, and its
/// numbers (after a scenario's `pde.initial`).
fn describe(family: &InitialCondition) -> String {
    match family {
        InitialCondition::Grf(g) => format!(
            "grf (length scale {}, amplitude {}, mean {})",
            g.length_scale(),
            g.amplitude(),
            g.mean()
        ),
        InitialCondition::Expression(e) => {
            let random: Vec<String> = (e.random().iter())
                .map(|p| match p.distribution {
                    Distribution::Uniform { lo, hi } => format!("{} uniform [{lo}, {hi}]", p.name),
                    Distribution::Normal { mean, std } => {
                        format!("{} normal (mean {mean}, std {std})", p.name)
                    }
                })
                .collect();
            match random.is_empty() {
                true => "expression".to_owned(),
                false => format!("expression; drawn in order: {}", random.join(", ")),
            }
        }
    }
}

/// What `pde check` prints: the name, axes, terms in solver order, the
/// number of residual rows and, past the terms a model takes, a note.
fn summary(pde: &CustomPde) -> String {
    let axes: Vec<String> = ["x", "y"]
        .iter()
        .zip(&pde.periodic_axes()[1..])
        .map(|(axis, &periodic)| match periodic {
            true => format!("{axis} (periodic)"),
            false => format!("{axis} (bounded)"),
        })
        .collect();
    let terms: Vec<String> = pde
        .term_defs()
        .iter()
        .map(|t| format!("{} = {:?}/{:?}", t.name, t.operator, t.stencil))
        .collect();
    let reads = if pde.uses_coordinates() {
        ", reads the coordinates"
    } else {
        ""
    };
    // Past the model's limit the definition still makes ground truth.
    let note = match pde.check_term_limit() {
        Ok(()) => String::new(),
        Err(e) => format!("\n  note      {e}"),
    };
    format!(
        "{}: ok\n  space     {}\n  terms     {}\n  residual  {} row(s) per point{reads}{note}",
        pde.name(),
        axes.join(", "),
        terms.join(", "),
        pde.residual_tape().n_outputs()
    )
}
