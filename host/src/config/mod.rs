//! Configuration read at the edge: command-line settings and Dapr resource YAML,
//! parsed once into typed structs. Nothing after this module sees raw YAML.

pub mod resources;
pub mod settings;
