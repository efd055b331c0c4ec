//! The one place where kernel errors become Python exceptions.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatError {
    /// Bad argument value or shape: `ValueError` in Python.
    Value(String),
    /// Wrong buffer type / dtype: `TypeError` in Python.
    Type(String),
    /// A bug in featrs (a caught panic): `RuntimeError` in Python, never a crash.
    Internal(String),
}

impl fmt::Display for FeatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatError::Value(m) | FeatError::Type(m) => f.write_str(m),
            FeatError::Internal(m) => write!(f, "featrs internal error (please report): {m}"),
        }
    }
}

impl std::error::Error for FeatError {}

pub type Result<T> = std::result::Result<T, FeatError>;

/// Shorthand for `Err(FeatError::Value(format!(...)))`.
#[macro_export]
macro_rules! value_err {
    ($($arg:tt)*) => { Err($crate::error::FeatError::Value(format!($($arg)*))) };
}

impl From<FeatError> for pyo3::PyErr {
    fn from(e: FeatError) -> Self {
        let msg = e.to_string();
        match e {
            FeatError::Value(_) => pyo3::exceptions::PyValueError::new_err(msg),
            FeatError::Type(_) => pyo3::exceptions::PyTypeError::new_err(msg),
            FeatError::Internal(_) => pyo3::exceptions::PyRuntimeError::new_err(msg),
        }
    }
}
