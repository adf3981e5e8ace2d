//! The four feature taps of pytorch-fid's Inception network (its `--dims` option).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};

/// A feature tap of the FID Inception network, named by its feature size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tap {
    /// After the first max pool (64 x 73 x 73), spatially averaged.
    D64,
    /// After the second max pool (192 x 35 x 35), spatially averaged.
    D192,
    /// After Mixed_6e, the input of the auxiliary classifier (768 x 17 x 17), spatially averaged.
    D768,
    /// The final average pool (2048): the usual FID features.
    D2048,
}

impl Tap {
    /// All four taps, shallowest first.
    pub const ALL: [Tap; 4] = [Tap::D64, Tap::D192, Tap::D768, Tap::D2048];
    /// The three taps the CIGN paper reports (FID64, FID192, FID768).
    pub const PAPER: [Tap; 3] = [Tap::D64, Tap::D192, Tap::D768];

    /// Feature size of the tap.
    pub fn dims(self) -> usize {
        match self {
            Tap::D64 => 64,
            Tap::D192 => 192,
            Tap::D768 => 768,
            Tap::D2048 => 2048,
        }
    }

    /// Index of the network block that ends at this tap (pytorch-fid's block index).
    pub fn block_index(self) -> usize {
        match self {
            Tap::D64 => 0,
            Tap::D192 => 1,
            Tap::D768 => 2,
            Tap::D2048 => 3,
        }
    }

    /// The tap with `dims` features.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] when `dims` is not 64, 192, 768 or 2048.
    pub fn from_dims(dims: usize) -> Result<Tap> {
        match dims {
            64 => Ok(Tap::D64),
            192 => Ok(Tap::D192),
            768 => Ok(Tap::D768),
            2048 => Ok(Tap::D2048),
            other => Err(MetricsError::invalid(
                "dims",
                format!(
                    "{other} is not a tap of the FID Inception network; use 64, 192, 768 or 2048"
                ),
            )),
        }
    }

    /// Parses a comma-separated list such as `64,192,768`, sorted and without duplicates.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] for an entry that is not a tap, or an empty list.
    pub fn parse_list(text: &str) -> Result<Vec<Tap>> {
        let mut taps = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            taps.push(part.parse::<Tap>()?);
        }
        if taps.is_empty() {
            return Err(MetricsError::invalid(
                "dims",
                format!("'{text}' names no tap"),
            ));
        }
        Ok(normalize(&taps))
    }
}

/// Sorted, deduplicated copy of `taps`.
pub fn normalize(taps: &[Tap]) -> Vec<Tap> {
    let mut out = taps.to_vec();
    out.sort();
    out.dedup();
    out
}

impl fmt::Display for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dims())
    }
}

impl FromStr for Tap {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Tap> {
        let dims: usize = s.trim().parse().map_err(|_| {
            MetricsError::invalid(
                "dims",
                format!("'{s}' is not a number (use 64, 192, 768 or 2048)"),
            )
        })?;
        Tap::from_dims(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_rejects_unknown_sizes() {
        assert_eq!(
            Tap::parse_list("768, 64,64,2048").unwrap(),
            vec![Tap::D64, Tap::D768, Tap::D2048]
        );
        assert!(Tap::parse_list("100").is_err());
        assert!(Tap::parse_list("abc").is_err());
        assert!(Tap::parse_list(",").is_err());
        for tap in Tap::ALL {
            assert_eq!(Tap::from_dims(tap.dims()).unwrap(), tap);
        }
    }
}
