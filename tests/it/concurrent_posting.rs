//! Many senders at once: each gets their answer once their own message is stored, every
//! message is stored once, and each chat's sequence numbers stay unique and gapless.

use crate::common::{self, TestServer};
use bson::doc;
use futures::TryStreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn concurrent_senders_are_stored_once_each_in_order() {
    let s = TestServer::start().await;
    // Six chats, each with its own pair of users; each sender sends 40 at once, within one
    // user's burst of writes.
    let mut chats = Vec::new();
    for i in 0..6 {
        let (_, token) = s.signup(&format!("sender{i}")).await;
        let (other, _) = s.signup(&format!("other{i}")).await;
        let chat = s.requests_chat(&token, &other).await;
        chats.push((token, chat));
    }
    let sends = (0..240).map(|i| {
        let (token, chat) = &chats[i % 6];
        s.http
            .post(s.url(&format!("/chat/{chat}")))
            .header("authorization", token)
            .json(&json!({ "text": format!("message {i}") }))
            .send()
    });
    let answers = futures::future::join_all(sends).await;
    let mut acknowledged = Vec::new();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
        let message: Value = answer.json().await.unwrap();
        acknowledged.push(bson::oid::ObjectId::parse_str(message["id"].as_str().unwrap()).unwrap());
    }

    let store = palaver::store::Store::connect(&common::mongodb_uri(), &s.database)
        .await
        .unwrap();
    let stored = store
        .messages
        .count_documents(doc! { "_id": { "$in": &acknowledged } })
        .await
        .unwrap();
    assert_eq!(stored, 240, "every acknowledged message is stored");
    for (_, chat) in &chats {
        let chat = bson::oid::ObjectId::parse_str(chat).unwrap();
        let messages: Vec<palaver::store::Message> = store
            .messages
            .find(doc! { "chat_id": chat })
            .sort(doc! { "seq": 1 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
        let expected: Vec<i64> = (1..=40).collect();
        assert_eq!(seqs, expected, "one number each, none skipped");
    }
    s.stop().await;
}

/// A collection in a fresh database whose documents' `n` is unique.
async fn unique_numbers() -> mongodb::Collection<bson::Document> {
    let client = mongodb::Client::with_uri_str(common::mongodb_uri())
        .await
        .unwrap();
    let collection = client
        .database(&common::new_database_name())
        .collection::<bson::Document>("docs");
    let unique = mongodb::options::IndexOptions::builder()
        .unique(true)
        .build();
    let index = mongodb::IndexModel::builder()
        .keys(doc! { "n": 1 })
        .options(unique)
        .build();
    collection.create_index(index).await.unwrap();
    collection
}

/// Inserts that arrive together go as one unordered `insertMany`: a document a unique index
/// refuses is refused alone, and the rest of its batch is stored.
#[tokio::test]
async fn a_batch_refuses_only_what_a_unique_index_refuses() {
    let collection = unique_numbers().await;
    collection.insert_one(doc! { "n": 3 }).await.unwrap();

    let batches = std::sync::Arc::new(palaver::store::InsertBatches::inserts(collection.clone()));
    // Two copies of each of 20 numbers, all at once.
    let inserts = (0..40i32).map(|i| {
        let batches = batches.clone();
        tokio::spawn(async move { (i % 20, batches.insert(doc! { "n": i % 20 }).await) })
    });
    let mut stored = vec![0; 20];
    for insert in futures::future::join_all(inserts).await {
        let (n, outcome) = insert.unwrap();
        if outcome.expect("no failure but a refusal").is_some() {
            stored[n as usize] += 1;
        }
    }
    let mut expected = vec![1; 20];
    expected[3] = 0;
    assert_eq!(stored, expected, "one copy of each number, none of 3");
    assert_eq!(collection.count_documents(doc! {}).await.unwrap(), 20);
}

/// An insert whose first attempt landed though its answer was lost is retried by the driver,
/// and the retry meets the first: that counts as done. A document a unique index refuses for
/// another's sake is still refused.
#[tokio::test]
async fn an_insert_refused_by_its_own_first_attempt_is_done() {
    use palaver::store::InsertNew;
    let collection = unique_numbers().await;
    let (first, other) = (bson::oid::ObjectId::new(), bson::oid::ObjectId::new());
    let landed = doc! { "_id": first, "n": 1 };
    // The first attempt, whose answer never came.
    collection.insert_one(&landed).await.unwrap();

    collection
        .insert_new(&landed, first)
        .await
        .expect("its own first attempt: done");
    let taken = collection
        .insert_new(&doc! { "_id": other, "n": 1 }, other)
        .await;
    assert!(
        taken.is_err_and(|e| e.to_string().contains("E11000")),
        "another document's number is refused"
    );
    assert_eq!(collection.count_documents(doc! {}).await.unwrap(), 1);
}

/// A time `seconds` after a fixed moment.
fn at(seconds: i64) -> bson::DateTime {
    bson::DateTime::from_millis(1_700_000_000_000 + seconds * 1000)
}

/// Chats `ids` in a fresh database, each last active at `at(seconds)`, and a queue of moves of
/// their last activity that gathers each chat's for `linger`, writing at most `per_second`
/// chats a second.
async fn chats_and_moves(
    ids: &[bson::oid::ObjectId],
    seconds: i64,
    linger: std::time::Duration,
    per_second: u32,
) -> (
    mongodb::Collection<bson::Document>,
    palaver::store::TimeMoves,
) {
    let client = mongodb::Client::with_uri_str(common::mongodb_uri())
        .await
        .unwrap();
    let db = client.database(&common::new_database_name());
    let chats = db.collection::<bson::Document>("chats");
    for id in ids {
        chats
            .insert_one(doc! { "_id": id, "updated_at": at(seconds) })
            .await
            .unwrap();
    }
    let majority = mongodb::options::WriteConcern::majority();
    let pace = palaver::store::Pace { linger, per_second };
    let moves =
        palaver::store::TimeMoves::moves_forward(db, "chats", "updated_at", &majority, pace)
            .unwrap();
    (chats, moves)
}

/// Chats' last activity moves forward, each chat to the latest time it was given, and never
/// back; once settled, every queued move is written.
#[tokio::test]
async fn last_activity_moves_forward_only_many_chats_at_once() {
    let ids: Vec<bson::oid::ObjectId> = (0..5).map(|_| bson::oid::ObjectId::new()).collect();
    let (chats, moves) = chats_and_moves(&ids, 100, std::time::Duration::from_secs(60), 100).await;
    let moves = std::sync::Arc::new(moves);
    // Chat i is moved to 50 (back), then 100 + 10 * i + k for k in 0..10, all at once.
    let mut all = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        for seconds in std::iter::once(50).chain((0..10).map(|k| 100 + 10 * i as i64 + k)) {
            let (moves, id) = (moves.clone(), *id);
            all.push(tokio::spawn(async move {
                moves.move_forward(id, at(seconds)).await
            }));
        }
    }
    for queued in futures::future::join_all(all).await {
        queued.unwrap().expect("queued");
    }
    moves.settled().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let chat = chats.find_one(doc! { "_id": id }).await.unwrap().unwrap();
        let expected = at((100 + 10 * i as i64 + 9).max(100));
        assert_eq!(
            chat.get_datetime("updated_at").unwrap(),
            &expected,
            "chat {i}"
        );
    }
}

