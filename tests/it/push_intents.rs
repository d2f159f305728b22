//! Deliver or push: a recipient with no live connection gets a push intent, one with a live
//! connection does not, and nobody is pushed for their own actions.

use std::sync::Arc;

use crate::common::{RecordingPush, TestServer, mongodb_uri, new_database_name};
use palaver::core::HubUser;
use rooms::Present;

#[tokio::test]
async fn offline_recipients_get_exactly_one_push_per_event() {
    let push = Arc::new(RecordingPush::default());
    let s = TestServer::start_with(&mongodb_uri(), &new_database_name(), push.clone()).await;
    let (ada_num, ada_token) = s.signup("ada").await;
    let (bob_num, _) = s.signup("bob").await;
    let app = &s.server.app;
    let ada = s.user(&ada_num).await;
    let bob = s.user(&bob_num).await;

    // A new channel with offline bob: bob is told, ada is not.
    let channel = s.create_channel(&ada_token, &bob_num).await;
    let pushed = push.take();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(pushed[0].user, bob.id.hub_user());
    assert_eq!(pushed[0].texts["chats"].body, "ada started a chat with you");

    // A message while bob is offline: one push with the author and a preview.
    let chat = app
        .member_chat(&ada, channel.parse().unwrap())
        .await
        .unwrap();
    let message = app
        .post_message(&ada, &chat, "are you there?")
        .await
        .unwrap()
        .message;
    let pushed = push.take();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(pushed[0].user, bob.id.hub_user());
    let text = &pushed[0].texts["chats"];
    assert_eq!(text.title, "ada");
    assert_eq!(text.body, "are you there?");
    assert_eq!(text.data["chat_id"], chat.id.to_hex());
    assert_eq!(text.data["message_id"], message.id.to_hex());

    // Once bob has a live connection, he gets the event and no push.
    let online = app.hub.connect(Present::User(bob.id.hub_user())).await;
    app.post_message(&ada, &chat, "there you are")
        .await
        .unwrap();
    assert!(push.take().is_empty());
    drop(online);

    // Deleting a message pushes nobody; nor does opening the welcome channel.
    app.delete_message(&ada, &chat, message.num).await.unwrap();
    app.welcome_chat(&ada).await.unwrap();
    assert!(push.take().is_empty());
    s.stop().await;
}
