//! Registering telemetry commands (`/espgw/...`) and filling their replies.
//!
//! DPDK 22.11 limits: string values and names are at most 127 bytes
//! (`RTE_TEL_MAX_STRING_LEN` incl. NUL), names may only use
//! `[A-Za-z0-9_/]`, and string values must be ASCII; we validate names and
//! sanitize values ourselves.

use std::ffi::{c_char, c_int, CStr, CString};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::sys;

/// Signature of a telemetry command callback: `(cmd, params, reply) -> rc`.
pub type Handler = extern "C" fn(*const c_char, *const c_char, *mut sys::rte_tel_data) -> c_int;

/// Longest string (in bytes, without NUL) telemetry stores untruncated.
pub const MAX_STRING_LEN: usize = sys::RTE_TEL_MAX_STRING_LEN as usize - 1;

/// Longest reply made with [`TelData::string`], without NUL.
pub const MAX_SINGLE_STRING_LEN: usize = sys::RTE_TEL_MAX_SINGLE_STRING_LEN as usize - 1;

/// Registers `cmd` (must start with `/`). Works before or after EAL init.
/// `handler` should wrap its body in [`respond`] so it never panics into C.
pub fn register(cmd: &'static CStr, help: &'static CStr, handler: Handler) -> Result<()> {
    // SAFETY: both strings are 'static and NUL-terminated; the handler is a
    // plain function pointer valid for the whole program.
    let ret =
        unsafe { sys::rte_telemetry_register_cmd(cmd.as_ptr(), Some(handler), help.as_ptr()) };
    Error::check("rte_telemetry_register_cmd", ret)
}

/// Runs `f` as the body of a telemetry [`Handler`] and returns the value the
/// handler must return: 0 on success, a negative errno on error, -1 if `f`
/// panicked. `params` is given as `""` when the client sent none.
///
/// # Safety
/// `params` and `d` must be the arguments DPDK passed to the handler.
pub unsafe fn respond<F>(params: *const c_char, d: *mut sys::rte_tel_data, f: F) -> c_int
where
    F: FnOnce(&str, &mut TelData<'_>) -> Result<()>,
{
    // SAFETY: the caller passes DPDK's reply object, valid for this call.
    let Some(mut data) = (unsafe { TelData::from_raw(d) }) else {
        return -libc::EINVAL;
    };
    let params = if params.is_null() {
        ""
    } else {
        // SAFETY: DPDK passes a NUL-terminated string valid for this call.
        match unsafe { CStr::from_ptr(params) }.to_str() {
            Ok(p) => p,
            Err(_) => return -libc::EINVAL,
        }
    };
    match panic::catch_unwind(AssertUnwindSafe(|| f(params, &mut data))) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => -e.errno(),
        Err(_) => -1,
    }
}

/// A telemetry reply object (or container) being filled.
#[derive(Debug)]
pub struct TelData<'a> {
    ptr: NonNull<sys::rte_tel_data>,
    _reply: PhantomData<&'a mut sys::rte_tel_data>,
}

