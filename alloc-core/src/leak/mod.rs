//! The leak check (in progress).
pub(crate) mod view;
