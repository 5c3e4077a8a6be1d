//! tract's panics stopped at the import boundary. tract is a large library, and a hostile or
//! unusual model (or input shape) can reach one of its `unwrap`s or overflow checks; the user
//! must get an error naming the model and the step, not an abort with a backtrace hint.
//!
//! The panic message is captured by a process-wide hook installed once, which stays silent only
//! for panics on a thread currently inside [`guard`]; every other panic prints as before.

use anyhow::{Result, anyhow};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// `Some` while this thread runs inside [`guard`]: the captured panic messages.
    static CAUGHT: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Runs `f` (tract code); a panic inside becomes an error saying what was being done.
pub(super) fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    install_hook();
    let outer = CAUGHT.with(|c| c.borrow_mut().replace(Vec::new()));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let caught = CAUGHT.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    result.map_err(|payload| {
        let msg = caught
            .and_then(|v| v.into_iter().next())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        anyhow!(
            "tract crashed while {what} ({msg}); the model or its input shape is beyond what \
             tract can handle"
        )
    })?
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAUGHT.with(|c| match c.try_borrow_mut() {
                Ok(mut slot) => match slot.as_mut() {
                    Some(v) => {
                        let msg = info.payload_as_str().unwrap_or("no message");
                        v.push(match info.location() {
                            Some(l) => format!("{msg}, at {}:{}", l.file(), l.line()),
                            None => msg.to_string(),
                        });
                        true
                    }
                    None => false,
                },
                Err(_) => false,
            });
            if !captured {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let e = guard("testing", || -> Result<u8> {
            Ok(std::hint::black_box(None::<u8>).expect("index out of bounds"))
        })
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("tract crashed while testing"), "{text}");
        assert!(text.contains("index out of bounds"), "{text}");
        assert!(guard("testing", || Ok(7)).unwrap() == 7);
        assert!(guard("testing", || -> Result<()> { Err(anyhow!("plain")) }).is_err());
    }
}
