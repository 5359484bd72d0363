//! The built-in reference target (placeholder until the target branch merges).
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TargetConfig {
    #[serde(skip)]
    pub latency: Latency,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub queue: usize,
    #[serde(skip)]
    pub job_duration: Duration,
    #[serde(default)]
    pub page_size: usize,
}

pub struct RunningTarget {
    pub addr: SocketAddr,
}

pub async fn spawn(listen: SocketAddr, config: TargetConfig) -> std::io::Result<RunningTarget> {
    let _ = (listen, config);
    todo!()
}

pub fn check_listen(addr: SocketAddr, allow_non_loopback: bool) -> Result<(), String> {
    let _ = (addr, allow_non_loopback);
    todo!()
}

#[derive(Debug, Clone, Default)]
pub enum Latency {
    #[default]
    None,
}
impl std::str::FromStr for Latency {
    type Err = String;
    fn from_str(_s: &str) -> Result<Self, String> {
        todo!()
    }
}
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: TargetConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = (listener, config, shutdown);
    todo!()
}
