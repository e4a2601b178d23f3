//! The JSON Schema of `efa-doctor/1` reports, generated from the same serde types that
//! write them (schemars), so the schema cannot drift from the output.
//! `schemas/efa-doctor-1.json` is this schema, committed; a test regenerates it and fails
//! when the committed copy is stale, and validates every fixture's report against it.

use super::Report;

/// The schema of what efa-doctor writes (serialisation: a field that is always written is
/// required). New fields may appear within `efa-doctor/1`, so objects do not forbid
/// unknown properties.
pub fn json_schema() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<Report>()
}

/// [`json_schema`] as the committed file holds it: pretty-printed, one trailing newline.
pub fn text() -> String {
    let mut s =
        serde_json::to_string_pretty(&json_schema().to_value()).expect("a schema is plain JSON");
    s.push('\n');
    s
}
