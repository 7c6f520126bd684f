//! `tessera pde`: tools for PDEs defined in TOML — check a definition and
//! print what the solver will see, or emit its residual as CUDA C.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tessera_constraints::Pde as _;
use tessera_scenarios::Scenario;
use tessera_scenarios::config::PdeConfig;
use tessera_scenarios::custom::CustomPde;

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
            return Ok((CustomPde::from_file(path)?, None));
        }
        let scenario = Scenario::from_file(path)?;
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
fn is_scenario(path: &Path) -> anyhow::Result<bool> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // A file that is not TOML is reported by the definition parser, with its
    // line and column.
    Ok(text
        .parse::<toml::Table>()
        .is_ok_and(|table| table.get("pde").is_some_and(toml::Value::is_table)))
}

/// What `pde check` prints: the name, axes, terms in solver order and the
/// number of residual rows.
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
    format!(
        "{}: ok\n  space     {}\n  terms     {}\n  residual  {} row(s) per point{reads}",
        pde.name(),
        axes.join(", "),
        terms.join(", "),
        pde.residual_tape().n_outputs()
    )
}
