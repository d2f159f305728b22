//! Uploaded images, kept in S3 (or anything that speaks its API) under public URLs.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use bson::oid::ObjectId;

use crate::error::{Error, Result};

/// The image types accepted for photos and avatars, by their content (not their name).
const IMAGE_TYPES: [(&str, &str); 5] = [
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/avif", "avif"),
];

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Unset for AWS itself; the service's URL for MinIO, moto and the like.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Where objects are publicly readable (a CDN, or the bucket's URL); keys are appended.
    pub public_url: String,
}

#[derive(Debug, Clone)]
pub struct Media {
    client: Client,
    bucket: String,
    public_url: String,
}

/// A stored object and the URL clients fetch it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub url: String,
}

impl Media {
    pub fn new(config: &S3Config) -> Self {
        let credentials = Credentials::new(
            &config.access_key_id,
            &config.secret_access_key,
            None,
            None,
            "palaver-config",
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(true);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            public_url: config.public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Create the bucket if it does not exist yet (convenient outside production).
    pub async fn ensure_bucket(&self) -> Result<()> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| storage_error("creating the bucket", e))?;
        Ok(())
    }

    /// Store an image under `prefix/` after checking what it really is and how big it is.
    pub async fn put_image(
        &self,
        prefix: &str,
        bytes: Vec<u8>,
        max_bytes: usize,
    ) -> Result<Stored> {
        if bytes.len() > max_bytes {
            return Err(Error::invalid(format!(
                "the image is larger than {} KB",
                max_bytes / 1024
            )));
        }
        let (content_type, extension) = image_type(&bytes).ok_or_else(|| {
            Error::invalid("the file is not a JPEG, PNG, GIF, WebP or AVIF image")
        })?;
        let key = format!("{prefix}/{}.{extension}", ObjectId::new().to_hex());
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(content_type)
            .cache_control("public, max-age=31536000, immutable")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| storage_error("storing an image", e))?;
        Ok(Stored {
            url: self.url_of(&key),
            key,
        })
    }

    /// Delete an object this store made, given its public URL. URLs from elsewhere are left
    /// alone. Failures are logged: a stray object must not fail the user's request.
    pub async fn delete_by_url(&self, url: &str) {
        let Some(key) = self.key_of(url) else { return };
        let deleted = tokio::time::timeout(
            Duration::from_secs(10),
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send(),
        )
        .await;
        match deleted {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(%url, "could not delete a replaced image: {}", storage_error("deleting", e))
            }
            Err(_) => tracing::warn!(%url, "deleting a replaced image timed out"),
        }
    }

    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{key}", self.public_url)
    }

    pub fn key_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix(&self.public_url)?
            .strip_prefix('/')
            .filter(|k| !k.is_empty())
    }

    /// The client, for tests and tools that inspect the bucket.
    pub fn client(&self) -> (&Client, &str) {
        (&self.client, &self.bucket)
    }
}

/// Whether a request carries form data with files, rather than JSON.
pub fn is_multipart(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

/// The MIME type and usual extension of an accepted image, judged by its content.
pub fn image_type(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    let mime = infer::get(bytes)?.mime_type();
    IMAGE_TYPES.iter().find(|(m, _)| *m == mime).copied()
}

fn storage_error(doing: &str, err: impl std::error::Error + Send + Sync + 'static) -> Error {
    let err = aws_sdk_s3::error::DisplayErrorContext(err);
    Error::Internal(anyhow::anyhow!("S3 failed {doing}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_content() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(image_type(png), Some(("image/png", "png")));
        assert_eq!(
            image_type(b"\xff\xd8\xff\xe0\0\x10JFIF\0"),
            Some(("image/jpeg", "jpg"))
        );
        assert_eq!(image_type(b"GIF89a...."), Some(("image/gif", "gif")));
        assert_eq!(
            image_type(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            None
        );
        assert_eq!(image_type(b"%PDF-1.7"), None);
        assert_eq!(image_type(b""), None);
    }

    #[test]
    fn only_our_own_urls_map_back_to_keys() {
        let media = Media::new(&S3Config {
            bucket: "b".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            region: "us-east-1".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            public_url: "https://cdn.example.org/media/".into(),
        });
        assert_eq!(
            media.url_of("chats/x.png"),
            "https://cdn.example.org/media/chats/x.png"
        );
        assert_eq!(
            media.key_of("https://cdn.example.org/media/chats/x.png"),
            Some("chats/x.png")
        );
        assert_eq!(
            media.key_of("https://elsewhere.example.org/chats/x.png"),
            None
        );
        assert_eq!(media.key_of("https://cdn.example.org/media/"), None);
    }
}
