//! The one place where kernel errors become Python exceptions.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatError {
    /// Bad argument value or shape: `ValueError` in Python.
    Value(String),
    /// Wrong array type / dtype: `TypeError` in Python.
    Type(String),
    /// An output too large for memory: `MemoryError` in Python.
    Memory(String),
    /// A bug in featrs (a caught panic): `RuntimeError` in Python, never a crash.
    Internal(String),
}

impl fmt::Display for FeatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatError::Value(m) | FeatError::Type(m) | FeatError::Memory(m) => f.write_str(m),
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

/// A caught panic's payload as an internal error.
pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> FeatError {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    FeatError::Internal(msg)
}

#[cfg(feature = "python")]
impl From<FeatError> for pyo3::PyErr {
    fn from(e: FeatError) -> Self {
        let msg = e.to_string();
        match e {
            FeatError::Value(_) => pyo3::exceptions::PyValueError::new_err(msg),
            FeatError::Type(_) => pyo3::exceptions::PyTypeError::new_err(msg),
            FeatError::Memory(_) => pyo3::exceptions::PyMemoryError::new_err(msg),
            FeatError::Internal(_) => pyo3::exceptions::PyRuntimeError::new_err(msg),
        }
    }
}

#[cfg(feature = "python")]
impl From<pyo3::PyErr> for FeatError {
    /// A Python error met inside featrs (numpy called back by a kernel): not the caller's fault.
    fn from(e: pyo3::PyErr) -> Self {
        FeatError::Internal(format!("Python call failed: {e}"))
    }
}
