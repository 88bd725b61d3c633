//! Reading what a user gives on disk: a cluster file. (The model parses
//! text and checks values; it reads no file.)

use std::path::Path;

use crate::model::SpecInput;

/// Reads a cluster file. Relative context folders are taken relative to
/// the file's directory.
pub fn read_cluster_file(path: &Path) -> Result<SpecInput, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read cluster file '{}': {e}; check the path given to -f",
            path.display()
        )
    })?;
    let mut input = SpecInput::from_yaml(&text)
        .map_err(|e| format!("cluster file '{}': {e}", path.display()))?;
    if let (Some(ctx), Some(dir)) = (&input.context_folder, path.parent()) {
        if ctx.is_relative() {
            input.context_folder = Some(dir.join(ctx));
        }
    }
    Ok(input)
}
