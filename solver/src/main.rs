//! The `tessera` command-line tool: a thin layer that parses arguments and calls
//! library code (see `tessera_solver::cli`).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    tessera_solver::malloc::keep_large_blocks_on_heap();
    let cli = tessera_solver::cli::Cli::parse();
    cli.run()
}
