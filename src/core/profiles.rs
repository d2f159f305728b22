//! Profile details: names, interests, a picture, and (for Creators) subscription keys; and the
//! people a user might want to meet, ranked by what they have in common.

use std::collections::HashMap;

use bson::{Document, doc};
use futures::TryStreamExt;
use mongodb::options::ReturnDocument;

use super::Core;
use super::social::FollowSide;
use crate::error::{Error, Result};
use crate::store::{Follow, User};

/// The most interests a profile lists, and the longest one.
const INTERESTS_MAX: usize = 50;
const INTEREST_MAX_CHARS: usize = 50;

pub const DISPLAY_PIC_MAX_BYTES: usize = 2 * 1024 * 1024;
const DISPLAY_PIC_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];
const DISPLAY_PIC_TYPES: [&str; 2] = ["image/jpeg", "image/png"];

/// How long each text field may be, in characters.
const TEXT_LIMITS: [(&str, usize); 6] = [
    ("full_name", 100),
    ("gender", 30),
    ("bio", 500),
    ("state", 100),
    ("city", 100),
    ("monthly_sub_keys", 500),
];

/// The profile's text field called `name`, if there is one.
pub fn text_field(name: &str) -> Option<&'static str> {
    TEXT_LIMITS.iter().map(|(f, _)| *f).find(|f| *f == name)
}

/// The most users a recommendation considers, and returns.
const RECOMMENDATION_POOL: i64 = 500;
pub const RECOMMENDATIONS_MAX: usize = 20;

