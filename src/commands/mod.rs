//! The commands paystate answers, one module each. Each parses its params
//! in lightningd's style and answers with lightningd's result or error.

pub mod delpay;
pub mod listsendpays;
pub mod status;
pub mod waitsendpay;

use crate::domain::PartKey;
use crate::error::{codes, RpcError};

pub(crate) fn never_attempted(key: &PartKey) -> RpcError {
    RpcError::new(
        codes::PAY_NO_SUCH_PAYMENT,
        format!(
            "Never attempted payment part {} for '{}'",
            key.partid, key.payment_hash
        ),
    )
}
