//! The object-storage contract (`object_store::ObjectStore` is the port): put, get, head, list,
//! overwrite and delete behave alike on a local folder and on an S3 bucket (moto).

use std::sync::Arc;

use futures::TryStreamExt;
use platform::objects::{ObjectPath, ObjectStore, ObjectStoreExt, PutPayload};
use test_support::TestBucket;

/// An object store ready for one test, cleaned up on drop.
pub trait Fixture: Sized {
    async fn new() -> Self;
    fn store(&self) -> Arc<dyn ObjectStore>;
}

pub struct Local {
    store: Arc<dyn ObjectStore>,
    _dir: tempfile::TempDir,
}

impl Fixture for Local {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Local { store: platform::objects::local(&dir.path().join("objects")).unwrap(), _dir: dir }
    }
    fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }
}

/// The bucket (and anything left in it) is deleted on drop.
pub struct S3 {
    store: Arc<dyn ObjectStore>,
    bucket: TestBucket,
}

impl Fixture for S3 {
    async fn new() -> Self {
        let bucket = TestBucket::new().await;
        S3 { store: platform::objects::s3(&bucket.location()).unwrap(), bucket }
    }
    fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }
}

async fn list(store: &dyn ObjectStore, prefix: Option<&str>) -> Vec<(String, u64)> {
    let prefix = prefix.map(ObjectPath::from);
    let mut out: Vec<(String, u64)> =
        store.list(prefix.as_ref()).map_ok(|m| (m.location.to_string(), m.size)).try_collect().await.unwrap();
    out.sort();
    out
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

async fn put_get_head_list_delete<F: Fixture>() {
    let f = F::new().await;
    let store = f.store();
    let a = ObjectPath::from("attachments/p1/a.txt");
    let b = ObjectPath::from("attachments/p1/b.bin");
    let c = ObjectPath::from("archive/2025/audit.jsonl");
    let bin: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store.put(&a, PutPayload::from_static(b"hello")).await.unwrap();
    store.put(&b, PutPayload::from(bin.clone())).await.unwrap();
    store.put(&c, PutPayload::from_static(b"{}\n")).await.unwrap();

    let got = store.get(&a).await.unwrap().bytes().await.unwrap();
    assert_eq!(&got[..], b"hello");
    let got = store.get(&b).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.to_vec(), bin, "binary content round-trips");
    let range = store.get_range(&b, 10..20).await.unwrap();
    assert_eq!(range.to_vec(), bin[10..20].to_vec());

    let head = store.head(&b).await.unwrap();
    assert_eq!(head.size, bin.len() as u64);
    assert_eq!(head.location, b);

    assert_eq!(list(&*store, Some("attachments/p1")).await, [(a.to_string(), 5), (b.to_string(), bin.len() as u64)]);
    assert_eq!(list(&*store, None).await.len(), 3);
    let top = store.list_with_delimiter(None).await.unwrap();
    let mut dirs: Vec<String> = top.common_prefixes.iter().map(ToString::to_string).collect();
    dirs.sort();
    assert_eq!(dirs, ["archive", "attachments"]);
    assert!(top.objects.is_empty());

    store.put(&a, PutPayload::from_static(b"replaced")).await.unwrap();
    assert_eq!(&store.get(&a).await.unwrap().bytes().await.unwrap()[..], b"replaced", "put overwrites");

    for p in [&a, &b, &c] {
        store.delete(p).await.unwrap();
    }
    let err = store.get(&a).await.unwrap_err();
    assert!(is_not_found(&err), "get after delete: {err:?}");
    let err = store.head(&c).await.unwrap_err();
    assert!(is_not_found(&err), "head after delete: {err:?}");
    assert!(list(&*store, None).await.is_empty(), "everything deleted");
}

async fn missing_object_is_not_found<F: Fixture>() {
    let f = F::new().await;
    let store = f.store();
    let p = ObjectPath::from("nope/missing.txt");
    assert!(is_not_found(&store.get(&p).await.unwrap_err()));
    assert!(is_not_found(&store.head(&p).await.unwrap_err()));
    assert!(list(&*store, Some("nope")).await.is_empty());
}

