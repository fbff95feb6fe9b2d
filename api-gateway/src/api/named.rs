//! Body members whose refusal names them. serde's own message for a
//! `null` or a mistyped plain value (`invalid type: null, expected a
//! boolean`) does not say which member it was; [`Named`] puts the
//! member's name in front, so every 400 says what to fix.

use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer};

/// A member's name, as a type (one per member, see [`names!`]).
pub trait Name {
    const NAME: &'static str;
}

/// `T`, refused with its member's name when it does not parse.
#[derive(Debug, Clone, Copy)]
pub struct Named<T, N>(pub T, PhantomData<N>);

impl<'de, T: Deserialize<'de>, N: Name> Deserialize<'de> for Named<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d)
            .map(|v| Named(v, PhantomData))
            .map_err(|e| de::Error::custom(format!("{}: {e}", N::NAME)))
    }
}

/// Declares a [`Name`] per member: `names!(DryRun = "dry_run")`.
macro_rules! names {
    ($($t:ident = $s:literal),* $(,)?) => {
        $(
            #[derive(Debug, Clone, Copy)]
            pub struct $t;
            impl $crate::api::named::Name for $t {
                const NAME: &'static str = $s;
            }
        )*
    };
}
pub(crate) use names;

names!(DryRun = "dry_run");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_member() {
        let e = serde_json::from_str::<Named<bool, DryRun>>("null").expect_err("null");
        assert!(e.to_string().starts_with("dry_run: "), "{e}");
        let v: Named<bool, DryRun> = serde_json::from_str("true").expect("bool");
        assert!(v.0);
    }
}
