//! Records the candle-core version from Cargo.lock, for image provenance.
fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut version = "unknown".to_string();
    let mut in_candle = false;
    for line in lock.lines() {
        if line == "name = \"candle-core\"" {
            in_candle = true;
        } else if in_candle {
            if let Some(v) = line.strip_prefix("version = \"") {
                version = v.trim_end_matches('"').to_string();
                break;
            }
        }
    }
    println!("cargo:rustc-env=SEEDLING_CANDLE_VERSION={version}");
}
