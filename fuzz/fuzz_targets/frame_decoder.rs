//! The frame decoder on arbitrary bytes (`msa_runtime::fuzzing::frame_decoder`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    msa_runtime::fuzzing::frame_decoder(data);
});
