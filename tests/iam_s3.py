"""An auditor who may only read the lake, on the IAM-enforcing server ``iam_s3``
(tests/conftest.py): verify needs exactly what docs/VERIFY.md asks for."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import LocalS3


def read_only_policy(bucket: str) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
        ],
    }


def read_only_reader(endpoint: str, bucket: str) -> LocalS3:
    """Create an auditor allowed only ``READ_ONLY_ACTIONS`` on ``bucket``, switch IAM
    enforcement on, prove a write is refused, and return the auditor's S3."""
    import boto3

    iam = boto3.client(
        "iam", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    iam.create_user(UserName="auditor")
    policy = json.dumps(read_only_policy(bucket))
    iam.put_user_policy(UserName="auditor", PolicyName="lake-read", PolicyDocument=policy)
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    assert httpx.post(f"{endpoint}/moto-api/reset-auth", content="0").status_code == 200
    reader = LocalS3(endpoint, bucket, key["AccessKeyId"], key["SecretAccessKey"])
    client = reader.client()
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.put_object(Bucket=bucket, Key="x", Body=b"x")  # enforcement is on
    return reader