async fn copy_and_rename<F: Fixture>() {
    let f = F::new().await;
    let store = f.store();
    let (from, copy, moved) =
        (ObjectPath::from("tmp/upload"), ObjectPath::from("tmp/copy"), ObjectPath::from("final/file"));
    store.put(&from, PutPayload::from_static(b"data")).await.unwrap();
    store.copy(&from, &copy).await.unwrap();
    store.rename(&from, &moved).await.unwrap();
    assert!(is_not_found(&store.head(&from).await.unwrap_err()), "rename removes the source");
    for p in [&copy, &moved] {
        assert_eq!(&store.get(p).await.unwrap().bytes().await.unwrap()[..], b"data");
        store.delete(p).await.unwrap();
    }
    assert!(list(&*store, None).await.is_empty());
}

macro_rules! objects_contract {
    ($adapter:ident, $fixture:ty) => {
        mod $adapter {
            use super::*;
            objects_contract!(@tests $fixture;
                put_get_head_list_delete,
                missing_object_is_not_found,
                copy_and_rename,
            );
        }
    };
    (@tests $fixture:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                super::$check::<$fixture>().await;
            }
        )*
    };
}

objects_contract!(local, Local);
objects_contract!(s3, S3);

/// S3 only: the fixture deletes the bucket and whatever was left in it.
#[tokio::test]
async fn s3_bucket_is_deleted_after_the_test() {
    let (endpoint, bucket) = {
        let f = S3::new().await;
        f.store.put(&ObjectPath::from("left/behind"), PutPayload::from_static(b"x")).await.unwrap();
        (f.bucket.endpoint.clone(), f.bucket.bucket.clone())
    };
    let res = reqwest::Client::new().head(format!("{endpoint}/{bucket}")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NOT_FOUND, "bucket {bucket} was left behind");
}

/// docs/SECURITY.md UP-3: a presigned GET (signed as the projects service signs its downloads, with
/// `response-*` overrides) serves the object within its life and is refused with 403 after it.
/// On s3rver, which checks a presigned URL's expiry; moto's default mode serves expired URLs.
///
/// Two URLs signed together, one for 2 seconds and one for an hour, are fetched once the short
/// life has surely run out (3 seconds after the short one was signed, whatever the machine's speed): the long
/// one is served and the short one refused, so the expiry is what tells them apart. A single
/// URL fetched "while fresh" would depend on the fetch taking less than its life.
#[tokio::test]
async fn a_presigned_get_is_refused_once_it_expired() {
    use object_store::signer::{Method, SignedUrlOptions};
    use std::time::Duration;

    let server = test_support::TestS3rver::start().await;
    let (store, signer) = platform::objects::s3_presigning(&server.location()).unwrap();
    let path = ObjectPath::from("attachments/p/a");
    store.put(&path, PutPayload::from_static(b"short-lived")).await.unwrap();
    let options = SignedUrlOptions::new().with_query([("response-content-disposition", "attachment")]);
    let short = signer.signed_url_opts(Method::GET, &path, Duration::from_secs(2), &options).await.unwrap();
    // Its life began at the latest now (X-Amz-Date is the signing time, in whole seconds).
    let signed = std::time::Instant::now();
    let long = signer.signed_url_opts(Method::GET, &path, Duration::from_secs(3600), &options).await.unwrap();
    assert!(short.query_pairs().any(|(k, v)| k == "X-Amz-Expires" && v == "2"), "{short}");

    tokio::time::sleep_until((signed + Duration::from_secs(3)).into()).await;
    let served = reqwest::get(long).await.unwrap();
    assert_eq!(served.status(), reqwest::StatusCode::OK);
    assert_eq!(served.bytes().await.unwrap().as_ref(), b"short-lived");
    let late = reqwest::get(short).await.unwrap();
    assert_eq!(late.status(), reqwest::StatusCode::FORBIDDEN);
    let body = late.text().await.unwrap();
    assert!(body.contains("AccessDenied") && body.contains("Request has expired"), "{body}");
}
