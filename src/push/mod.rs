//! Push delivery to users with no live connection: FCM HTTP v1 when configured, otherwise the
//! intents are only logged.

pub mod fcm;

use rooms::{PushIntent, PushSink};

#[derive(Debug, Default)]
pub struct LogPushSink;

impl PushSink for LogPushSink {
    fn push(&self, intent: PushIntent) {
        let title = intent.text_for(None).map(|t| t.title.as_str());
        tracing::info!(user = %intent.user, ?title, "push intent (no push service configured)");
    }
}
