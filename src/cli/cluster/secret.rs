//! Cluster secrets that `msa cluster up` generates.

/// 32 random bytes from the OS, hex-encoded (64 characters: safe to paste
/// into a shell and an environment variable).
///
/// # Errors
/// When the OS random source fails.
pub(super) fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random bytes from the OS: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_64_hex_chars_and_differ() {
        let (a, b) = (super::generate().unwrap(), super::generate().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