impl<'a> TelData<'a> {
    /// Wraps the reply pointer handed to a telemetry callback.
    ///
    /// # Safety
    /// `d` must be NULL or a valid `rte_tel_data` not used elsewhere for `'a`.
    pub unsafe fn from_raw(d: *mut sys::rte_tel_data) -> Option<TelData<'a>> {
        NonNull::new(d).map(|ptr| TelData {
            ptr,
            _reply: PhantomData,
        })
    }

    fn raw(&mut self) -> *mut sys::rte_tel_data {
        self.ptr.as_ptr()
    }

    /// Makes the reply a dict (must precede `add_dict_*`).
    pub fn start_dict(&mut self) -> Result<()> {
        // SAFETY: valid reply object, exclusively borrowed.
        Error::check("rte_tel_data_start_dict", unsafe {
            sys::rte_tel_data_start_dict(self.raw())
        })
    }

    /// Makes the reply an array of u64 (must precede `add_array_u64`).
    pub fn start_array_u64(&mut self) -> Result<()> {
        self.start_array(sys::rte_tel_value_type_RTE_TEL_U64_VAL)
    }

    /// Makes the reply an array of int.
    pub fn start_array_int(&mut self) -> Result<()> {
        self.start_array(sys::rte_tel_value_type_RTE_TEL_INT_VAL)
    }

    /// Makes the reply an array of strings.
    pub fn start_array_string(&mut self) -> Result<()> {
        self.start_array(sys::rte_tel_value_type_RTE_TEL_STRING_VAL)
    }

    /// Makes the reply an array of containers.
    pub fn start_array_container(&mut self) -> Result<()> {
        self.start_array(sys::rte_tel_value_type_RTE_TEL_CONTAINER)
    }

    fn start_array(&mut self, ty: sys::rte_tel_value_type) -> Result<()> {
        // SAFETY: valid reply object; ty is one of DPDK's enum values.
        Error::check("rte_tel_data_start_array", unsafe {
            sys::rte_tel_data_start_array(self.raw(), ty)
        })
    }

    /// Makes the reply a single string (sanitized as in
    /// [`TelData::add_dict_string`], up to [`MAX_SINGLE_STRING_LEN`] bytes).
    pub fn string(&mut self, s: &str) -> Result<()> {
        let s = value_cstring(s, MAX_SINGLE_STRING_LEN);
        // SAFETY: valid reply object; DPDK copies the string.
        Error::check("rte_tel_data_string", unsafe {
            sys::rte_tel_data_string(self.raw(), s.as_ptr())
        })
    }

    pub fn add_dict_u64(&mut self, name: &str, v: u64) -> Result<()> {
        const OP: &str = "rte_tel_data_add_dict_u64";
        let name = name_cstring(OP, name)?;
        // SAFETY: valid reply object; DPDK copies the name.
        Error::check(OP, unsafe {
            sys::rte_tel_data_add_dict_u64(self.raw(), name.as_ptr(), v)
        })
    }

    pub fn add_dict_int(&mut self, name: &str, v: i32) -> Result<()> {
        const OP: &str = "rte_tel_data_add_dict_int";
        let name = name_cstring(OP, name)?;
        // SAFETY: valid reply object; DPDK copies the name.
        Error::check(OP, unsafe {
            sys::rte_tel_data_add_dict_int(self.raw(), name.as_ptr(), v)
        })
    }

    /// Adds a string value, cut at the first NUL, non-ASCII chars replaced
    /// by `?` (DPDK 22.11 cannot escape them) and truncated to
    /// [`MAX_STRING_LEN`] bytes.
    pub fn add_dict_string(&mut self, name: &str, value: &str) -> Result<()> {
        const OP: &str = "rte_tel_data_add_dict_string";
        let name = name_cstring(OP, name)?;
        let value = value_cstring(value, MAX_STRING_LEN);
        // SAFETY: valid reply object; DPDK copies both strings.
        Error::check(OP, unsafe {
            sys::rte_tel_data_add_dict_string(self.raw(), name.as_ptr(), value.as_ptr())
        })
    }

    /// Adds an array container under `name`; the reply takes ownership.
    pub fn add_dict_container(&mut self, name: &str, c: TelContainer) -> Result<()> {
        const OP: &str = "rte_tel_data_add_dict_container";
        let name = name_cstring(OP, name)?;
        // SAFETY: valid reply object and container; keep=0 hands the
        // container to DPDK only on success (checked below).
        let ret =
            unsafe { sys::rte_tel_data_add_dict_container(self.raw(), name.as_ptr(), c.ptr(), 0) };
        Error::check(OP, ret)?;
        c.release();
        Ok(())
    }

    pub fn add_array_u64(&mut self, v: u64) -> Result<()> {
        // SAFETY: valid reply object.
        Error::check("rte_tel_data_add_array_u64", unsafe {
            sys::rte_tel_data_add_array_u64(self.raw(), v)
        })
    }

    pub fn add_array_int(&mut self, v: i32) -> Result<()> {
        // SAFETY: valid reply object.
        Error::check("rte_tel_data_add_array_int", unsafe {
            sys::rte_tel_data_add_array_int(self.raw(), v)
        })
    }

    /// Adds a string (sanitized as in [`TelData::add_dict_string`]).
    pub fn add_array_string(&mut self, s: &str) -> Result<()> {
        let s = value_cstring(s, MAX_STRING_LEN);
        // SAFETY: valid reply object; DPDK copies the string.
        Error::check("rte_tel_data_add_array_string", unsafe {
            sys::rte_tel_data_add_array_string(self.raw(), s.as_ptr())
        })
    }

    /// Adds an array container; the reply takes ownership.
    pub fn add_array_container(&mut self, c: TelContainer) -> Result<()> {
        const OP: &str = "rte_tel_data_add_array_container";
        // SAFETY: as in add_dict_container.
        let ret = unsafe { sys::rte_tel_data_add_array_container(self.raw(), c.ptr(), 0) };
        Error::check(OP, ret)?;
        c.release();
        Ok(())
    }
}

