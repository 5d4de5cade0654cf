//! Compiles the Cairo project in `contracts/` to Sierra (contract class) and
//! CASM (compiled contract class) JSON, offline.
//!
//!     bitsage-cairo-build <project dir> <out dir> <corelib src dir> <contract path>...
//!
//! The corelib is the `corelib/src` directory of the `cairo-native`
//! 0.9.0-rc.2 crate package, which cargo fetches for this tool and never
//! builds; `scripts/build-contracts.sh` finds it and passes it here.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cairo_lang_compiler::db::RootDatabase;
use cairo_lang_compiler::project::setup_project;
use cairo_lang_compiler::CompilerConfig;
use cairo_lang_filesystem::db::init_dev_corelib;
use cairo_lang_filesystem::ids::CrateInput;
use cairo_lang_lowering::optimizations::config::Optimizations;
use cairo_lang_lowering::utils::InliningStrategy;
use cairo_lang_starknet::compile::compile_contract_in_prepared_db;
use cairo_lang_starknet::starknet_plugin_suite;
use cairo_lang_starknet_classes::allowed_libfuncs::ListSelector;
use cairo_lang_starknet_classes::casm_contract_class::CasmContractClass;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        bail!("usage: bitsage-cairo-build <project dir> <out dir> <corelib src dir> <contract path>...");
    }
    let (project, out, corelib) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    if !corelib.join("lib.cairo").exists() {
        bail!("{} is not a Cairo corelib (no lib.cairo)", corelib.display());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut db = RootDatabase::builder()
        .with_optimizations(Optimizations::enabled_with_default_movable_functions(InliningStrategy::Default))
        .with_default_plugin_suite(starknet_plugin_suite())
        .build()?;
    init_dev_corelib(&mut db, corelib);
    let inputs = setup_project(&mut db, &project).with_context(|| format!("setting up {}", project.display()))?;
    let ids = CrateInput::into_crate_ids(&db, inputs.clone());
    for path in &args[3..] {
        let mut config = CompilerConfig::default();
        config.diagnostics_reporter = config.diagnostics_reporter.with_crates(&inputs);
        let class = compile_contract_in_prepared_db(&db, Some(path), ids.clone(), config)
            .with_context(|| format!("compiling {path}"))?;
        let extracted = class.extract_sierra_program(false).with_context(|| format!("{path}: Sierra"))?;
        extracted.validate_version_compatible(ListSelector::default()).with_context(|| format!("{path}: libfuncs"))?;
        let sierra_text = extracted.program.to_string();
        let casm = match CasmContractClass::from_contract_class(class.clone(), extracted, false, usize::MAX) {
            Ok(c) => c,
            Err(e) => {
                // The Sierra program, numbered, to find what the CASM step refused.
                let numbered: String =
                    sierra_text.lines().enumerate().map(|(i, l)| format!("#{i} {l}\n")).collect();
                let dump = out.join(format!("{}.sierra.txt", path.rsplit("::").next().unwrap_or(path)));
                let _ = std::fs::write(&dump, numbered);
                return Err(anyhow::Error::new(e)).with_context(|| format!("{path}: CASM (Sierra in {})", dump.display()));
            }
        };
        let name = path.rsplit("::").next().unwrap_or(path);
        let sierra_file = out.join(format!("{name}.contract_class.json"));
        let casm_file = out.join(format!("{name}.compiled_contract_class.json"));
        std::fs::write(&sierra_file, serde_json::to_string_pretty(&class)?)?;
        std::fs::write(&casm_file, serde_json::to_string_pretty(&casm)?)?;
        println!("{name}: {} and {}", sierra_file.display(), casm_file.display());
    }
    Ok(())
}
