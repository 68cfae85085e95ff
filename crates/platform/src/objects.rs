//! Object storage: the `object_store` crate's `ObjectStore` trait is the port; a local folder
//! all-in-one, an S3-compatible bucket distributed. S3 objects are written with server-side
//! encryption (SSE-S3, `AES256`); [`s3_presigning`] also gives the bucket's URL signer.

use std::path::Path;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
pub use object_store::signer::Signer;
pub use object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path as ObjectPath};

/// Where an S3-compatible bucket is and how to reach it.
#[derive(Clone)]
pub struct S3Location {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Location")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A folder on local disk, created if missing.
pub fn local(dir: &Path) -> anyhow::Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(dir)?;
    Ok(Arc::new(LocalFileSystem::new_with_prefix(dir)?))
}

/// An S3-compatible bucket (path-style requests, so local servers such as moto work).
pub fn s3(loc: &S3Location) -> anyhow::Result<Arc<dyn ObjectStore>> {
    Ok(s3_presigning(loc)?.0)
}

/// An S3-compatible bucket and the signer of presigned URLs for its objects.
pub fn s3_presigning(loc: &S3Location) -> anyhow::Result<(Arc<dyn ObjectStore>, Arc<dyn Signer>)> {
    // The encryption keys are not exported by name, only parsed.
    let sse: AmazonS3ConfigKey = "aws_server_side_encryption".parse()?;
    let store = AmazonS3Builder::new()
        .with_endpoint(&loc.endpoint)
        .with_bucket_name(&loc.bucket)
        .with_region(&loc.region)
        .with_access_key_id(&loc.access_key_id)
        .with_secret_access_key(&loc.secret_access_key)
        .with_allow_http(loc.endpoint.starts_with("http://"))
        .with_virtual_hosted_style_request(false)
        .with_config(sse, "AES256")
        .build()?;
    let store = Arc::new(store);
    Ok((store.clone(), store))
}
