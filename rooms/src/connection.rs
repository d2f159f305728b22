//! One connection to Redis, a single server or a Redis Cluster, behind one type: commands,
//! pipelines and pub/sub alike, both re-established (with their subscriptions) by the redis
//! crate after an outage or a failover.
//!
//! On a cluster, each key lives on the shard that owns its slot. A pipeline of keys in many
//! slots (presence renews hundreds of users at once) is sent as its commands, concurrently, each
//! to its shard. Routed channels use sharded pub/sub, so that a chat's traffic crosses only the
//! shard that owns its channel; the few channels every node hears (cache changes, the admin
//! UI's) use plain pub/sub, which a cluster carries to every shard.

use std::time::Duration;

use futures::future::{BoxFuture, try_join_all};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, PushInfo, RedisFuture, RedisResult, Value};

/// How long a connection may take to be made.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// The URL with RESP3 asked for: subscriptions share the command connection only with it.
pub(crate) fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}protocol=resp3")
}

impl Connection {
    /// Connect to `url`: one Redis, or a cluster when it lists several seed URLs separated by
    /// commas. Every push (a message on a subscribed channel) goes to `pushed`.
    pub async fn open(
        url: &str,
        answer_within: Duration,
        pushed: impl Fn(PushInfo) + Send + Sync + 'static,
    ) -> RedisResult<Self> {
        let sender = move |push: PushInfo| {
            pushed(push);
            Ok::<(), std::convert::Infallible>(())
        };
        let seeds: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(resp3)
            .collect();
        if seeds.len() > 1 {
            let client = ClusterClientBuilder::new(seeds)
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(sender)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(answer_within)
                .retries(2)
                .min_retry_wait(50)
                .max_retry_wait(500)
                .build()?;
            return Ok(Self::Cluster(client.get_async_connection().await?));
        }
        let client = redis::Client::open(resp3(url))?;
        let config = ConnectionManagerConfig::new()
            .set_push_sender(sender)
            .set_automatic_resubscription()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(answer_within))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        Ok(Self::Single(
            ConnectionManager::new_with_config(client, config).await?,
        ))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Subscribe to channels every node may hear (plain pub/sub).
    pub async fn subscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Single(c) => c.subscribe(channels).await,
            Self::Cluster(c) => c.subscribe(channels).await,
        }
    }

    pub async fn unsubscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Single(c) => c.unsubscribe(channels).await,
            Self::Cluster(c) => c.unsubscribe(channels).await,
        }
    }

    /// Subscribe to routed channels: on a cluster, sharded, each on its own shard (a sharded
    /// subscription may not cross slots).
    pub async fn subscribe_routed(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Single(c) => c.subscribe(channels).await,
            Self::Cluster(c) => {
                let each = channels.iter().map(|channel| {
                    let mut c = c.clone();
                    async move { c.ssubscribe(channel).await }
                });
                try_join_all(each).await.map(|_| ())
            }
        }
    }

    pub async fn unsubscribe_routed(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Single(c) => c.unsubscribe(channels).await,
            Self::Cluster(c) => {
                let each = channels.iter().map(|channel| {
                    let mut c = c.clone();
                    async move { c.sunsubscribe(channel).await }
                });
                try_join_all(each).await.map(|_| ())
            }
        }
    }

    /// The command that publishes on a routed channel.
    pub fn routed_publish(&self) -> &'static str {
        match self {
            Self::Single(_) => "PUBLISH",
            Self::Cluster(_) => "SPUBLISH",
        }
    }

    /// What Redis answers to say it is there: one Redis, its connection's id (a new one says
    /// the connection was made again); a cluster, one of its nodes' word on the whole.
    pub fn health_command(&self) -> Cmd {
        match self {
            Self::Single(_) => redis::cmd("CLIENT").arg("ID").to_owned(),
            Self::Cluster(_) => redis::cmd("CLUSTER").arg("INFO").to_owned(),
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            // Our pipelines are plain batches (never MULTI/EXEC): each command may go
            // to its own shard, and the answers come back in order.
            Self::Cluster(c) => {
                let each = pipeline.cmd_iter().map(|cmd| {
                    let mut c = c.clone();
                    async move { c.req_packed_command(cmd).await }
                });
                let all: BoxFuture<'a, RedisResult<Vec<Value>>> = Box::pin(try_join_all(each));
                all
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_ask_for_resp3() {
        assert_eq!(resp3("redis://h:1"), "redis://h:1?protocol=resp3");
        assert_eq!(
            resp3("redis://h:1/0?x=1"),
            "redis://h:1/0?x=1&protocol=resp3"
        );
        assert_eq!(
            resp3("redis://h?protocol=resp3"),
            "redis://h?protocol=resp3"
        );
    }
}
