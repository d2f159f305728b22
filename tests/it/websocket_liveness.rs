//! Half-open plain WebSockets are noticed: the server pings every 20 s and drops a peer that
//! has said nothing (not even a pong) for 45 s, while a peer that answers stays. Slow by
//! nature: about 70 s.

use std::time::{Duration, Instant};

use crate::common::TestServer;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_silent_peer_is_pinged_then_dropped_and_an_answering_one_stays() {
    let s = TestServer::start().await;
    let url = format!("ws://{}/v2", s.server.addr);
    let (mut silent, _) = tokio_tungstenite::connect_async(url.clone()).await.unwrap();
    let (answering, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    // The answering peer reads all along, so its client answers each ping with a pong.
    let (mut sink, mut stream) = answering.split();
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(Ok(frame)) = stream.next().await {
            match frame {
                Message::Ping(_) => pings += 1,
                Message::Text(text) => return (pings, Some(text.to_string())),
                _ => {}
            }
        }
        (pings, None)
    });

    // The silent peer reads nothing for 70 s, so it answers no ping.
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs(70)).await;
    let mut pings = 0;
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), silent.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break true,
            Err(_) => break false,
        }
    };
    assert!(pings >= 2, "pinged every 20 s: {pings} pings");
    assert!(ended, "dropped after 45 s of silence");

    // The answering peer is still served.
    let keep_alive = r#"{"id":"1","payload":{},"type":"CONN_KEEP_ALIVE_REQUEST"}"#;
    sink.send(Message::Text(keep_alive.into())).await.unwrap();
    let (heard_pings, answer) = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("an answer")
        .unwrap();
    assert!(
        heard_pings >= 3,
        "{heard_pings} pings in {:?}",
        began.elapsed()
    );
    assert!(answer.unwrap().contains("CONN_KEEP_ALIVE_SUCCESS"));
    s.stop().await;
}
