"""Seeds a moto_server that enforces IAM (started with INITIAL_NO_AUTH_ACTION_COUNT) and makes
a user whose only rights are the given policy.

usage: python moto_iam_user.py ENDPOINT BUCKET POLICY_JSON KEY...

Creates BUCKET, puts each KEY (body: the key's name), creates user `haul-test` with
POLICY_JSON inline and prints its access key id and secret on one line. Makes exactly
1 + len(KEY) + 3 requests, so the server can be told how many to let through unchecked.
"""
import sys

import boto3

endpoint, bucket, policy, *keys = sys.argv[1:]
options = dict(
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="AKIAHAULTESTKEY00001",
    aws_secret_access_key="setup",
)
s3 = boto3.client("s3", **options)
iam = boto3.client("iam", **options)
s3.create_bucket(Bucket=bucket)
for key in keys:
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
iam.create_user(UserName="haul-test")
iam.put_user_policy(UserName="haul-test", PolicyName="haul-test", PolicyDocument=policy)
created = iam.create_access_key(UserName="haul-test")["AccessKey"]
print(created["AccessKeyId"], created["SecretAccessKey"])
