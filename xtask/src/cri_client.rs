//! A minimal blocking CRI v1 client: the calls `bench --cri` times, sent to
//! containerd's CRI plugin over its unix socket.
//!
//! critest would be the usual driver, but cri-tools is in no registry these
//! machines reach; the CRI calls themselves are a handful of unary gRPC
//! methods, generated from our own `proto/cri.proto` by build.rs. Each call
//! runs to completion on a current-thread tokio runtime owned by the client,
//! so callers stay synchronous and time each call with a plain `Instant`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::Result;

/// The generated messages and client stubs of package `runtime.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub(crate) mod pb {
    tonic::include_proto!("runtime.v1");
}

use pb::image_service_client::ImageServiceClient;
use pb::runtime_service_client::RuntimeServiceClient;

/// How long one call may take before the bench gives up on it. Pod start
/// under load takes well under a second here; a pull from the local
/// registry a few seconds.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to one CRI endpoint.
pub(crate) struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
}

impl Cri {
    /// Connects to the CRI socket at `sock` (no call is made yet).
    pub(crate) fn connect(sock: &Path) -> Result<Cri> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let path: PathBuf = sock.to_path_buf();
        // The URI is required by tonic but unused: the connector ignores it.
        let endpoint = Endpoint::from_static("http://[::]:0")
            .connect_timeout(Duration::from_secs(10))
            .timeout(CALL_TIMEOUT);
        let channel = rt
            .block_on(
                endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                })),
            )
            .map_err(|e| format!("connecting to {}: {e}", sock.display()))?;
        Ok(Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            image: ImageServiceClient::new(channel),
        })
    }

    /// Runs one call to completion, bounded by [`CALL_TIMEOUT`].
    fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        match self
            .rt
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT, fut).await })
        {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(format!(
                "CRI {what}: {:?}: {}",
                status.code(),
                status.message()
            )),
            Err(_) => Err(format!(
                "CRI {what}: no answer within {} s",
                CALL_TIMEOUT.as_secs()
            )),
        }
    }

    /// The runtime's name and version.
    pub(crate) fn version(&self) -> Result<pb::VersionResponse> {
        let mut c = self.runtime.clone();
        self.call(
            "Version",
            c.version(pb::VersionRequest {
                version: "v1".into(),
            }),
        )
    }

    /// Pulls `image` (through containerd's registry mirrors).
    pub(crate) fn pull_image(&self, image: &str) -> Result<String> {
        let mut c = self.image.clone();
        let r = self.call(
            &format!("PullImage {image}"),
            c.pull_image(pb::PullImageRequest {
                image: Some(pb::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                sandbox_config: None,
            }),
        )?;
        Ok(r.image_ref)
    }

    /// Starts a pod sandbox with runtime handler `handler`; its id.
    pub(crate) fn run_pod_sandbox(
        &self,
        config: &pb::PodSandboxConfig,
        handler: &str,
    ) -> Result<String> {
        let mut c = self.runtime.clone();
        let r = self.call(
            "RunPodSandbox",
            c.run_pod_sandbox(pb::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.into(),
            }),
        )?;
        Ok(r.pod_sandbox_id)
    }

    /// Stops every process of the sandbox (idempotent).
    pub(crate) fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        self.call(
            "StopPodSandbox",
            c.stop_pod_sandbox(pb::StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            }),
        )
        .map(drop)
    }

    /// Removes the sandbox and any container left in it (idempotent).
    pub(crate) fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        self.call(
            "RemovePodSandbox",
            c.remove_pod_sandbox(pb::RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            }),
        )
        .map(drop)
    }

    /// Creates a container in sandbox `pod`; its id.
    pub(crate) fn create_container(
        &self,
        pod: &str,
        config: &pb::ContainerConfig,
        sandbox: &pb::PodSandboxConfig,
    ) -> Result<String> {
        let mut c = self.runtime.clone();
        let r = self.call(
            "CreateContainer",
            c.create_container(pb::CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(config.clone()),
                sandbox_config: Some(sandbox.clone()),
            }),
        )?;
        Ok(r.container_id)
    }

    /// Starts a created container.
    pub(crate) fn start_container(&self, id: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        self.call(
            "StartContainer",
            c.start_container(pb::StartContainerRequest {
                container_id: id.into(),
            }),
        )
        .map(drop)
    }

    /// Stops a container, SIGKILL after `grace_s` seconds.
    pub(crate) fn stop_container(&self, id: &str, grace_s: i64) -> Result<()> {
        let mut c = self.runtime.clone();
        self.call(
            "StopContainer",
            c.stop_container(pb::StopContainerRequest {
                container_id: id.into(),
                timeout: grace_s,
            }),
        )
        .map(drop)
    }

    /// Removes a container (killing it first if it still runs).
    pub(crate) fn remove_container(&self, id: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        self.call(
            "RemoveContainer",
            c.remove_container(pb::RemoveContainerRequest {
                container_id: id.into(),
            }),
        )
        .map(drop)
    }

    /// The container's state as CRI reports it.
    pub(crate) fn container_state(&self, id: &str) -> Result<pb::ContainerState> {
        let mut c = self.runtime.clone();
        let r = self.call(
            "ContainerStatus",
            c.container_status(pb::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            }),
        )?;
        let state = r.status.map(|s| s.state).unwrap_or_default();
        pb::ContainerState::try_from(state)
            .map_err(|_| format!("CRI ContainerStatus {id}: unknown state {state}"))
    }
}

#[cfg(test)]
mod tests {
    use super::pb;
    use prost::Message;

    /// The field numbers are the wire contract with containerd: a wrong one
    /// would be skipped silently as an unknown field. These bytes are the
    /// tags of k8s.io/cri-api's api.proto for the fields the bench sets.
    #[test]
    fn wire_tags_match_cri_api() {
        let req = pb::RunPodSandboxRequest {
            config: Some(pb::PodSandboxConfig {
                metadata: Some(pb::PodSandboxMetadata {
                    name: "p".into(),
                    uid: "u".into(),
                    namespace: "n".into(),
                    attempt: 1,
                }),
                ..Default::default()
            }),
            runtime_handler: "rr".into(),
        };
        // config = 1 { metadata = 1 { name = 1, uid = 2, namespace = 3,
        // attempt = 4 } }, runtime_handler = 2.
        let want = [
            0x0a, 0x0d, 0x0a, 0x0b, 0x0a, 1, b'p', 0x12, 1, b'u', 0x1a, 1, b'n', 0x20, 1, 0x12, 2,
            b'r', b'r',
        ];
        assert_eq!(req.encode_to_vec(), want);

        let ctr = pb::ContainerConfig {
            command: vec!["s".into()],
            linux: Some(pb::LinuxContainerConfig {
                security_context: Some(pb::LinuxContainerSecurityContext {
                    namespace_options: Some(pb::NamespaceOption {
                        pid: pb::NamespaceMode::Container as i32,
                        ..Default::default()
                    }),
                }),
            }),
            ..Default::default()
        };
        // command = 3; linux = 15 { security_context = 2 {
        // namespace_options = 3 { pid = 2: CONTAINER = 1 } } }.
        let want = [0x1a, 1, b's', 0x7a, 6, 0x12, 4, 0x1a, 2, 0x10, 1];
        assert_eq!(ctr.encode_to_vec(), want);

        let stop = pb::StopContainerRequest {
            container_id: "c".into(),
            timeout: 2,
        };
        assert_eq!(stop.encode_to_vec(), [0x0a, 1, b'c', 0x10, 2]);
    }
}
