//! Push delivery. Until FCM is configured, push intents are logged so they can be traced.

use rooms::{PushIntent, PushSink};

#[derive(Debug, Default)]
pub struct LogPushSink;

impl PushSink for LogPushSink {
    fn push(&self, intent: PushIntent) {
        tracing::info!(user = %intent.user, title = %intent.title, "push intent (no push service configured)");
    }
}
