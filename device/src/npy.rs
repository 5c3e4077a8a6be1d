//! NumPy `.npy` reading and writing for raw tensors.
//!
//! Format (numpy `lib/format.py`): magic `\x93NUMPY`, major and minor version bytes, a header
//! length (u16 LE in v1, u32 LE in v2 and v3), then a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and a
//! newline, then the raw data. Reading accepts little-endian (or byte-order-free) `f4`, `f8`,
//! `f2`, `i8`, `i4`, `u1` and `i1`, converting to f32; C order only. Writing produces
//! little-endian f32, v1 (v2 only when the header would not fit v1's u16 length).

use crate::tensor::checked_len;
use crate::{Error, Result, Tensor};
use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy pads the header so the data starts on a multiple of this.
const ALIGN: usize = 64;
/// Largest header accepted (numpy itself refuses headers above 10 000 bytes by default).
const MAX_HEADER: usize = 1 << 20;

fn bad(reason: impl Into<String>) -> Error {
    Error::Npy(reason.into())
}

/// Element types read from `.npy` files, converted to f32 on load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DType {
    F32,
    F64,
    F16,
    I64,
    I32,
    U8,
    I8,
}

impl DType {
    fn parse(descr: &str) -> Result<DType> {
        let (order, kind) = match descr.as_bytes().first() {
            Some(b'<' | b'>' | b'|' | b'=') => descr.split_at(1),
            _ => ("", descr),
        };
        let dtype = match kind {
            "f4" => DType::F32,
            "f8" => DType::F64,
            "f2" => DType::F16,
            "i8" => DType::I64,
            "i4" => DType::I32,
            "u1" => DType::U8,
            "i1" => DType::I8,
            _ => return Err(bad(unsupported_kind(descr, kind))),
        };
        let little = match order {
            "<" => true,
            "=" => cfg!(target_endian = "little"),
            // Byte order does not apply to single bytes.
            _ => dtype.size() == 1,
        };
        if !little {
            return Err(bad(format!(
                "dtype '{descr}' is big-endian; only little-endian data is supported \
                 (save x.astype(x.dtype.newbyteorder('<')))"
            )));
        }
        Ok(dtype)
    }

    fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::U8 | DType::I8 => 1,
        }
    }

    fn to_f32(self, b: &[u8]) -> f32 {
        let a = |n: usize| -> [u8; 8] {
            let mut x = [0; 8];
            x[..n].copy_from_slice(&b[..n]);
            x
        };
        match self {
            DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            DType::F64 => f64::from_le_bytes(a(8)) as f32,
            DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::I64 => i64::from_le_bytes(a(8)) as f32,
            DType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            DType::U8 => f32::from(b[0]),
            DType::I8 => f32::from(b[0] as i8),
        }
    }
}

/// Why a dtype is not read, with what to do instead.
fn unsupported_kind(descr: &str, kind: &str) -> String {
    let what = match kind.chars().next() {
        Some('b') => "boolean arrays are not supported",
        Some('O') => "object arrays (pickled Python objects) are not supported",
        Some('c') => "complex arrays are not supported",
        Some('U' | 'S' | 'a') => "string arrays are not supported",
        Some('M' | 'm') => "datetime arrays are not supported",
        Some('V') => "structured (void) arrays are not supported",
        _ => "this dtype is not supported",
    };
    format!(
        "dtype '{descr}': {what}; save a numeric array, e.g. np.save(path, \
         np.asarray(x, dtype=np.float32)) (read: float32/64/16, int64/32/8, uint8)"
    )
}

/// Largest `.npy` file read: the largest tensor a graph takes, as f64, plus the header.
const MAX_FILE_BYTES: u64 = 8 * crate::shape::MAX_ELEMENTS + MAX_HEADER as u64 + 16;

