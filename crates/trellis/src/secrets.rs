//! The server secrets (password pepper, key-encryption key, personal-data keys) and the service
//! keys. All-in-one, missing secrets are generated once into `<data_dir>/secrets.toml` (mode
//! 0600) so that zero configuration works and restarts keep them. When services are split across
//! processes they must share the same secrets, so each must be configured explicitly and start-up
//! names what is missing.
//!
//! Service keys ([`service_keys`]) are not shared: each service has its own key pair, and a
//! process holds the private keys of the services it runs only. All-in-one needs none (no service
//! calls another over HTTP) and none is generated; a split process refuses to start without the
//! private key of each service it runs and every service's public key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use api::internal::Service;
use platform::service_auth::{ServiceKey, ServiceVerifier, parse_public_key};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use users::pii::PiiKeys;

use crate::config::{Secret, Settings, split_list};

pub struct Secrets {
    pub pepper: Vec<u8>,
    pub key_encryption_key: [u8; 32],
    /// The personal-data keys (users service): `None` in a process that does not run it.
    pub pii: Option<Arc<PiiKeys>>,
    /// The audit chain's MAC keys (`audit.keys`, `id:base64,...`), raw: generated all-in-one,
    /// else as configured (the worker requires them: [`audit_keys`]).
    pub audit_keys: Option<String>,
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct Stored {
    pepper: Option<String>,
    key_encryption_key: Option<String>,
    pii_keys: Option<String>,
    pii_index_key: Option<String>,
    audit_keys: Option<String>,
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
        pii_keys: secret(&settings.pii.keys),
        pii_index_key: secret(&settings.pii.index_key),
        audit_keys: secret(&settings.audit.keys),
    };
    let stored = if all_in_one {
        fill_from_file(&settings.data_dir.join("secrets.toml"), given)?
    } else {
        let missing: Vec<&str> = [
            ("auth.pepper (TRELLIS_AUTH__PEPPER)", given.pepper.is_none()),
            ("auth.key_encryption_key (TRELLIS_AUTH__KEY_ENCRYPTION_KEY)", given.key_encryption_key.is_none()),
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
    let pii = match (users_local, &stored.pii_keys, &stored.pii_index_key) {
        (true, Some(keys), Some(index)) => Some(Arc::new(PiiKeys::from_config(keys, index)?)),
        _ => None,
    };
    Ok(Secrets { pepper, key_encryption_key: kek, pii, audit_keys: stored.audit_keys })
}

/// This process's service keys: the private key of each service it runs (signing its calls) and a
/// verifier of every service's public keys (for the services it runs).
pub struct ServiceKeys {
    signers: BTreeMap<Service, Arc<ServiceKey>>,
    pub verifier: Arc<ServiceVerifier>,
}

impl ServiceKeys {
    /// The key `service` signs its calls with; an error names the setting when it is missing.
    pub fn signer(&self, service: Service) -> anyhow::Result<Arc<ServiceKey>> {
        self.signers.get(&service).cloned().ok_or_else(|| {
            anyhow::anyhow!(
                "the {service} service calls another process, so it needs its key: set {}",
                private_setting(service)
            )
        })
    }

    /// The key of any service of this process (for calls every local service may make).
    pub fn any_signer(&self) -> Option<Arc<ServiceKey>> {
        self.signers.values().next().cloned()
    }
}

fn private_setting(s: Service) -> String {
    format!("internal.private_keys.{s} (TRELLIS_INTERNAL__PRIVATE_KEYS__{})", s.as_str().to_uppercase())
}

fn public_setting(s: Service) -> String {
    format!("internal.public_keys.{s} (TRELLIS_INTERNAL__PUBLIC_KEYS__{})", s.as_str().to_uppercase())
}

/// The service keys of a process running `local`. Split (`all_in_one` false), it needs the private
/// key of each service it runs and every service's public key, and start-up names what is missing.
/// A private key must match its service's public key; another service's private key is ignored
/// (with a warning: it should not be there).
pub fn service_keys(settings: &Settings, local: &BTreeSet<Service>, all_in_one: bool) -> anyhow::Result<ServiceKeys> {
    let cfg = &settings.internal;
    let mut public: BTreeMap<Service, Vec<[u8; 32]>> = BTreeMap::new();
    for s in Service::ALL {
        let keys = split_list(cfg.public_keys.get(s))
            .iter()
            .map(|k| parse_public_key(s, k))
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|e| anyhow::anyhow!("{}: {e}", public_setting(s)))?;
        if !keys.is_empty() {
            public.insert(s, keys);
        }
    }
    let mut signers = BTreeMap::new();
    for s in Service::ALL {
        let Some(Secret(text)) = cfg.private_keys.get(s) else { continue };
        if !local.contains(&s) {
            tracing::warn!(service = %s, "a private service key of a service this process does not run is ignored; remove it");
            continue;
        }
        let key = ServiceKey::parse(s, text).map_err(|e| anyhow::anyhow!("{}: {e}", private_setting(s)))?;
        let own = parse_public_key(s, &key.public_key())?;
        if let Some(known) = public.get(&s) {
            anyhow::ensure!(
                known.contains(&own),
                "{} does not belong to any key of {}",
                private_setting(s),
                public_setting(s)
            );
        }
        signers.insert(s, Arc::new(key));
    }
    if !all_in_one {
        let missing: Vec<String> = local
            .iter()
            .filter(|s| !signers.contains_key(s))
            .map(|s| private_setting(*s))
            .chain(Service::ALL.into_iter().filter(|s| !public.contains_key(s)).map(public_setting))
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "services split across processes prove who they are to each other with keys of their own; set {} \
             (`trellis keys service-key <service>` makes a key pair; docs/OPERATIONS.md, \"Service keys\")",
            missing.join(", ")
        );
    }
    let verifier = Arc::new(ServiceVerifier::new(public, local.iter().copied()));
    Ok(ServiceKeys { signers, verifier })
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
    let (pii_keys, save_pii_keys) = choose(&given.pii_keys, &saved.pii_keys, &|| format!("1:{}", random()));
    let (pii_index, save_pii_index) = choose(&given.pii_index_key, &saved.pii_index_key, &random);
    let (audit_keys, save_audit_keys) = choose(&given.audit_keys, &saved.audit_keys, &|| format!("1:{}", random()));
    let to_save = Stored {
        pepper: save_pepper,
        key_encryption_key: save_kek,
        pii_keys: save_pii_keys,
        pii_index_key: save_pii_index,
        audit_keys: save_audit_keys,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(path, &toml::to_string(&to_save)?)?;
    Ok(Stored {
        pepper: Some(pepper),
        key_encryption_key: Some(kek),
        pii_keys: Some(pii_keys),
        pii_index_key: Some(pii_index),
        audit_keys: Some(audit_keys),
    })
}

/// The audit chain's MAC keys for a command run beside the servers (`trellis audit verify`,
/// `archive`): `audit.keys` when configured, else the ones the all-in-one server generated into
/// `data/secrets.toml`; never new ones (a new key would only make every entry fail).
pub fn audit_keys_offline(settings: &Settings) -> anyhow::Result<Arc<worker::audit::AuditKeys>> {
    let spec = match &settings.audit.keys {
        Some(Secret(spec)) => spec.clone(),
        None => {
            let path = settings.data_dir.join("secrets.toml");
            let saved: Stored = match std::fs::read_to_string(&path) {
                Ok(text) => {
                    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not valid: {e}", path.display()))?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
                Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
            };
            saved.audit_keys.ok_or_else(|| {
                anyhow::anyhow!(
                    "the audit log's MAC keys are not in {} : set audit.keys (TRELLIS_AUDIT__KEYS) as the worker has it",
                    path.display()
                )
            })?
        }
    };
    let keys =
        worker::audit::AuditKeys::from_config(&spec, settings.audit.unkeyed_until_seq).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(keys))
}

/// The audit chain's MAC keys of a process that appends to or verifies the audit log (the
/// worker, `trellis audit verify`): generated all-in-one, required split (docs/SECURITY.md LO-4).
pub fn audit_keys(settings: &Settings, secrets: &Secrets) -> anyhow::Result<Arc<worker::audit::AuditKeys>> {
    let spec = secrets.audit_keys.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "the audit log is keyed with secrets the database does not hold: set audit.keys (TRELLIS_AUDIT__KEYS), \
             e.g. 1:<base64 of 32 random bytes>"
        )
    })?;
    let keys =
        worker::audit::AuditKeys::from_config(spec, settings.audit.unkeyed_until_seq).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(keys))
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

    /// Settings naming every service's public key, and the private keys of `private`.
    fn keys_settings(keys: &[(ServiceKey, String)], private: &[Service]) -> Settings {
        let mut s = Settings::default();
        for (key, text) in keys {
            let k = &mut s.internal;
            let (public, secret) = match key.service() {
                Service::Gateway => (&mut k.public_keys.gateway, &mut k.private_keys.gateway),
                Service::Auth => (&mut k.public_keys.auth, &mut k.private_keys.auth),
                Service::Users => (&mut k.public_keys.users, &mut k.private_keys.users),
                Service::Projects => (&mut k.public_keys.projects, &mut k.private_keys.projects),
                Service::Worker => (&mut k.public_keys.worker, &mut k.private_keys.worker),
            };
            *public = key.public_key();
            if private.contains(&key.service()) {
                *secret = Some(Secret(text.clone()));
            }
        }
        s
    }

    #[test]
    fn a_split_service_refuses_to_start_without_its_credential() {
        let users: BTreeSet<Service> = [Service::Users].into();
        let err = service_keys(&Settings::default(), &users, false).err().unwrap().to_string();
        assert!(err.contains("internal.private_keys.users (TRELLIS_INTERNAL__PRIVATE_KEYS__USERS)"), "{err}");
        assert!(err.contains("internal.public_keys.gateway") && err.contains("trellis keys service-key"), "{err}");
        assert!(!err.contains("private_keys.auth"), "only the keys of the services it runs: {err}");

        let keys: Vec<(ServiceKey, String)> = Service::ALL.into_iter().map(ServiceKey::generate).collect();
        let err = service_keys(&keys_settings(&keys, &[]), &users, false).err().unwrap().to_string();
        assert!(err.contains("private_keys.users") && !err.contains("public_keys"), "{err}");

        let ok = service_keys(&keys_settings(&keys, &[Service::Users, Service::Auth]), &users, false).unwrap();
        assert_eq!(ok.signer(Service::Users).unwrap().public_key(), keys[2].0.public_key());
        assert!(ok.signer(Service::Auth).is_err(), "another service's private key is not used");
        assert!(ok.verifier.knows_any());

        // A private key that is not the one the public keys name is refused.
        let mut mismatched = keys_settings(&keys, &[Service::Users]);
        mismatched.internal.private_keys.users = Some(Secret(ServiceKey::generate(Service::Users).1));
        let err = service_keys(&mismatched, &users, false).err().unwrap().to_string();
        assert!(err.contains("does not belong"), "{err}");
        let mut garbled = keys_settings(&keys, &[Service::Users]);
        garbled.internal.public_keys.worker = "not a key".into();
        let err = service_keys(&garbled, &users, false).err().unwrap().to_string();
        assert!(err.contains("internal.public_keys.worker"), "{err}");

        // All-in-one needs none and generates none.
        let all: BTreeSet<Service> = Service::ALL.into();
        let ok = service_keys(&Settings::default(), &all, true).unwrap();
        assert!(ok.any_signer().is_none() && !ok.verifier.knows_any());
    }

    #[test]
    fn split_services_must_be_given_every_secret() {
        let err = resolve(&Settings::default(), false, true).err().unwrap().to_string();
        assert!(err.contains("auth.pepper") && err.contains("pii.keys"), "{err}");
        let err = resolve(&Settings::default(), false, false).err().unwrap().to_string();
        assert!(!err.contains("pii."), "a process without the users service needs no personal-data keys: {err}");
    }
}
