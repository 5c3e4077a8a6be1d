//! `qvit`: the host tool. Thin: parsing and printing; the work is in the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "qvit",
    version,
    about = "Quantize Vision Transformers for ARM edge CPUs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the layers of an ONNX model as qvit imports it: shapes, parameters, MACs.
    Inspect {
        /// ONNX model.
        model: PathBuf,
        /// Input shape, e.g. 1,3,224,224 (default: the model's, symbolic dimensions as 1).
        #[arg(long, value_parser = parse_shape)]
        input_shape: Option<Vec<usize>>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also list layout and element-wise nodes.
        #[arg(long)]
        all: bool,
    },
}

fn parse_shape(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .map_err(|e| format!("bad dimension {d:?}: {e}"))
        })
        .collect()
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Inspect {
            model,
            input_shape,
            json,
            all,
        } => {
            let imp = qvit_host::import::import_path(&model, input_shape.as_deref())?;
            let name = model
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let info =
                qvit_host::inspect::model_info(&name, imp.opset, &imp.input_shape, &imp.graph);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&info).context("serialising")?
                );
            } else {
                print!("{}", qvit_host::inspect::render_table(&info, all));
            }
        }
    }
    Ok(())
}
