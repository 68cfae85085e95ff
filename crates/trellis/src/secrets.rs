//! The server secrets (password pepper, key-encryption key, internal token). All-in-one, missing
//! ones are generated once into `<data_dir>/secrets.toml` (mode 0600) so that zero configuration
//! works and restarts keep them. When services are split across processes they must share the
//! same secrets, so each must be configured explicitly and start-up names what is missing.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use users::pii::PiiKeys;

use crate::config::{Secret, Settings};

pub struct Secrets {
    pub pepper: Vec<u8>,
    pub key_encryption_key: [u8; 32],
    pub internal_token: String,
    /// The personal-data keys (users service): `None` in a process that does not run it.
    pub pii: Option<Arc<PiiKeys>>,
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct Stored {
    pepper: Option<String>,
    key_encryption_key: Option<String>,
    internal_token: Option<String>,
    pii_keys: Option<String>,
    pii_index_key: Option<String>,
}

fn decode(name: &str, value: &str) -> anyhow::Result<Vec<u8>> {
    STANDARD.decode(value.trim()).map_err(|_| anyhow::anyhow!("{name} must be base64"))
}

/// The secrets of this process. `users_local`: it runs the users service, which needs the
/// personal-data keys.
pub fn resolve(settings: &Settings, all_in_one: bool, users_local: bool) -> anyhow::Result<Secrets> {
    let secret = |s: &Option<Secret>| s.as_ref().map(|Secret(s)| s.clone());
    let given = Stored {
        pepper: secret(&settings.auth.pepper),
        key_encryption_key: secret(&settings.auth.key_encryption_key),
        internal_token: secret(&settings.internal_token),
        pii_keys: secret(&settings.pii.keys),
        pii_index_key: secret(&settings.pii.index_key),
    };
    let stored = if all_in_one {
        fill_from_file(&settings.data_dir.join("secrets.toml"), given)?
    } else {
        let missing: Vec<&str> = [
            ("auth.pepper (TRELLIS_AUTH__PEPPER)", given.pepper.is_none()),
            ("auth.key_encryption_key (TRELLIS_AUTH__KEY_ENCRYPTION_KEY)", given.key_encryption_key.is_none()),
            ("internal_token (TRELLIS_INTERNAL_TOKEN)", given.internal_token.is_none()),
            ("pii.keys (TRELLIS_PII__KEYS)", users_local && given.pii_keys.is_none()),
            ("pii.index_key (TRELLIS_PII__INDEX_KEY)", users_local && given.pii_index_key.is_none()),
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
    let pii = match (users_local, &stored.pii_keys, &stored.pii_index_key) {
        (true, Some(keys), Some(index)) => Some(Arc::new(PiiKeys::from_config(keys, index)?)),
        _ => None,
    };
    Ok(Secrets { pepper, key_encryption_key: kek, internal_token, pii })
}

/// Completes `given` from the secrets file, generating and saving whatever is still missing.
/// Only generated values are saved: a secret given by configuration stays where it was given.
fn fill_from_file(path: &Path, given: Stored) -> anyhow::Result<Stored> {
    let saved: Stored = match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not valid: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    let random = || STANDARD.encode(platform::crypto::random_bytes::<32>());
    // Each secret: the configured one, else the saved one, else a new one; what is saved is
    // what was saved before plus what was generated now.
    let choose =
        |given: &Option<String>, saved: &Option<String>, new: &dyn Fn() -> String| -> (String, Option<String>) {
            match (given, saved) {
                (Some(g), s) => (g.clone(), s.clone()),
                (None, Some(s)) => (s.clone(), Some(s.clone())),
                (None, None) => {
                    let v = new();
                    (v.clone(), Some(v))
                }
            }
        };
    let (pepper, save_pepper) = choose(&given.pepper, &saved.pepper, &random);
    let (kek, save_kek) = choose(&given.key_encryption_key, &saved.key_encryption_key, &random);
    let (token, save_token) = choose(&given.internal_token, &saved.internal_token, &platform::crypto::random_token);
    let (pii_keys, save_pii_keys) = choose(&given.pii_keys, &saved.pii_keys, &|| format!("1:{}", random()));
    let (pii_index, save_pii_index) = choose(&given.pii_index_key, &saved.pii_index_key, &random);
    let to_save = Stored {
        pepper: save_pepper,
        key_encryption_key: save_kek,
        internal_token: save_token,
        pii_keys: save_pii_keys,
        pii_index_key: save_pii_index,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(path, &toml::to_string(&to_save)?)?;
    Ok(Stored {
        pepper: Some(pepper),
        key_encryption_key: Some(kek),
        internal_token: Some(token),
        pii_keys: Some(pii_keys),
        pii_index_key: Some(pii_index),
    })
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
        let a = resolve(&settings, true, true).unwrap();
        let b = resolve(&settings, true, true).unwrap();
        assert_eq!(a.pepper, b.pepper);
        assert_eq!(a.key_encryption_key, b.key_encryption_key);
        assert_eq!(a.internal_token, b.internal_token);
        let (ka, kb) = (a.pii.unwrap(), b.pii.unwrap());
        assert_eq!(ka.email_index("ada@example.com"), kb.email_index("ada@example.com"), "the index key is kept");
        let (dk, wrapped) = ka.new_data_key(uuid::Uuid::nil());
        let sealed = dk.seal(users::pii::Column::Name, b"Ada");
        let again = kb.unwrap(uuid::Uuid::nil(), &wrapped).unwrap();
        assert_eq!(again.open(users::pii::Column::Name, &sealed).unwrap(), b"Ada", "the key-encryption keys are kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("secrets.toml")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn split_services_must_be_given_every_secret() {
        let err = resolve(&Settings::default(), false, true).err().unwrap().to_string();
        assert!(err.contains("auth.pepper") && err.contains("internal_token") && err.contains("pii.keys"), "{err}");
        let err = resolve(&Settings::default(), false, false).err().unwrap().to_string();
        assert!(!err.contains("pii."), "a process without the users service needs no personal-data keys: {err}");
    }
}
