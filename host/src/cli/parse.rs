//! Value parsers of the flags: numbers are bounded where they enter, and a refusal names the
//! value, the bound and what to give instead (clap prefixes the flag).

/// Most worker threads `--threads` takes: the limit of `qvit-run bench --threads` and of
/// `qvit deploy --threads`. More threads than cores slows the runtime down (its workers spin
/// while they wait), so [`threads_warning`] says so.
pub const MAX_THREADS: u32 = 1024;

/// A tensor shape given on the command line as `1,3,224,224`.
#[derive(Clone, Debug)]
pub struct Shape(pub Vec<usize>);

/// `--input-shape`: comma-separated dimensions, each at least 1, within the import's rank and
/// element bounds ([`qvit_host::import::check_input_shape`]).
pub fn shape(s: &str) -> Result<Shape, String> {
    let dims = s
        .split(',')
        .map(|d| {
            d.trim().parse::<usize>().map_err(|e| {
                format!("bad dimension {d:?} ({e}); give whole numbers, e.g. 1,3,224,224")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    qvit_host::import::check_input_shape(&dims, "the shape").map_err(|e| e.to_string())?;
    Ok(Shape(dims))
}

/// A count of images or steps: a whole number of at least 1.
pub fn count(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|e| format!("{e}; give a whole number of at least 1"))?;
    if n == 0 {
        return Err("the limit is zero; give at least 1 (0 would use nothing)".into());
    }
    Ok(n)
}

/// A finite number (`inf` and `nan` parse as floats but mean nothing as a budget or factor).
pub fn finite(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|e| format!("{e}; give a number, e.g. 3.5"))?;
    if !v.is_finite() {
        return Err(format!("{v} is not a finite number; give one, e.g. 3.5"));
    }
    Ok(v)
}

/// A note for more threads than this machine's cores, or `None`.
pub fn threads_warning(threads: u32) -> Option<String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (threads as usize > cores).then(|| {
        format!(
            "warning: --threads {threads} is more than the {cores} cores here; the runtime's \
             workers wait by spinning, so extra threads slow it down"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(shape("1, 3,224,224").unwrap().0, [1, 3, 224, 224]);
        for bad in [
            "1000000000,1,28,28",
            "18446744073709551615,1,28,28",
            "1,0,28,28",
            "1,2,3,4,5,6,7,8,9",
            "1,x",
            "",
        ] {
            assert!(shape(bad).is_err(), "{bad}");
        }
        assert_eq!(count("5"), Ok(5));
        assert!(count("0").unwrap_err().contains("zero"));
        assert!(count("-1").is_err());
        assert_eq!(finite("3.5"), Ok(3.5));
        for bad in ["inf", "-inf", "nan", "NaN", "four"] {
            assert!(finite(bad).is_err(), "{bad}");
        }
    }
}
