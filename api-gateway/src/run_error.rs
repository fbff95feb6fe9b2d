//! The error of a top-level command (`serve`, `keys ...`), which `main`
//! turns into one line on stderr and an exit status.

use crate::{config, keys};

/// Error of a top-level command.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("{0}")]
    Io(String),
}