/// A heap-allocated telemetry object to nest in a reply. Freed on drop
/// unless handed over with `add_*_container`. Derefs to [`TelData`] for
/// filling it.
#[derive(Debug)]
pub struct TelContainer(TelData<'static>);

impl TelContainer {
    fn alloc() -> Result<TelContainer> {
        // SAFETY: plain allocation; NULL means out of memory.
        let p = unsafe { sys::rte_tel_data_alloc() };
        // SAFETY: a fresh allocation owned only by the new container.
        unsafe { TelData::from_raw(p) }
            .map(TelContainer)
            .ok_or(Error::new("rte_tel_data_alloc", libc::ENOMEM))
    }

    /// An array of u64.
    pub fn new_array_u64() -> Result<TelContainer> {
        let mut c = TelContainer::alloc()?;
        c.start_array_u64()?;
        Ok(c)
    }

    pub fn new_array_int() -> Result<TelContainer> {
        let mut c = TelContainer::alloc()?;
        c.start_array_int()?;
        Ok(c)
    }

    pub fn new_array_string() -> Result<TelContainer> {
        let mut c = TelContainer::alloc()?;
        c.start_array_string()?;
        Ok(c)
    }

    /// A dict (22.11 nests dicts in dicts; arrays of containers are
    /// started with [`TelData::start_array_container`]).
    pub fn new_dict() -> Result<TelContainer> {
        let mut c = TelContainer::alloc()?;
        c.start_dict()?;
        Ok(c)
    }

    fn ptr(&self) -> *mut sys::rte_tel_data {
        self.0.ptr.as_ptr()
    }

    /// Ownership moved to DPDK: skip our free.
    fn release(self) {
        std::mem::forget(self);
    }
}

impl Deref for TelContainer {
    type Target = TelData<'static>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for TelContainer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for TelContainer {
    fn drop(&mut self) {
        // SAFETY: we still own the allocation (release() forgets self).
        unsafe { sys::rte_tel_data_free(self.ptr()) };
    }
}

/// Validates a dict key: 1..=127 bytes of `[A-Za-z0-9_/]`.
fn name_cstring(op: &'static str, name: &str) -> Result<CString> {
    if name.len() > MAX_STRING_LEN {
        return Err(Error::new(op, libc::E2BIG));
    }
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'/';
    if name.is_empty() || !name.bytes().all(valid) {
        return Err(Error::new(op, libc::EINVAL));
    }
    CString::new(name).map_err(|_| Error::new(op, libc::EINVAL))
}

/// Makes a string DPDK 22.11 can emit safely: cut at the first NUL, every
/// non-ASCII char replaced by `?` (its JSON escaper indexes a table with a
/// signed `char`, reading out of bounds and emitting garbage for bytes
/// >= 0x80), then truncated to `max` bytes.
fn value_cstring(s: &str, max: usize) -> CString {
    let bytes: Vec<u8> = s
        .chars()
        .take_while(|&c| c != '\0')
        .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
        .take(max)
        .collect();
    // SAFETY: take_while stopped before any NUL.
    unsafe { CString::from_vec_unchecked(bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_truncates_and_stays_ascii() {
        assert_eq!(value_cstring("abc", MAX_STRING_LEN).to_bytes(), b"abc");
        let long = "x".repeat(300);
        assert_eq!(
            value_cstring(&long, MAX_STRING_LEN).to_bytes().len(),
            MAX_STRING_LEN
        );
        assert_eq!(
            value_cstring("h\u{e9}llo \u{1f600}", 10).to_bytes(),
            b"h?llo ?"
        );
        let many = "\u{e9}".repeat(200);
        assert_eq!(
            value_cstring(&many, MAX_STRING_LEN).to_bytes(),
            "?".repeat(MAX_STRING_LEN).as_bytes()
        );
    }

    #[test]
    fn value_cuts_at_nul() {
        assert_eq!(value_cstring("ab\0cd", 10).to_bytes(), b"ab");
        assert_eq!(value_cstring("\0", 10).to_bytes(), b"");
    }

    #[test]
    fn names_are_validated() {
        assert!(name_cstring("t", "rx_packets").is_ok());
        assert!(name_cstring("t", "port/0/rx").is_ok());
        assert_eq!(name_cstring("t", "").unwrap_err().errno(), libc::EINVAL);
        assert_eq!(name_cstring("t", "a b").unwrap_err().errno(), libc::EINVAL);
        assert_eq!(name_cstring("t", "a\0b").unwrap_err().errno(), libc::EINVAL);
        assert_eq!(
            name_cstring("t", &"a".repeat(128)).unwrap_err().errno(),
            libc::E2BIG
        );
        assert!(name_cstring("t", &"a".repeat(127)).is_ok());
    }

    #[test]
    fn containers_work_without_eal() {
        // rte_tel_data_* are plain heap operations, usable without an EAL.
        let mut arr = TelContainer::new_array_u64().unwrap();
        arr.add_array_u64(1).unwrap();
        // Type mismatch inside DPDK is reported, not ignored.
        assert_eq!(arr.add_array_int(1).unwrap_err().errno(), libc::EINVAL);
        let mut dict = TelContainer::new_dict().unwrap();
        dict.add_dict_u64("n", 5).unwrap();
        dict.add_dict_container("arr", arr).unwrap();
        assert!(dict.add_dict_u64("bad name", 1).is_err());
        // Dicts nest in dicts (22.11 allows it).
        let mut outer = TelContainer::new_dict().unwrap();
        outer.add_dict_container("d", dict).unwrap();
        // A u64 array refuses a container (type mismatch); our Drop then
        // frees the refused container exactly once.
        let mut list = TelContainer::new_array_u64().unwrap();
        let nested = TelContainer::new_array_u64().unwrap();
        assert_eq!(
            list.add_array_container(nested).unwrap_err().errno(),
            libc::EINVAL
        );
    }

    extern "C" fn ok_handler(
        _: *const c_char,
        params: *const c_char,
        d: *mut sys::rte_tel_data,
    ) -> c_int {
        // SAFETY: arguments forwarded as received.
        unsafe {
            respond(params, d, |p, t| {
                t.start_dict()?;
                t.add_dict_string("params", p)
            })
        }
    }

    #[test]
    fn respond_maps_results_and_panics() {
        let mut c = TelContainer::alloc().unwrap();
        let d = c.raw();
        assert_eq!(ok_handler(std::ptr::null(), c"x".as_ptr(), d), 0);
        // SAFETY: d is a live reply object; params NULL is allowed.
        let rc = unsafe {
            respond(std::ptr::null(), d, |_, _| {
                Err(Error::new("t", libc::ENOENT))
            })
        };
        assert_eq!(rc, -libc::ENOENT);
        // SAFETY: as above.
        let rc = unsafe {
            respond(std::ptr::null(), d, |_, _| -> Result<()> {
                panic!("deliberate test panic")
            })
        };
        assert_eq!(rc, -1);
        // SAFETY: a NULL reply is rejected before use.
        let rc = unsafe { respond(std::ptr::null(), std::ptr::null_mut(), |_, _| Ok(())) };
        assert_eq!(rc, -libc::EINVAL);
    }

    #[test]
    fn register_rejects_bad_command() {
        assert!(register(c"no_slash", c"help", ok_handler).is_err());
    }
}
