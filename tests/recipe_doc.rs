//! docs/recipe.md documents every key a recipe accepts, and its example
//! is a valid recipe. The keys are taken from the parser itself: a recipe
//! with an unknown key in a section is refused with the list of the keys
//! that section accepts (`deny_unknown_fields`), so a key added to
//! src/run/recipe.rs without documentation fails here.

use std::path::PathBuf;
use waferscope::run::recipe;

fn doc() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/recipe.md"))
        .unwrap()
}

/// The ```toml block of the document.
fn example(doc: &str) -> String {
    let start = doc.find("```toml\n").expect("an example") + "```toml\n".len();
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_owned()
}

/// The keys the section opened by `header` accepts ("" for the top level),
/// from the parser's error for an unknown key placed there.
fn accepted_keys(example: &str, header: &str) -> Vec<String> {
    let probe = "zz_not_a_key = 1\n";
    let text = if header.is_empty() {
        format!("{probe}{example}")
    } else if let Some(at) = example.find(header) {
        let line_end = at + example[at..].find('\n').unwrap() + 1;
        format!("{}{probe}{}", &example[..line_end], &example[line_end..])
    } else {
        // A section the example leaves out: added at the end, with its
        // required keys given by the probe's error either way.
        format!("{example}\n{header}\n{probe}")
    };
    let e = format!("{:#}", recipe::parse(&text).unwrap_err());
    assert!(e.contains("unknown field `zz_not_a_key`"), "{header}: {e}");
    let expected = &e[e.find("expected").unwrap_or_else(|| panic!("{e}"))..];
    let keys: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(!keys.is_empty(), "{header}: {e}");
    keys
}

#[test]
fn the_example_is_a_valid_recipe() {
    let r = recipe::parse(&example(&doc())).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.image_px, 512);
    assert_eq!(r.detect.care_areas.as_slice().len(), 3);
}

#[test]
fn every_key_the_parser_accepts_is_documented() {
    let doc = doc();
    let example = example(&doc);
    let mut missing = Vec::new();
    let mut seen = 0;
    for header in [
        "",
        "[wafer]",
        "[plan]",
        "[inspection]",
        "[inspection.classes]",
        "[[inspection.care_areas]]",
        "[optics]",
    ] {
        for key in accepted_keys(&example, header) {
            seen += 1;
            // A key as `key`, a section as `[wafer]` or `[[inspection.care_areas]]`.
            if !doc.contains(&format!("`{key}`"))
                && !doc.contains(&format!("{key}]`"))
                && !doc.contains(&format!("{key}]]`"))
            {
                missing.push(format!("{header} {key}"));
            }
        }
    }
    assert!(seen > 30, "only {seen} keys found");
    assert!(
        missing.is_empty(),
        "keys not documented in docs/recipe.md: {missing:?}"
    );
}
