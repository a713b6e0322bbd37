//! The published GraphQL schema must match the code.

#[test]
fn published_graphql_schema_is_current() {
    let path = format!("{}/../schema/schema.graphql", env!("CARGO_MANIFEST_DIR"));
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    let current = parley::api::sdl();
    assert!(
        published == current,
        "schema/schema.graphql is stale; regenerate it with `cargo run -p parley -- schema > schema/schema.graphql`"
    );
}
