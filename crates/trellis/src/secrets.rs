//! The server secrets (password pepper, key-encryption key, internal token). All-in-one, missing
//! ones are generated once into `<data_dir>/secrets.toml` (mode 0600) so that zero configuration
//! works and restarts keep them. When services are split across processes they must share the
//! same secrets, so each must be configured explicitly and start-up names what is missing.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::config::{Secret, Settings};

pub struct Secrets {
    pub pepper: Vec<u8>,
    pub key_encryption_key: [u8; 32],
    pub internal_token: String,
}

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    pepper: Option<String>,
    key_encryption_key: Option<String>,
    internal_token: Option<String>,
}

fn decode(name: &str, value: &str) -> anyhow::Result<Vec<u8>> {
    STANDARD.decode(value.trim()).map_err(|_| anyhow::anyhow!("{name} must be base64"))
}

pub fn resolve(settings: &Settings, all_in_one: bool) -> anyhow::Result<Secrets> {
    let given = Stored {
        pepper: settings.auth.pepper.as_ref().map(|Secret(s)| s.clone()),
        key_encryption_key: settings.auth.key_encryption_key.as_ref().map(|Secret(s)| s.clone()),
        internal_token: settings.internal_token.as_ref().map(|Secret(s)| s.clone()),
    };
    let stored = if all_in_one {
        fill_from_file(&settings.data_dir.join("secrets.toml"), given)?
    } else {
        let missing: Vec<&str> = [
            ("auth.pepper (TRELLIS_AUTH__PEPPER)", given.pepper.is_none()),
            ("auth.key_encryption_key (TRELLIS_AUTH__KEY_ENCRYPTION_KEY)", given.key_encryption_key.is_none()),
            ("internal_token (TRELLIS_INTERNAL_TOKEN)", given.internal_token.is_none()),
        ]
        .into_iter()
        .filter_map(|(n, m)| m.then_some(n))
        .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "services split across processes must share their secrets; set {}",
            missing.join(", ")
        );
        given
    };
    let pepper = decode("auth.pepper", stored.pepper.as_deref().unwrap_or_default())?;
    anyhow::ensure!(pepper.len() >= 32, "auth.pepper must hold at least 32 bytes");
    let kek: [u8; 32] = decode("auth.key_encryption_key", stored.key_encryption_key.as_deref().unwrap_or_default())?
        .try_into()
        .map_err(|_| anyhow::anyhow!("auth.key_encryption_key must hold exactly 32 bytes"))?;
    let internal_token = stored.internal_token.unwrap_or_default();
    anyhow::ensure!(internal_token.len() >= 32, "internal_token must be at least 32 characters");
    Ok(Secrets { pepper, key_encryption_key: kek, internal_token })
}

/// Completes `given` from the secrets file, generating and saving whatever is still missing.
fn fill_from_file(path: &Path, given: Stored) -> anyhow::Result<Stored> {
    let saved: Stored = match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not valid: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    let random = || STANDARD.encode(platform::crypto::random_bytes::<32>());
    let merged = Stored {
        pepper: given.pepper.clone().or(saved.pepper.clone()).or_else(|| Some(random())),
        key_encryption_key: given
            .key_encryption_key
            .clone()
            .or(saved.key_encryption_key.clone())
            .or_else(|| Some(random())),
        internal_token: given
            .internal_token
            .clone()
            .or(saved.internal_token.clone())
            .or_else(|| Some(platform::crypto::random_token())),
    };
    let to_save = Stored {
        pepper: saved.pepper.or(if given.pepper.is_none() { merged.pepper.clone() } else { None }),
        key_encryption_key: saved.key_encryption_key.or(if given.key_encryption_key.is_none() {
            merged.key_encryption_key.clone()
        } else {
            None
        }),
        internal_token: saved.internal_token.or(if given.internal_token.is_none() {
            merged.internal_token.clone()
        } else {
            None
        }),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(path, &toml::to_string(&to_save)?)?;
    Ok(merged)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_in_one_generates_once_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings { data_dir: dir.path().to_path_buf(), ..Settings::default() };
        let a = resolve(&settings, true).unwrap();
        let b = resolve(&settings, true).unwrap();
        assert_eq!(a.pepper, b.pepper);
        assert_eq!(a.key_encryption_key, b.key_encryption_key);
        assert_eq!(a.internal_token, b.internal_token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("secrets.toml")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn split_services_must_be_given_every_secret() {
        let err = resolve(&Settings::default(), false).err().unwrap().to_string();
        assert!(err.contains("auth.pepper") && err.contains("internal_token"), "{err}");
    }
}
