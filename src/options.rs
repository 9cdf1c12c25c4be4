//! paystate's switch for the built-in name, in its two forms: the plugin
//! option (`paystate-takeover`, given at `init`, after the manifest) and
//! the environment (read before it). lightningd sends a plugin its options
//! only after the manifest has declared its hooks, so `paystate-takeover=
//! false` cannot undeclare the `rpc_command` hook: the node's own
//! `waitsendpay` is still relayed through paystate, at the hook's cost.
//! `PAYSTATE_TAKEOVER=false` in lightningd's environment is known in
//! time: no hook is declared, and the built-in costs nothing.

use cln_plugin::options::{ConfigOption, DefaultBooleanConfigOption};

pub const TAKEOVER: DefaultBooleanConfigOption = ConfigOption::new_bool_with_default(
    "paystate-takeover",
    true,
    "Answer lightningd's own waitsendpay (through the rpc_command hook; from v25.12)",
);

/// The environment variable that turns takeover off before the manifest.
pub const TAKEOVER_ENV: &str = "PAYSTATE_TAKEOVER";

/// Whether the environment turns takeover off (`false`, `0`, `off`, `no`).
pub fn takeover_off_in_env() -> bool {
    off(std::env::var(TAKEOVER_ENV).ok().as_deref())
}

fn off(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "false" | "0" | "off" | "no"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_no_turns_it_off() {
        for v in ["false", "0", "OFF", " no "] {
            assert!(off(Some(v)), "{v}");
        }
        for v in [None, Some(""), Some("true"), Some("1"), Some("maybe")] {
            assert!(!off(v), "{v:?}");
        }
    }
}
