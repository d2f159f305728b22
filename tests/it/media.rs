//! Photos in S3, against a real moto server started by the test command: what is stored, under
//! which type, which uploads are refused, and deletion by URL.

use crate::common::{TestServer, fixture};
use palaver::media::Media;

/// Nothing was stored: every upload so far was refused.
async fn assert_bucket_empty(media: &Media) {
    let (client, bucket) = media.client();
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(0), "nothing refused was stored");
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
    let s = TestServer::with_s3().await;
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
    let s = TestServer::with_s3().await;
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
    assert_bucket_empty(media).await;
    s.stop().await;
}

fn photo_form(bytes: Vec<u8>, name: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("name", "Future Scientists")
        .part(
            "photo",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        )
}

async fn put_photo(
    s: &TestServer,
    path: &str,
    token: &str,
    form: reqwest::multipart::Form,
) -> (u16, serde_json::Value) {
    let response = s
        .http
        .put(s.url(path))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_group_photo_is_replaced_and_deleted_with_its_chat() {
    let s = TestServer::with_s3().await;
    let media = s.server.app.media.clone().unwrap();
    let max = s.member("Max_R").await;
    let neha = s.member("Neha_Sharma45").await;
    let follow = format!("/users/{}/follow", neha.id);
    s.call(reqwest::Method::POST, &follow, &max.token, None)
        .await;
    let (_, body) = s
        .call(
            reqwest::Method::POST,
            "/chats",
            &max.token,
            Some(serde_json::json!({ "isGroup": true, "name": "Lab", "category": "Study", "participants": [neha.id] })),
        )
        .await;
    let path = format!("/chats/{}", body["chat"]["_id"].as_str().unwrap());
    let png = fixture("gradient.png");

    // Only an admin; only images, by their content.
    let (status, _) = put_photo(&s, &path, &neha.token, photo_form(png.clone(), "tree.png")).await;
    assert_eq!(status, 403);
    let (status, body) = put_photo(
        &s,
        &path,
        &max.token,
        photo_form(fixture("not-an-image.png"), "x.png"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not a JPEG, PNG")
    );
    let too_big = [png.clone(), vec![0; 5 * 1024 * 1024]].concat();
    let (status, body) = put_photo(&s, &path, &max.token, photo_form(too_big, "big.png")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("larger than"));

    let (status, body) =
        put_photo(&s, &path, &max.token, photo_form(png.clone(), "tree.png")).await;
    assert_eq!(status, 200, "{body}");
    let first = body["chat"]["photo"].as_str().unwrap().to_owned();
    let first_key = media.key_of(&first).unwrap().to_owned();
    assert!(first_key.starts_with(&format!("chats/{}/", body["chat"]["_id"].as_str().unwrap())));
    assert_eq!(
        object(&media, &first_key).await,
        Some(("image/png".to_owned(), png.clone()))
    );

    // A new photo replaces the old one, which is deleted.
    let (_, body) = put_photo(&s, &path, &max.token, photo_form(png.clone(), "again.png")).await;
    let second = body["chat"]["photo"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(object(&media, &first_key).await, None);
    let second_key = media.key_of(&second).unwrap().to_owned();
    assert!(object(&media, &second_key).await.is_some());

    // Deleting the chat deletes its photo (off the request path, so wait a little).
    let (status, _) = s
        .call(reqwest::Method::DELETE, &path, &max.token, None)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let mut gone = false;
    for _ in 0..50 {
        if object(&media, &second_key).await.is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the photo outlived its chat");
    s.stop().await;
}

fn picture_form(bytes: Vec<u8>, name: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("full_name", "Saliu Opeyemi Abdul Azeez")
        .text("interests", "dancing")
        .text("interests", "nature")
        .part(
            "display_pic",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        )
}

#[tokio::test]
async fn a_display_pic_is_checked_by_name_size_and_content_and_replaced() {
    let s = TestServer::with_s3().await;
    let media = s.server.app.media.clone().unwrap();
    let saliu = s.hooks_account("saliu@example.org", "Fan").await;
    let png = fixture("gradient.png");

    let refused = [
        (png.clone(), "me.gif", "File extension not allowed"),
        (
            fixture("not-an-image.png"),
            "me.png",
            "Upload a valid image",
        ),
        (
            [png.clone(), vec![0; 2 * 1024 * 1024]].concat(),
            "big.png",
            "2MB",
        ),
    ];
    for (bytes, name, expected) in refused {
        let (status, body) = put_photo(
            &s,
            "/profile/update/",
            &saliu.access,
            picture_form(bytes, name),
        )
        .await;
        assert_eq!(status, 400, "{name}: {body}");
        let message = body["display_pic"][0].as_str().unwrap();
        assert!(message.contains(expected), "{name}: {body}");
        assert!(
            body.get("full_name").is_none(),
            "only the picture is at fault"
        );
    }
    assert_bucket_empty(&media).await;

    let (status, body) = put_photo(
        &s,
        "/profile/update/",
        &saliu.access,
        picture_form(png.clone(), "me.png"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["full_name"], "Saliu Opeyemi Abdul Azeez");
    assert_eq!(body["interests"], serde_json::json!(["dancing", "nature"]));
    let first = body["display_pic"].as_str().unwrap().to_owned();
    let first_key = media.key_of(&first).unwrap().to_owned();
    assert!(first_key.starts_with("display_pic/"));
    assert_eq!(
        object(&media, &first_key).await,
        Some(("image/png".to_owned(), png.clone()))
    );

    // A new picture replaces the old one, which is deleted.
    let (_, body) = put_photo(
        &s,
        "/profile/update/",
        &saliu.access,
        picture_form(png.clone(), "again.JPG.png"),
    )
    .await;
    let second = body["display_pic"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(object(&media, &first_key).await, None);
    let (_, profile) = s
        .hooks(reqwest::Method::GET, "/profile/", Some(&saliu.access), None)
        .await;
    assert_eq!(profile["display_pic"], second.as_str());
    s.stop().await;
}