/// Reads a `.npy` file into an f32 tensor.
pub fn read(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        context: format!("reading {}", path.display()),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(Error::TooLarge {
            what: format!("{} (bytes)", path.display()),
            found: len,
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    from_bytes(&bytes).map_err(|e| match e {
        Error::Npy(reason) => Error::Npy(format!("{}: {reason}", path.display())),
        other => other,
    })
}

/// Parses `.npy` bytes into an f32 tensor.
pub fn from_bytes(bytes: &[u8]) -> Result<Tensor> {
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(bad("not a .npy file (bad magic)"));
    }
    let (header_len, header_start) = match bytes[6] {
        1 => {
            let b = bytes
                .get(8..10)
                .ok_or_else(|| bad("truncated header length"))?;
            (usize::from(u16::from_le_bytes([b[0], b[1]])), 10)
        }
        2 | 3 => {
            let b = bytes
                .get(8..12)
                .ok_or_else(|| bad("truncated header length"))?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(bad(format!("unsupported format version {v}"))),
    };
    if header_len > MAX_HEADER {
        return Err(bad(format!("header of {header_len} bytes is too large")));
    }
    let header = bytes
        .get(header_start..header_start + header_len)
        .ok_or_else(|| {
            bad(format!(
                "header of {header_len} bytes runs past the end of the file"
            ))
        })?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not UTF-8"))?;
    let (dtype, fortran, shape) = parse_header(header)?;
    if fortran {
        return Err(bad(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray",
        ));
    }
    let n = checked_len(&shape)?;
    if n as u64 > crate::shape::MAX_ELEMENTS {
        return Err(Error::TooLarge {
            what: format!("element count of the .npy shape {shape:?}"),
            found: n as u64,
            limit: crate::shape::MAX_ELEMENTS,
        });
    }
    let data = &bytes[header_start + header_len..];
    let expected = n
        .checked_mul(dtype.size())
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    if data.len() != expected {
        return Err(bad(format!(
            "shape {shape:?} of {dtype:?} needs {expected} data bytes, file has {}",
            data.len()
        )));
    }
    Tensor::new(
        shape,
        data.chunks_exact(dtype.size())
            .map(|b| dtype.to_f32(b))
            .collect(),
    )
}

/// Writes `t` as a little-endian f32 `.npy` file, atomically ([`crate::outfile`]).
pub fn write(path: impl AsRef<Path>, t: &Tensor) -> Result<()> {
    crate::outfile::write(path, &to_bytes(t))
}

/// Serialises `t` as a little-endian f32 `.npy` file.
pub fn to_bytes(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape.as_slice() {
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // v1 stores the header length in a u16; larger headers need v2.
    let (version, prefix) = if 10 + dict.len() < usize::from(u16::MAX) {
        (1u8, 10)
    } else {
        (2, 12)
    };
    let padded = (prefix + dict.len() + 1).next_multiple_of(ALIGN);
    dict.extend(std::iter::repeat_n(' ', padded - prefix - dict.len() - 1));
    dict.push('\n');
    let mut out = Vec::with_capacity(padded + 4 * t.data.len());
    out.extend(MAGIC);
    out.extend([version, 0]);
    match version {
        1 => out.extend((dict.len() as u16).to_le_bytes()),
        _ => out.extend((dict.len() as u32).to_le_bytes()),
    }
    out.extend(dict.as_bytes());
    out.extend(t.data.iter().flat_map(|x| x.to_le_bytes()));
    out
}

/// Parses numpy's header dict: `descr`, `fortran_order` and `shape`, in any order.
fn parse_header(h: &str) -> Result<(DType, bool, Vec<usize>)> {
    let mut p = Parser {
        s: h.trim_end().as_bytes(),
        i: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{')?;
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.expect(b':')?;
        match key.as_str() {
            "descr" if p.peek() == Some(b'[') => {
                return Err(bad(unsupported_kind("[...]", "V")));
            }
            "descr" => descr = Some(DType::parse(&p.string()?)?),
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            other => return Err(bad(format!("unexpected header key '{other}'"))),
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(bad("junk after the header dict"));
    }
    match (descr, fortran, shape) {
        (Some(d), Some(f), Some(s)) => Ok((d, f, s)),
        _ => Err(bad("header lacks descr, fortran_order or shape")),
    }
}

/// A tiny cursor over the header's Python-literal subset.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        let hit = self.s.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(bad(format!("malformed header: expected '{}'", c as char)))
        }
    }

    fn string(&mut self) -> Result<String> {
        self.skip_ws();
        let quote = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(bad("malformed header: expected a string")),
        };
        let start = self.i + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == quote)
            .ok_or_else(|| bad("unterminated string"))?;
        self.i = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn boolean(&mut self) -> Result<bool> {
        self.skip_ws();
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(value);
            }
        }
        Err(bad("malformed header: expected True or False"))
    }

    fn tuple(&mut self) -> Result<Vec<usize>> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let digits = self.s[self.i..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 || dims.len() >= 32 {
                return Err(bad("malformed shape"));
            }
            let text = std::str::from_utf8(&self.s[self.i..self.i + digits])
                .map_err(|_| bad("malformed shape"))?;
            dims.push(
                text.parse()
                    .map_err(|_| bad(format!("shape dimension {text} is too large")))?,
            );
            self.i += digits;
            // numpy writes an optional trailing 'L' on Python 2 longs.
            self.eat(b'L');
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64_bytes() {
        for shape in [vec![], vec![3], vec![2, 3, 4]] {
            let t = Tensor::zeros(shape).unwrap();
            let bytes = to_bytes(&t);
            assert_eq!((bytes.len() - 4 * t.data.len()) % ALIGN, 0);
            assert_eq!(bytes[bytes.len() - 4 * t.data.len() - 1], b'\n');
        }
    }

    #[test]
    fn parses_numpy_header_variants() {
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }   \n";
        assert_eq!(parse_header(h).unwrap(), (DType::F64, false, vec![2, 3]));
        let h = "{'shape': (5,), 'fortran_order': True, 'descr': '|u1'}";
        assert_eq!(parse_header(h).unwrap(), (DType::U8, true, vec![5]));
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (), }";
        assert_eq!(parse_header(h).unwrap(), (DType::I64, false, vec![]));
    }
}
