//! Configuration: the YAML file, its defaults and validation (being written).
