//! JSON-RPC errors as paystate returns them, with lightningd's codes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// lightningd's error codes that paystate answers with.
pub mod codes {
    /// Catch-all: the node could not be reached or answered nonsense.
    pub const LIGHTNINGD: i32 = -1;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const PAY_IN_PROGRESS: i32 = 200;
    pub const PAY_NO_SUCH_PAYMENT: i32 = 208;
    pub const PAY_UNSPECIFIED_ERROR: i32 = 209;
    pub const DATASTORE_DEL_DOES_NOT_EXIST: i32 = 1200;
    pub const DATASTORE_DEL_WRONG_GENERATION: i32 = 1201;
    pub const DATASTORE_UPDATE_ALREADY_EXISTS: i32 = 1202;
    /// `datastore` of a key with children (a `check` of it says so).
    pub const DATASTORE_UPDATE_HAS_CHILDREN: i32 = 1205;
    /// `datastore` of a key under a key with a value.
    pub const DATASTORE_UPDATE_NO_CHILDREN: i32 = 1206;
}

/// A JSON-RPC error object: what a command fails with, and what lightningd
/// answers when one of paystate's own calls fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }

    /// The node could not be reached, or its answer was not what its schema says.
    pub fn lightningd(message: impl Into<String>) -> Self {
        Self::new(codes::LIGHTNINGD, message)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an error object always serializes")
    }
}

/// cln-plugin turns a handler's error into the JSON-RPC error by parsing its
/// `Display` output as `{code, message, data}`; anything else would become
/// -32700. So the display form is exactly that JSON.
impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json().to_string())
    }
}

impl std::error::Error for RpcError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_is_the_json_error_object() {
        let e = RpcError::new(211, "mismatch").with_data(json!({"x": 1}));
        let back: Value = serde_json::from_str(&e.to_string()).unwrap();
        assert_eq!(
            back,
            json!({"code": 211, "message": "mismatch", "data": {"x": 1}})
        );
        let plain = RpcError::new(208, "gone");
        assert_eq!(plain.to_string(), r#"{"code":208,"message":"gone"}"#);
    }
}