/// Unsettled, a chat's moves are written once they have gathered for the while given, as one
/// move to the latest time; one chat's can be written at once on their own.
#[tokio::test]
async fn last_activity_is_written_after_gathering() {
    use bson::oid::ObjectId;

    let (id, other) = (ObjectId::new(), ObjectId::new());
    let (chats, moves) =
        chats_and_moves(&[id, other], 0, std::time::Duration::from_secs(2), 100).await;
    for seconds in [5, 7, 6] {
        moves.move_forward(id, at(seconds)).await.unwrap();
    }
    moves.move_forward(other, at(3)).await.unwrap();
    let updated_at = |chat: ObjectId| {
        let chats = chats.clone();
        async move {
            let chat = chats.find_one(doc! { "_id": chat }).await.unwrap().unwrap();
            *chat.get_datetime("updated_at").unwrap()
        }
    };
    moves.settled_for(other).await.unwrap();
    assert_eq!(updated_at(other).await, at(3), "written on its own");
    assert_eq!(updated_at(id).await, at(0), "gathering, not written yet");
    let began = std::time::Instant::now();
    while updated_at(id).await != at(7) {
        assert!(
            began.elapsed() < std::time::Duration::from_secs(10),
            "never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Many chats due at once are written no faster than the pace allows, the rest gathering
/// meanwhile; settling writes them all at once whatever the pace.
#[tokio::test]
async fn last_activity_is_paced() {
    let ids: Vec<bson::oid::ObjectId> = (0..20).map(|_| bson::oid::ObjectId::new()).collect();
    let (chats, moves) = chats_and_moves(&ids, 0, std::time::Duration::ZERO, 4).await;
    for id in &ids {
        moves.move_forward(*id, at(1)).await.unwrap();
    }
    let written = || {
        let chats = chats.clone();
        async move {
            chats
                .count_documents(doc! { "updated_at": at(1) })
                .await
                .unwrap()
        }
    };
    // Four chats a second: within one second the first command and at most one more.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let paced = written().await;
    assert!(
        (1..=8).contains(&paced),
        "{paced} of 20 written in a second"
    );
    moves.settled().await.unwrap();
    assert_eq!(written().await, 20, "all written once settled");
}

/// Numeric ids from two nodes' allocators at once, fast enough for their blocks to grow and to
/// be reserved ahead: every id is handed out once.
#[tokio::test]
async fn numeric_ids_are_unique_across_nodes() {
    let client = mongodb::Client::with_uri_str(common::mongodb_uri())
        .await
        .unwrap();
    let db = client.database(&common::new_database_name());
    let nodes: Vec<std::sync::Arc<palaver::store::IdAllocator>> = (0..2)
        .map(|_| std::sync::Arc::new(palaver::store::IdAllocator::new(db.collection("counters"))))
        .collect();
    let takers = (0..8).map(|i| {
        let node = nodes[i % 2].clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..400 {
                ids.push(node.next("messages").await.unwrap());
            }
            ids
        })
    });
    let mut all = Vec::new();
    for taken in futures::future::join_all(takers).await {
        all.extend(taken.unwrap());
    }
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count, "no id handed out twice");
}
