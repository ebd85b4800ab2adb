"""Benchmark: obstore against boto3 as S3 clients: import, client, 500 sequential 10 KB PUTs.

Each measurement is a fresh process (imports are not warm), the two clients alternate, and the
table shows medians; both talk to one SeaweedFS server (the dev stack's).

    uv run python benchmarks/s3_clients.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from data_platform import devstack

PROBE = r"""
import json, os, sys, time
endpoint, client_name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = os.urandom(10 * 1024)
started = time.perf_counter()
if client_name == "obstore":
    import obstore
    from obstore.store import S3Store
    imported = time.perf_counter()
    store = S3Store("bench", endpoint=endpoint, access_key_id="testing",
                    secret_access_key="testing", region="us-east-1",
                    client_options={"allow_http": True}, virtual_hosted_style_request=False)
    made = time.perf_counter()
    for index in range(count):
        obstore.put(store, f"obstore/{index}", body)
else:
    import boto3
    imported = time.perf_counter()
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    made = time.perf_counter()
    for index in range(count):
        client.put_object(Bucket="bench", Key=f"boto3/{index}", Body=body)
done = time.perf_counter()
print(json.dumps({"import": imported - started, "client": made - imported, "puts": done - made}))
"""
CLIENTS = ("obstore", "boto3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--puts", type=int, default=500)
    args = parser.parse_args()
    server = devstack.start_s3_server()
    try:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=devstack.S3_ACCESS_KEY,
            aws_secret_access_key=devstack.S3_SECRET_KEY,
        ).create_bucket(Bucket="bench")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in CLIENTS}
        for number in range(args.rounds):
            order = CLIENTS if number % 2 == 0 else CLIENTS[::-1]
            for name in order:
                command = [sys.executable, "-c", PROBE, server.endpoint_url, name, str(args.puts)]
                output = subprocess.run(command, capture_output=True, text=True, check=True)
                results[name].append(json.loads(output.stdout))
    finally:
        server.stop()
    print(f"medians of {args.rounds} fresh processes; {args.puts} sequential 10 KB PUTs")
    print(f"{'client':10}{'import':>10}{'client':>10}{'PUTs':>10}")
    for name in CLIENTS:
        runs = results[name]
        medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(
            f"{name:10}{medians['import'] * 1000:8.0f}ms{medians['client'] * 1000:8.0f}ms"
            f"{medians['puts']:9.2f}s"
        )


if __name__ == "__main__":
    main()