/// A profile picture as uploaded: its name (when the client sent one) and its bytes.
#[derive(Debug)]
pub struct Picture {
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

/// The fields to change; absent fields are left alone, empty text clears a field.
#[derive(Debug, Default)]
pub struct ProfileChange {
    /// (field, value) for full_name, gender, bio, state, city and monthly_sub_keys.
    pub text: Vec<(&'static str, String)>,
    pub interests: Option<Vec<String>>,
    /// The interests the dialect's clients choose from; any when `None`.
    pub interest_choices: Option<&'static [&'static str]>,
    pub display_pic: Option<Picture>,
}

/// A user worth meeting, with what ranks them.
#[derive(Debug)]
pub struct Recommendation {
    pub user: User,
    pub followers: u64,
    pub shared_interests: usize,
}

impl Core {
    /// Change any subset of the profile's fields. Every invalid field is reported at once.
    pub async fn update_profile_details(&self, user: &User, change: ProfileChange) -> Result<User> {
        let mut invalid: Vec<(&'static str, String)> = Vec::new();
        let mut set = Document::new();
        let mut unset = Document::new();
        for (field, value) in change.text {
            let value = value.trim();
            let limit = TEXT_LIMITS
                .iter()
                .find(|(f, _)| *f == field)
                .map(|(_, l)| *l);
            let Some(limit) = limit else {
                continue;
            };
            if field == "monthly_sub_keys" && !user.is_creator() {
                if !value.is_empty() {
                    invalid.push((field, "Only Creators can set monthly_sub_keys.".into()));
                }
                continue;
            }
            if value.chars().count() > limit {
                invalid.push((
                    field,
                    format!("Ensure this field has no more than {limit} characters."),
                ));
            } else if value.is_empty() {
                unset.insert(format!("profile.{field}"), "");
            } else {
                set.insert(format!("profile.{field}"), value);
            }
        }
        if let Some(interests) = change.interests {
            match valid_interests(&interests, change.interest_choices) {
                Ok(interests) => {
                    set.insert("profile.interests", interests);
                }
                Err(problems) => invalid.extend(problems.into_iter().map(|p| ("interests", p))),
            }
        }
        if let Some(picture) = &change.display_pic {
            invalid.extend(
                picture_problems(picture)
                    .into_iter()
                    .map(|p| ("display_pic", p)),
            );
        }
        if !invalid.is_empty() {
            return Err(Error::Fields(invalid));
        }

        let new_pic = match change.display_pic {
            Some(picture) => {
                let media = self.media.as_ref().ok_or_else(|| {
                    Error::Unavailable("picture storage is not configured on this server".into())
                })?;
                let prefix = format!("display_pic/{}", user.id.to_hex());
                let stored = media
                    .put_image(&prefix, picture.bytes, DISPLAY_PIC_MAX_BYTES)
                    .await?;
                set.insert("profile.display_pic", &stored.url);
                Some(stored.url)
            }
            None => None,
        };
        let mut update = Document::new();
        if !set.is_empty() {
            update.insert("$set", set);
        }
        if !unset.is_empty() {
            update.insert("$unset", unset);
        }
        if update.is_empty() {
            return Ok(user.clone());
        }
        let saved = self
            .store
            .users
            .find_one_and_update(doc! { "_id": user.id }, update)
            .return_document(ReturnDocument::After)
            .await;
        let replaced = new_pic
            .is_some()
            .then(|| user.profile.display_pic.clone())
            .flatten();
        self.discard_unused_image(saved.is_ok(), replaced, new_pic)
            .await;
        saved?.ok_or(Error::NotFound("user"))
    }

    /// Users `user` does not follow yet, ranked by how many interests they share with `user`,
    /// then by how many followers they have, then newest account first.
    pub async fn recommended_users(&self, user: &User) -> Result<Vec<Recommendation>> {
        let followed: Vec<Follow> = self.follows_of(user, FollowSide::Following).await?;
        let mut excluded: Vec<_> = followed.iter().map(|f| f.followee).collect();
        excluded.extend([user.id, self.system_user().id]);
        let not_excluded = doc! { "_id": { "$nin": &excluded } };
        // Those sharing an interest first, then the newest accounts, so the pool is bounded.
        let sharing = doc! { "$and": [
            not_excluded.clone(),
            { "profile.interests": { "$in": &user.profile.interests } },
        ] };
        let mut pool: Vec<User> = Vec::new();
        for filter in [sharing, not_excluded] {
            let room = RECOMMENDATION_POOL - pool.len() as i64;
            if room <= 0 {
                break;
            }
            let cursor = self
                .store
                .users
                .find(filter)
                .sort(doc! { "num": -1 })
                .limit(room)
                .await?;
            let found: Vec<User> = cursor.try_collect().await?;
            for candidate in found {
                if !pool.iter().any(|u| u.id == candidate.id) {
                    pool.push(candidate);
                }
            }
        }
        let ids: Vec<_> = pool.iter().map(|u| u.id).collect();
        let follows: Vec<Follow> = self
            .store
            .follows
            .find(doc! { "followee": { "$in": ids } })
            .await?
            .try_collect()
            .await?;
        let mut followers: HashMap<_, u64> = HashMap::new();
        for follow in follows {
            *followers.entry(follow.followee).or_default() += 1;
        }
        let mut ranked: Vec<Recommendation> = pool
            .into_iter()
            .map(|candidate| Recommendation {
                followers: followers.get(&candidate.id).copied().unwrap_or_default(),
                shared_interests: candidate
                    .profile
                    .interests
                    .iter()
                    .filter(|i| user.profile.interests.contains(i))
                    .count(),
                user: candidate,
            })
            .collect();
        ranked.sort_by(|a, b| {
            (b.shared_interests, b.followers, b.user.num).cmp(&(
                a.shared_interests,
                a.followers,
                a.user.num,
            ))
        });
        ranked.truncate(RECOMMENDATIONS_MAX);
        Ok(ranked)
    }

    /// After an image was replaced: delete the old one once the change is saved, or the new
    /// one if it could not be. Failures are logged by the media store, never returned.
    pub(super) async fn discard_unused_image(
        &self,
        saved: bool,
        old: Option<String>,
        new: Option<String>,
    ) {
        let unused = if saved { old } else { new };
        if let (Some(url), Some(media)) = (unused, &self.media) {
            media.delete_by_url(&url).await;
        }
    }
}

/// The interests, lowercased and without repeats, or what is wrong with each invalid one.
fn valid_interests(
    interests: &[String],
    choices: Option<&[&str]>,
) -> std::result::Result<Vec<String>, Vec<String>> {
    let mut valid: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    for interest in interests {
        let interest = interest.trim().to_lowercase();
        let listed = choices.is_none_or(|c| c.contains(&interest.as_str()));
        if !listed || interest.is_empty() || interest.chars().count() > INTEREST_MAX_CHARS {
            problems.push(format!("\"{interest}\" is not a valid choice."));
        } else if !valid.contains(&interest) {
            valid.push(interest);
        }
    }
    if valid.len() > INTERESTS_MAX {
        problems.push(format!(
            "Ensure this field has no more than {INTERESTS_MAX} elements."
        ));
    }
    if problems.is_empty() {
        Ok(valid)
    } else {
        Err(problems)
    }
}

/// What is wrong with a picture: its name, its size, or what it really is.
fn picture_problems(picture: &Picture) -> Vec<String> {
    let mut problems = Vec::new();
    let allowed = "Allowed formats are .jpg, .jpeg and .png.";
    let named_badly = picture.file_name.as_deref().is_some_and(|name| {
        let extension = name.rsplit_once('.').map(|(_, e)| e.to_lowercase());
        !extension.is_some_and(|e| DISPLAY_PIC_EXTENSIONS.contains(&e.as_str()))
    });
    if named_badly {
        problems.push(format!("File extension not allowed. {allowed}"));
    }
    if picture.bytes.len() > DISPLAY_PIC_MAX_BYTES {
        problems.push("The maximum size of the display_pic is 2MB.".to_owned());
    }
    let content = crate::media::image_type(&picture.bytes).map(|(mime, _)| mime);
    if !content.is_some_and(|mime| DISPLAY_PIC_TYPES.contains(&mime)) {
        problems.push(format!("Upload a valid image. {allowed}"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interests_come_from_the_choices_given() {
        let choices = Some(&["dancing", "sports"][..]);
        let given = vec!["Dancing".to_owned(), " sports ".into(), "dancing".into()];
        assert_eq!(
            valid_interests(&given, choices).unwrap(),
            vec!["dancing", "sports"]
        );
        let problems = valid_interests(&["knitting".to_owned()], choices).unwrap_err();
        assert_eq!(problems, vec!["\"knitting\" is not a valid choice."]);
        assert!(valid_interests(&["knitting".to_owned()], None).is_ok());
    }

    #[test]
    fn pictures_are_judged_by_name_size_and_content() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        let named = |name: &str, bytes: &[u8]| Picture {
            file_name: Some(name.to_owned()),
            bytes: bytes.to_vec(),
        };
        assert!(picture_problems(&named("me.PNG", &png)).is_empty());
        assert!(
            picture_problems(&Picture {
                file_name: None,
                bytes: png.clone()
            })
            .is_empty()
        );
        assert_eq!(picture_problems(&named("me.gif", &png)).len(), 1);
        assert_eq!(picture_problems(&named("me.png", b"GIF89a....")).len(), 1);
        let mut huge = png.clone();
        huge.resize(DISPLAY_PIC_MAX_BYTES + 1, 0);
        assert_eq!(picture_problems(&named("me.jpg", &huge)).len(), 1);
    }
}
