"""An S3 endpoint for tests: moto in server mode on loopback.

It stands in for MinIO (the cluster's object store) or any S3 API: no MinIO server can be
installed on the development and CI machines. boto3, s3fs and MLflow speak the same protocol
to it.
"""

from __future__ import annotations

from moto.server import ThreadedMotoServer

from launch.processes import free_port

# What moto accepts and what boto3, s3fs and MLflow read from the environment.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoS3:
    """An S3 endpoint on a fixed loopback port that a test can take down and bring back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
