//! The names lightningd gives BOLT 4 failure codes (`failcodename`:
//! `onion_wire_name`, from `wire/onion_wire.csv`). lightningd shows no
//! name for a code it does not know, and neither does paystate.

const BADONION: u64 = 0x8000;
const PERM: u64 = 0x4000;
const NODE: u64 = 0x2000;
const UPDATE: u64 = 0x1000;

const NAMES: [(u64, &str); 22] = [
    (NODE | 2, "WIRE_TEMPORARY_NODE_FAILURE"),
    (PERM | NODE | 2, "WIRE_PERMANENT_NODE_FAILURE"),
    (PERM | NODE | 3, "WIRE_REQUIRED_NODE_FEATURE_MISSING"),
    (BADONION | PERM | 4, "WIRE_INVALID_ONION_VERSION"),
    (BADONION | PERM | 5, "WIRE_INVALID_ONION_HMAC"),
    (BADONION | PERM | 6, "WIRE_INVALID_ONION_KEY"),
    (UPDATE | 7, "WIRE_TEMPORARY_CHANNEL_FAILURE"),
    (PERM | 8, "WIRE_PERMANENT_CHANNEL_FAILURE"),
    (PERM | 9, "WIRE_REQUIRED_CHANNEL_FEATURE_MISSING"),
    (PERM | 10, "WIRE_UNKNOWN_NEXT_PEER"),
    (UPDATE | 11, "WIRE_AMOUNT_BELOW_MINIMUM"),
    (UPDATE | 12, "WIRE_FEE_INSUFFICIENT"),
    (UPDATE | 13, "WIRE_INCORRECT_CLTV_EXPIRY"),
    (UPDATE | 14, "WIRE_EXPIRY_TOO_SOON"),
    (PERM | 15, "WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS"),
    (18, "WIRE_FINAL_INCORRECT_CLTV_EXPIRY"),
    (19, "WIRE_FINAL_INCORRECT_HTLC_AMOUNT"),
    (UPDATE | 20, "WIRE_CHANNEL_DISABLED"),
    (21, "WIRE_EXPIRY_TOO_FAR"),
    (PERM | 22, "WIRE_INVALID_ONION_PAYLOAD"),
    (23, "WIRE_MPP_TIMEOUT"),
    (BADONION | PERM | 24, "WIRE_INVALID_ONION_BLINDING"),
];

/// lightningd's name for a failure code, if it knows one.
pub fn name(failcode: u64) -> Option<&'static str> {
    NAMES.iter().find(|(c, _)| *c == failcode).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_as_lightningd_names_them() {
        // As seen in sendpay_failure payloads of a real lightningd.
        assert_eq!(
            name(16399),
            Some("WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS")
        );
        assert_eq!(name(4103), Some("WIRE_TEMPORARY_CHANNEL_FAILURE"));
        assert_eq!(name(16394), Some("WIRE_UNKNOWN_NEXT_PEER"));
        assert_eq!(name(0x1234), None);
    }
}
