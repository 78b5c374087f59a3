"""The Redis config the program uploads, loaded by a real redis-server (Debian's package).

The password must survive redis.conf's parser whatever it contains, and the health check must pass with it
and fail without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from harness import TEST_SECRETS
from local_servers import free_port, require

from sentinel_infra.settings import Settings
from sentinel_infra.specs.redis import redis

PASSWORDS = ["plain-password-123", 'with "quotes" and \\back\\slashes', "spaces  and # hash ; semi 'single'"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_redis_accepts_the_uploaded_config_and_the_health_check_passes(password: str, tmp_path: Path) -> None:
    require(shutil.which("redis-server"), "Redis (package redis-server)")
    settings = Settings.model_validate({**TEST_SECRETS, "redisPassword": password, "serverTag": "m", "clientTag": "m"})
    spec = redis(settings)
    [upload] = spec.files
    content = upload.content.get_secret_value() if not isinstance(upload.content, str) else upload.content
    port = free_port()
    config = tmp_path / "redis.conf"
    config.write_text(content.replace("dir /data", f"dir {tmp_path}") + f"port {port}\nbind 127.0.0.1\n")
    server = subprocess.Popen(["redis-server", str(config)], stdout=subprocess.DEVNULL)
    try:
        check = spec.healthcheck.test[1].replace("-h 127.0.0.1", f"-h 127.0.0.1 -p {port}")
        deadline = time.monotonic() + 20
        healthy = False
        while time.monotonic() < deadline and not healthy:
            healthy = (
                subprocess.run(
                    ["/bin/sh", "-c", check], env={**os.environ, "REDISCLI_AUTH": password}, check=False
                ).returncode
                == 0
            )
            time.sleep(0.1)
        assert healthy, "the health check never passed with the configured password"
        wrong = subprocess.run(["/bin/sh", "-c", check], env={**os.environ, "REDISCLI_AUTH": "wrong"}, check=False)
        assert wrong.returncode != 0, "the health check passed with a wrong password"
    finally:
        server.terminate()
        server.wait(timeout=10)
