"""The MinIO setup step: the application's bucket, and its own least-privilege user and policy.

It runs once MinIO is ready, in a new container of the MinIO image (for `mc`), again when its input changes (root
or application password, bucket: stdin and script) or the MinIO container is new.
"""

from __future__ import annotations

import json
import shlex

from pydantic import SecretStr

from ..settings import MINIO_APP_USER, Settings
from .minio import MINIO_URL
from .model import NewInstance, OneShotSpec


def minio_app_policy(bucket: str) -> dict[str, object]:
    """The application user's only permissions: list its bucket, read, write and delete objects in it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }


def minio_setup_script(bucket: str) -> str:
    """Creates the bucket, the application's policy and user, and attaches one to the other; every step is
    idempotent (`mb --ignore-existing`; `policy create` and `user add` overwrite; `mc` treats an attachment that is
    already in effect as done, cmd/admin-policy-attach.go in minio/mc).

    The root credentials reach `mc` in a private config folder (`MC_CONFIG_DIR`, removed on exit), not in
    `MC_HOST_*`, whose parser splits on `:` and would break a password containing one (cmd/config.go,
    `parseEnvURLStr`); the application's password reaches `mc admin user add` on its stdin, which it reads when
    the secret key argument is left out (cmd/admin-user-add.go, `fetchUserKeys`), so no secret is an argument.
    """
    target = shlex.quote(f"stack/{bucket}")
    user = shlex.quote(MINIO_APP_USER)
    return f"""set -eu
umask 077
IFS= read -r config
IFS= read -r policy
IFS= read -r app_password
MC_CONFIG_DIR=$(mktemp -d)
export MC_CONFIG_DIR
trap 'rm -rf "$MC_CONFIG_DIR"' EXIT
printf '%s\\n' "$config" > "$MC_CONFIG_DIR/config.json"
printf '%s\\n' "$policy" > "$MC_CONFIG_DIR/policy.json"
mc mb --ignore-existing {target}
mc admin policy create stack {user} "$MC_CONFIG_DIR/policy.json"
printf '%s\\n' "$app_password" | mc admin user add stack {user}
mc admin policy attach stack {user} --user {user}
"""


def minio_setup_input(settings: Settings) -> SecretStr:
    """The setup step's stdin: mc's config with the root alias `stack`, the policy, the application's password."""
    config = {
        "version": "10",
        "aliases": {
            "stack": {
                "url": MINIO_URL,
                "accessKey": settings.minio_root_user,
                "secretKey": settings.minio_root_password.get_secret_value(),
                "api": "s3v4",
                "path": "auto",
            }
        },
    }
    password = settings.minio_app_password.get_secret_value()
    lines = [json.dumps(config), json.dumps(minio_app_policy(settings.s3_bucket)), password]
    return SecretStr("\n".join(lines) + "\n")


def minio_setup_step(settings: Settings) -> OneShotSpec:
    """With `mc` from the MinIO image once MinIO is ready; again when MinIO's container is new."""
    return OneShotSpec(
        name="minio-setup",
        service="minio",
        script=minio_setup_script(settings.s3_bucket),
        stdin=minio_setup_input(settings),
        after=("minio",),
        talks_to=("minio",),
        reruns=(NewInstance("minio"),),
    )
