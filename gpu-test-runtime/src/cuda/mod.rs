//! Everything that calls into CUDA libraries, in layers: loading a library and resolving its
//! symbols (`library`), the raw driver table (`sys`), checked calls that map every result code
//! (`calls`, `error`), events, NVRTC's version, and the driver's release from NVML. All of
//! gpu-test's `unsafe` code is here (and in `util::os`).
//!
//! Results stay `i32` until `error` names them: cudarc's `CUresult` is a Rust enum, for which a
//! code its bindings do not know is undefined behaviour.
#![allow(unsafe_code)]

pub(crate) mod calls;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod guard;
pub(crate) mod library;
pub(crate) mod nvml;
pub(crate) mod nvrtc;
pub(crate) mod sys;
pub(crate) mod version;
