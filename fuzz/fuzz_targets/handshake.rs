//! The handshake's state machines on arbitrary frames
//! (`msa_runtime::fuzzing::handshake`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    msa_runtime::fuzzing::handshake(data);
});
