//! Mailbox PINs are stored as Argon2id PHC strings, never in clear.

use anyhow::{anyhow, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub fn hash(pin: &str) -> Result<String> {
    if pin.is_empty() || pin.len() > 16 || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(anyhow!("a PIN must be 1 to 16 digits"));
    }
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow!("salt: {e}"))?;
    Ok(Argon2::default().hash_password(pin.as_bytes(), &salt).map_err(|e| anyhow!("hashing PIN: {e}"))?.to_string())
}

pub fn verify(pin: &str, stored: &str) -> bool {
    PasswordHash::new(stored).map(|h| Argon2::default().verify_password(pin.as_bytes(), &h).is_ok()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_verifies_and_rejects() {
        let h = super::hash("4321").unwrap();
        assert!(!h.contains("4321"));
        assert!(super::verify("4321", &h));
        assert!(!super::verify("1234", &h));
        assert!(super::hash("12a4").is_err());
    }
}
