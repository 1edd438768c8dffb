//! The read-only templates: the built-in ones plus those in the templates folder, loaded
//! once at start-up. A folder that is not a valid template is skipped with a logged reason.

use std::path::Path;

use multiverse_core::world::{Template, TemplateSource};
use serde::Serialize;

/// Largest manifest or entities file read.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// What `GET /api/templates` shows of a template.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateSummary {
    /// Slug.
    pub name: String,
    /// Display title.
    pub title: String,
    /// One line about it.
    pub description: String,
    /// Entities a fresh world starts with.
    pub entities: usize,
    /// `builtin` or `folder`.
    pub source: TemplateSource,
}

/// Every template, built-in ones first, then the folder's in name order.
#[derive(Debug, Clone)]
pub struct Templates {
    all: Vec<Template>,
}

impl Templates {
    /// The built-in templates plus the valid folders under `dir`.
    pub fn load(dir: &Path) -> Templates {
        let mut all = Template::builtin();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Templates { all },
            Err(e) => {
                tracing::warn!("cannot read templates folder {}: {e}", dir.display());
                return Templates { all };
            }
        };
        let mut folders: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        folders.sort();
        for folder in folders {
            match load_folder(&folder) {
                Ok(t) if all.iter().any(|b| b.name == t.name) => {
                    tracing::warn!(
                        "template {:?} is already defined; skipping {}",
                        t.name,
                        folder.display()
                    );
                }
                Ok(t) => {
                    tracing::info!(template = %t.name, entities = t.entity_count(), "template loaded");
                    all.push(t);
                }
                Err(reason) => {
                    tracing::warn!("skipping template folder {}: {reason}", folder.display());
                }
            }
        }
        Templates { all }
    }

    /// A template by name.
    pub fn get(&self, name: &str) -> Option<&Template> {
        self.all.iter().find(|t| t.name == name)
    }

    /// Summaries for the API.
    pub fn summaries(&self) -> Vec<TemplateSummary> {
        self.all
            .iter()
            .map(|t| TemplateSummary {
                name: t.name.clone(),
                title: t.title.clone(),
                description: t.description.clone(),
                entities: t.entity_count(),
                source: t.source,
            })
            .collect()
    }
}

fn load_folder(folder: &Path) -> Result<Template, String> {
    let name = folder
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the folder name is not UTF-8")?;
    let read = |file: &str| -> Result<String, String> {
        let path = folder.join(file);
        let len = std::fs::metadata(&path)
            .map_err(|e| format!("{file}: {e}"))?
            .len();
        if len > MAX_FILE_BYTES {
            return Err(format!("{file} is larger than {MAX_FILE_BYTES} bytes"));
        }
        std::fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))
    };
    Template::from_folder(name, &read("manifest.json")?, &read("entities.json")?)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_folders_load_and_bad_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let write = |folder: &str, manifest: &str, entities: &str| {
            let d = dir.path().join(folder);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("manifest.json"), manifest).unwrap();
            std::fs::write(d.join("entities.json"), entities).unwrap();
        };
        let ok_manifest = r#"{"title": "Pond", "size": [100, 100]}"#;
        let one = r#"[{"kind": "frog", "position": {"x": 1, "y": 2}, "colour": 65280}]"#;
        write("pond", ok_manifest, one);
        write("broken", "{not json", one);
        write("Bad Name", ok_manifest, one);
        write("sandbox", ok_manifest, one);
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        let t = Templates::load(dir.path());
        let names: Vec<_> = t.summaries().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["sandbox", "aquarium", "galaxy", "pond"]);
        assert_eq!(t.get("pond").unwrap().entity_count(), 1);
        assert_eq!(t.get("sandbox").unwrap().source, TemplateSource::Builtin);
        assert_eq!(
            Templates::load(&dir.path().join("missing"))
                .summaries()
                .len(),
            3
        );
    }
}
