//! Photos in S3, against a real moto server started by the test command: what is stored, under
//! which type, which uploads are refused, and deletion by URL.

mod common;

use common::TestServer;
use palaver::media::Media;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn server_with_s3() -> TestServer {
    let endpoint =
        std::env::var("TEST_S3_ENDPOINT").expect("TEST_S3_ENDPOINT is not set: run tests/run.sh");
    let bucket = format!("palaver-{}", bson::oid::ObjectId::new().to_hex());
    TestServer::start_configured(|config| {
        config.s3_bucket = Some(bucket);
        config.s3_endpoint = Some(endpoint);
        config.s3_access_key_id = Some("test".into());
        config.s3_secret_access_key = Some("test".into());
    })
    .await
}

async fn object(media: &Media, key: &str) -> Option<(String, Vec<u8>)> {
    let (client, bucket) = media.client();
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let content_type = object.content_type().unwrap_or_default().to_owned();
    let bytes = object.body.collect().await.unwrap().into_bytes().to_vec();
    Some((content_type, bytes))
}

#[tokio::test]
async fn images_are_stored_with_their_real_type_and_deleted_by_url() {
    let s = server_with_s3().await;
    let media = s.server.app.media.as_ref().expect("S3 is configured");
    let png = fixture("gradient.png");

    let stored = media
        .put_image("chats/abc", png.clone(), 2 * 1024 * 1024)
        .await
        .unwrap();
    assert!(
        stored.key.starts_with("chats/abc/") && stored.key.ends_with(".png"),
        "{stored:?}"
    );
    assert!(stored.url.ends_with(&stored.key));
    assert_eq!(
        object(media, &stored.key).await,
        Some(("image/png".to_owned(), png.clone()))
    );
    // With an endpoint and no public URL configured, objects are addressed path-style on it.
    let endpoint = std::env::var("TEST_S3_ENDPOINT").unwrap();
    let (_, bucket) = media.client();
    assert_eq!(stored.url, format!("{endpoint}/{bucket}/{}", stored.key));

    media.delete_by_url(&stored.url).await;
    assert_eq!(object(media, &stored.key).await, None);
    // A URL that is not ours is left alone (and does not fail).
    media
        .delete_by_url("https://elsewhere.example.org/x.png")
        .await;
    s.stop().await;
}

#[tokio::test]
async fn uploads_are_checked_by_content_and_size() {
    let s = server_with_s3().await;
    let media = s.server.app.media.as_ref().unwrap();
    let disguised = media
        .put_image("users/u", fixture("not-an-image.png"), 1024 * 1024)
        .await;
    assert!(
        matches!(disguised, Err(palaver::error::Error::Invalid(_))),
        "{disguised:?}"
    );
    let png = fixture("gradient.png");
    let too_big = media.put_image("users/u", png.clone(), png.len() - 1).await;
    assert!(
        matches!(too_big, Err(palaver::error::Error::Invalid(_))),
        "{too_big:?}"
    );
    let (client, bucket) = media.client();
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(0), "nothing refused was stored");
    s.stop().await;
}
