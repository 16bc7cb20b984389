//! Writes the typed HTTP surface generated from `api/openapi.yaml` (see the `codegen` crate),
//! the models' rules as data and the served contract into `OUT_DIR`. A construct the generator refuses stops the build
//! with its JSON pointer and what to use instead.

use std::{env, fs, path::PathBuf};

const SPEC: &str = "api/openapi.yaml";

fn fail(message: &str) -> ! {
    eprintln!("error: {SPEC}{message}");
    std::process::exit(1)
}

fn main() {
    println!("cargo:rerun-if-changed={SPEC}");
    println!("cargo:rerun-if-changed=build.rs");
    let text = fs::read_to_string(SPEC).unwrap_or_else(|e| fail(&format!(": cannot read: {e}")));
    let generated = codegen::generate(SPEC, &text).unwrap_or_else(|e| fail(&e.to_string()));
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_else(|| fail(": OUT_DIR unset")));
    for (name, contents) in [
        ("api.rs", &generated.code),
        ("rules.rs", &generated.rules),
        ("openapi.json", &generated.contract_json),
    ] {
        fs::write(out.join(name), contents)
            .unwrap_or_else(|e| fail(&format!(": cannot write {name}: {e}")));
    }
}
