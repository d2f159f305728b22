//! Signing in finds its user through the index of the field it signs in with, never by
//! reading every user: SecantusDB (what `cargo run` provisions, and what the tests run on)
//! does not see that an equality on a field fits that field's partial index, so a burst of
//! sign-ins used to scan the users collection once each and stall every other request.

use crate::common;
use bson::{Document, doc};
use palaver::store::{SignInField, Store, User};

#[tokio::test]
async fn each_sign_in_lookup_reads_one_user_through_its_index() {
    let database = common::new_database_name();
    let store = Store::connect(&common::mongodb_uri(), &database)
        .await
        .unwrap();
    // Half the users sign in with an email, half with a phone: neither index holds them all.
    let users: Vec<User> = (1..=200)
        .map(|num| {
            let mut user = User::new(num, format!("user {num}"));
            match num % 2 {
                0 => user.email = Some(format!("u{num}@example.org")),
                _ => user.phone = Some(format!("65.9{num:07}")),
            }
            user
        })
        .collect();
    store.users.insert_many(&users).await.unwrap();

    for (field, value, index, num) in [
        (SignInField::Email, "u42@example.org", "email_1", 42),
        (SignInField::Phone, "65.90000043", "phone_1", 43),
    ] {
        let (filter, hint) = field.lookup(value);
        let explained = store
            .db
            .run_command(doc! {
                "explain": { "find": "users", "filter": filter, "hint": hint },
                "verbosity": "executionStats",
            })
            .await
            .unwrap();
        let plan = explained
            .get_document("queryPlanner")
            .and_then(|p| p.get_document("winningPlan"))
            .unwrap();
        let scan = index_scan(plan).unwrap_or_else(|| panic!("{value}: no index scan in {plan}"));
        assert_eq!(scan.get_str("indexName").unwrap(), index);
        let stats = explained.get_document("executionStats").unwrap();
        let examined = stats.get("totalDocsExamined").and_then(bson::Bson::as_i64);
        let examined = examined.or_else(|| stats.get_i32("totalDocsExamined").ok().map(i64::from));
        assert_eq!(examined, Some(1), "{value}: {stats}");

        let found = store.user_by(field, value).await.unwrap().unwrap();
        assert_eq!(found.num, num);
    }
}

/// The `IXSCAN` stage of a plan, however deep.
fn index_scan(stage: &Document) -> Option<&Document> {
    if stage.get_str("stage").is_ok_and(|s| s == "IXSCAN") {
        return Some(stage);
    }
    stage.get_document("inputStage").ok().and_then(index_scan)
}
