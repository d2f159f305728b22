//! Catching up after a reconnect: a chat's messages carry a sequence number, and a client
//! that names the last message it saw is sent what followed, in order, at most 500 per chat.

use crate::common::TestServer;
use palaver::core::App;
use palaver::core::history::{HistoryPage, REPLAY_MAX, Replay};
use palaver::store::Message;

/// Every message the replay has left, in the order it sends them.
async fn drain(app: &App, replay: &mut Replay) -> Vec<Message> {
    let mut sent = Vec::new();
    while let Some((message, _)) = app.next_missed(replay).await.unwrap() {
        sent.push(message);
    }
    sent
}

#[tokio::test]
async fn a_chat_numbers_its_messages_and_replays_the_newest_missed() {
    let s = TestServer::start().await;
    let ada = s.member("ada").await;
    let bob = s.member("bob").await;
    let channel = s
        .create_channel(&ada.token, &bob.user.num.to_string())
        .await;
    let app = &s.server.app;
    let chat = app
        .member_chat(&ada.user, channel.parse().unwrap())
        .await
        .unwrap();
    let mut posted = Vec::new();
    for i in 0..REPLAY_MAX + 20 {
        let author = if i % 2 == 0 { &ada.user } else { &bob.user };
        posted.push(
            app.post_message(author, &chat, &format!("m{i}"))
                .await
                .unwrap()
                .message,
        );
    }
    let seqs: Vec<i64> = posted.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=posted.len() as i64).collect::<Vec<_>>());

    // 509 missed: the newest 500 come, oldest first, then nothing more.
    let mut replay = app.replay(&chat, posted[10].num).await.unwrap();
    let sent = drain(app, &mut replay).await;
    assert_eq!(sent.len(), REPLAY_MAX);
    assert_eq!(sent[0].id, posted[20].id);
    assert_eq!(sent.last().unwrap().id, posted.last().unwrap().id);

    // A few missed, and one posted during the replay: all of them, in order, once, each
    // with its author.
    let last_seen = posted[posted.len() - 3].num;
    let mut replay = app.replay(&chat, last_seen).await.unwrap();
    for expected in &posted[posted.len() - 2..] {
        let (message, author) = app.next_missed(&mut replay).await.unwrap().unwrap();
        assert_eq!((message.id, author.id), (expected.id, expected.author_id));
    }
    let during = app
        .post_message(&ada.user, &chat, "during")
        .await
        .unwrap()
        .message;
    let rest = drain(app, &mut replay).await;
    assert_eq!(rest.iter().map(|m| m.id).collect::<Vec<_>>(), [during.id]);

    // One stored once the replay's rounds are spent, before the client joined the room: the
    // round after the join finds it.
    assert!(drain(app, &mut replay).await.is_empty());
    let gap = app
        .post_message(&bob.user, &chat, "in the gap")
        .await
        .unwrap()
        .message;
    assert!(drain(app, &mut replay).await.is_empty(), "no round left");
    replay.joined();
    let filled = drain(app, &mut replay).await;
    assert_eq!(filled.iter().map(|m| m.id).collect::<Vec<_>>(), [gap.id]);

    // The last message seen was deleted since: what came after it is still found.
    let gone = &posted[posted.len() - 2];
    let author = [&ada.user, &bob.user]
        .into_iter()
        .find(|u| u.id == gone.author_id)
        .unwrap();
    app.delete_message(author, &chat, gone.num).await.unwrap();
    let mut replay = app.replay(&chat, gone.num).await.unwrap();
    let after = drain(app, &mut replay).await;
    assert_eq!(
        after.iter().map(|m| m.id).collect::<Vec<_>>(),
        [posted.last().unwrap().id, during.id, gap.id]
    );

    // History pages by the same order.
    let page = HistoryPage {
        skip: 0,
        before: Some(posted[5].num),
        after: None,
        limit: 3,
    };
    let older = app.history(&chat, page).await.unwrap();
    assert_eq!(older.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4, 5]);
    s.stop().await;
}

#[tokio::test]
async fn two_nodes_number_one_chat_without_repeats() {
    let one = TestServer::start().await;
    let two = TestServer::start_on(&one.database).await;
    let ada = one.member("ada").await;
    let bob = one.member("bob").await;
    let channel: i64 = one
        .create_channel(&ada.token, &bob.user.num.to_string())
        .await
        .parse()
        .unwrap();
    let on_one = one
        .server
        .app
        .member_chat(&ada.user, channel)
        .await
        .unwrap();
    let on_two = two
        .server
        .app
        .member_chat(&bob.user, channel)
        .await
        .unwrap();
    // Each node's counter starts from what it last read, so they collide and must recover.
    // All at once, as an unlikely worst case: a number refused and then taken by nobody is a
    // gap, which orders nothing wrongly.
    let texts: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut posts = Vec::new();
    for text in &texts {
        posts.push(one.server.app.post_message(&ada.user, &on_one, text));
        posts.push(two.server.app.post_message(&bob.user, &on_two, text));
    }
    let mut seqs: Vec<i64> = futures::future::join_all(posts)
        .await
        .into_iter()
        .map(|posted| posted.unwrap().message.seq)
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 40, "{seqs:?}");
    two.stop().await;
    one.stop().await;
}
