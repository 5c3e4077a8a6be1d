//! `.npy` reading and writing: round trips, files written by numpy itself, hostile headers.

use qvit_device::{Error, Tensor, npy};
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn round_trip_keeps_shape_and_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let special = [
        0.0,
        -0.0,
        1.5,
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::INFINITY,
        -1e-30,
    ];
    for shape in [vec![], vec![7], vec![1, 7], vec![7, 1, 1]] {
        let t = Tensor::new(shape.clone(), special.to_vec())
            .unwrap_or_else(|_| Tensor::new(shape, vec![3.25]).unwrap());
        let path = dir.join("t.npy");
        npy::write(&path, &t).unwrap();
        let back = npy::read(&path).unwrap();
        assert_eq!(back.shape, t.shape);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.data), bits(&t.data));
    }
}

#[test]
fn huge_shape_header_switches_to_v2() {
    // A rank-1 tensor cannot make a 64 KiB header, so test the bytes directly: v1 for normal
    // headers, and the reader accepts the same header in v2 and v3 framing.
    let t = Tensor::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let v1 = npy::to_bytes(&t);
    assert_eq!(&v1[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([v1[8], v1[9]]) as usize;
    for major in [2u8, 3] {
        let mut v = b"\x93NUMPY".to_vec();
        v.extend([major, 0]);
        v.extend((hlen as u32).to_le_bytes());
        v.extend(&v1[10..]);
        assert_eq!(npy::from_bytes(&v).unwrap(), t);
    }
}

/// A python that has numpy: `QVIT_PYTHON` when set, else `python3` on PATH, else Debian's
/// `/usr/bin/python3` (where the python3-numpy package that scripts/setup.sh installs puts it;
/// the first `python3` on PATH may be another CPython, without numpy). None is a failure, not a
/// skip: the interop test must run.
fn python_with_numpy() -> PathBuf {
    let candidates: Vec<PathBuf> = (std::env::var_os("QVIT_PYTHON").map(PathBuf::from))
        .into_iter()
        .chain(["python3", "/usr/bin/python3"].map(PathBuf::from))
        .collect();
    let found = candidates.iter().find(|py| {
        Command::new(py)
            .args(["-c", "import numpy"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    found.cloned().unwrap_or_else(|| {
        panic!(
            "no python with numpy among {candidates:?}: apt-get install python3-numpy \
             (scripts/setup.sh does), or set QVIT_PYTHON to a python that has numpy"
        )
    })
}

fn numpy(py: &Path, script: &str) {
    let out = Command::new(py).args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reads_files_written_by_numpy_and_numpy_reads_ours() {
    let py = python_with_numpy();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = dir.display();
    // Values exactly representable in every dtype, so the f32 conversion is exact.
    numpy(
        &py,
        &format!(
            "import numpy as np
x = np.arange(24).reshape(2, 3, 4) - 5
for dt in ['f4', 'f8', 'f2', 'i8', 'i4', 'i1']:
    np.save('{d}/a_' + dt + '.npy', x.astype(dt))
np.save('{d}/a_u1.npy', (x + 5).astype('u1'))
np.save('{d}/scalar.npy', np.float32(2.5))
np.save('{d}/fortran.npy', np.asfortranarray(x.astype('f4')))
np.save('{d}/big.npy', x.astype('>f4'))
for v in [2, 3]:
    with open(f'{d}/v{{v}}.npy', 'wb') as f:
        np.lib.format.write_array(f, x.astype('f4'), version=(v, 0))
"
        ),
    );
    let want: Vec<f32> = (0..24).map(|i| (i - 5) as f32).collect();
    for dt in ["f4", "f8", "f2", "i8", "i4", "i1", "v2", "v3"] {
        let name = if dt.starts_with('v') {
            format!("{dt}.npy")
        } else {
            format!("a_{dt}.npy")
        };
        let t = npy::read(dir.join(&name)).unwrap();
        assert_eq!(t.shape, [2, 3, 4], "{name}");
        assert_eq!(t.data, want, "{name}");
    }
    let t = npy::read(dir.join("a_u1.npy")).unwrap();
    assert_eq!(t.data, (0..24).map(|i| i as f32).collect::<Vec<_>>());
    let s = npy::read(dir.join("scalar.npy")).unwrap();
    assert_eq!(
        (s.shape.as_slice(), s.data.as_slice()),
        (&[][..], &[2.5][..])
    );
    assert!(
        matches!(npy::read(dir.join("fortran.npy")), Err(Error::Npy(m)) if m.contains("Fortran"))
    );
    assert!(
        matches!(npy::read(dir.join("big.npy")), Err(Error::Npy(m)) if m.contains("little-endian"))
    );

    // And numpy reads what we write, bit for bit.
    let ours = Tensor::new(vec![3, 2], vec![0.1, -2.0, 3e-8, 4.0, 5.5, -6.25]).unwrap();
    npy::write(dir.join("ours.npy"), &ours).unwrap();
    numpy(
        &py,
        &format!(
            "import numpy as np
y = np.load('{d}/ours.npy')
assert y.dtype == np.float32 and y.shape == (3, 2) and not np.isfortran(y), (y.dtype, y.shape)
assert (y == np.array([[0.1, -2.0], [3e-8, 4.0], [5.5, -6.25]], dtype=np.float32)).all(), y
"
        ),
    );
}

fn v1(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend((header.len() as u16).to_le_bytes());
    v.extend(header.as_bytes());
    v.extend(data);
    v
}

#[test]
fn hostile_headers_are_errors() {
    let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    assert!(npy::from_bytes(&v1(ok, &[0; 8])).is_ok());
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        b"\x93NUMPY".to_vec(),
        b"\x93NUMPY\x01\x00\xff".to_vec(),
        b"\x93NUMPX\x01\x00\x00\x00".to_vec(),
        b"\x93NUMPY\x04\x00\x00\x00".to_vec(),
        // Header length past the end of the file, also as a huge v2 length.
        b"\x93NUMPY\x01\x00\xff\xff{".to_vec(),
        b"\x93NUMPY\x02\x00\xff\xff\xff\xff{".to_vec(),
        // Data shorter and longer than the shape.
        v1(ok, &[0; 7]),
        v1(ok, &[0; 9]),
        // Element count overflow, and sizes that fit usize but not the data.
        v1(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
            &[],
        ),
        v1(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }",
            &[],
        ),
        v1(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
            &[],
        ),
        // Malformed dicts.
        v1("{'descr': '<f4', 'fortran_order': False}", &[0; 4]),
        v1(
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }",
            &[0; 4],
        ),
        v1(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
            &[0; 4],
        ),
        v1(
            "{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        ),
        v1(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
            &[0; 4],
        ),
        v1(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } trailing",
            &[0; 4],
        ),
        v1(
            "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        ),
        v1(
            "{'descr': '', 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        ),
        v1(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }",
            &[0; 4],
        ),
        {
            let mut v = v1(ok, &[0; 8]);
            v[12] = 0xff; // not UTF-8
            v
        },
    ];
    for (i, bytes) in cases.iter().enumerate() {
        assert!(npy::from_bytes(bytes).is_err(), "case {i} should fail");
    }
}
