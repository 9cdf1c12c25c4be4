//! What the lightningd paystate is loaded into can do. lightningd puts
//! `LIGHTNINGD_VERSION` into every plugin's environment (since 2019), so
//! paystate knows the release before it answers `getmanifest`.

use crate::params::Numbers;

/// The first release whose `rpc_command` hook honours `filters`
/// (v25.12: "lightningd: support "filters" in plugins manifest"). An
/// earlier one sends every command of the node through the hook.
const FILTERS: (u32, u32) = (25, 12);

/// The last release line that reads unsigned integers with `strtoull`;
/// master after it reads decimal digits only (`str_to_u64`).
const STRTOULL_UNTIL: (u32, u32) = (26, 6);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// As lightningd spelled it (`v25.09.3`, `v26.06-258-g090f4b0`), if it did.
    pub name: Option<String>,
    /// Year and month, where the name has them.
    pub version: Option<(u32, u32)>,
}

impl Release {
    pub fn from_env() -> Release {
        Release::parse(std::env::var("LIGHTNINGD_VERSION").ok().as_deref())
    }

    pub fn parse(name: Option<&str>) -> Release {
        let version = name.and_then(|n| {
            let mut nums = n
                .trim_start_matches('v')
                .split(|c: char| !c.is_ascii_digit())
                .map(str::parse::<u32>);
            Some((nums.next()?.ok()?, nums.next()?.ok()?))
        });
        Release {
            name: name.map(str::to_string),
            version,
        }
    }

    /// Whether the `rpc_command` hook can be limited to the names paystate
    /// answers. Without that, declaring the hook would relay every command
    /// of the node through paystate, so paystate declares none there and
    /// answers its own names only. An unknown release is taken as recent.
    pub fn has_hook_filters(&self) -> bool {
        self.version.map_or(true, |v| v >= FILTERS)
    }

    /// How the release reads unsigned integer parameters. A tagged release
    /// (`v26.06`, `v26.06.6`, `v26.06rc1`, with or without `-modded`) of
    /// v26.06 or earlier reads them with `strtoull`; a development build
    /// (`v26.06-258-g090f4b0`), a later release or an unknown one with
    /// decimal digits only.
    pub fn numbers(&self) -> Numbers {
        let (Some(name), Some(v)) = (&self.name, self.version) else {
            return Numbers::Digits;
        };
        let rest = name
            .trim_start_matches('v')
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let rest = rest.strip_suffix("-modded").unwrap_or(rest);
        let tagged = rest.is_empty() || rest.starts_with("rc");
        match tagged && v <= STRTOULL_UNTIL {
            true => Numbers::Strtoull,
            false => Numbers::Digits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_releases_up_to_v26_06_read_numbers_with_strtoull() {
        for (name, numbers) in [
            ("v26.06.6", Numbers::Strtoull),
            ("v26.06.6-modded", Numbers::Strtoull),
            ("v25.09.3", Numbers::Strtoull),
            ("v26.06", Numbers::Strtoull),
            ("v26.06rc2", Numbers::Strtoull),
            ("v26.06-258-g090f4b0", Numbers::Digits),
            ("v26.06-258-g090f4b0-modded", Numbers::Digits),
            ("v26.06-standin", Numbers::Digits),
            ("v26.09", Numbers::Digits),
        ] {
            assert_eq!(Release::parse(Some(name)).numbers(), numbers, "{name}");
        }
        assert_eq!(Release::parse(None).numbers(), Numbers::Digits);
    }

    #[test]
    fn releases_before_v25_12_have_no_hook_filters() {
        for (name, filters) in [
            ("v25.09.3", false),
            ("v24.11.2", false),
            ("v25.12", true),
            ("v25.12.1", true),
            ("v26.06-258-g090f4b0", true),
            ("v26.04.2-modded", true),
            ("v9.9", false),
        ] {
            assert_eq!(
                Release::parse(Some(name)).has_hook_filters(),
                filters,
                "{name}"
            );
        }
        assert_eq!(Release::parse(Some("v25.09.3")).version, Some((25, 9)));
        assert!(Release::parse(None).has_hook_filters());
        assert!(Release::parse(Some("garbage")).has_hook_filters());
    }
}
