//! Check ids as values of `--only`, `--skip` and `explain ID`: any string is accepted here
//! (`checks::select` and `explain` judge it, with a "did you mean"), but the catalogue's
//! ids and families are advertised as the argument's possible values, so clap_complete
//! writes them into every shell's completion script with the check titles as descriptions.

use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};

use crate::checks;

/// Which values a [`CheckIds`] argument advertises.
#[derive(Debug, Clone, Copy)]
pub enum Offer {
    /// Ids and families (`--only`, `--skip`).
    Selectors,
    /// Ids alone (`explain`).
    Ids,
}

/// The value parser of an argument that names checks.
#[derive(Debug, Clone, Copy)]
pub struct CheckIds(pub Offer);

fn id_value(id: &'static str) -> PossibleValue {
    let title = checks::catalogue::doc(id).map(|d| d.title.clone()).unwrap_or_default();
    PossibleValue::new(id).help(title)
}

impl TypedValueParser for CheckIds {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        let ids = checks::CHECKS.iter().map(|c| id_value(c.id()));
        let families = checks::families()
            .into_iter()
            .map(|f| PossibleValue::new(f).help(format!("every {f}.* check")));
        Some(match self.0 {
            Offer::Ids => Box::new(ids),
            Offer::Selectors => Box::new(families.chain(ids)),
        })
    }
}
