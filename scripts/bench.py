#!/usr/bin/env python3
"""Storm benchmark: hubtriage against a naive consumer, in one run.

Started by scripts/bench.sh (which builds the release binary and the emulator's
venv). Steps:

1. Start the emulator (tests/emulator/hubemu.py) on 127.0.0.1 with Security
   Hub's quota enforced (BatchUpdateFindings 10/s burst 30, GetFindings 3/s
   burst 6), a queue with a dead-letter queue, and the EventBridge rule that
   routes Security Hub's Imported events to it.
2. Create M one-instance prod clusters and import N FAILED Neptune.2 findings
   over them (decision: ticket). Every import, and every update, emits an
   event onto the queue, as Security Hub does.
3. Run `hubtriage run --until-empty` (release build, default configuration
   apart from the queue, the rules and the journal's table) until the queue
   is drained; count its calls from the emulator's call log, its peak RSS and
   its CPU time. The journal's DynamoDB table is served by a second emulator
   process (in AWS it is its own service; --shared-emulator serves it from
   the first), and --no-journal runs without one.
4. Import K more findings (K = min(N, --naive-findings)) and drain them with
   the naive consumer below: one message at a time, one DescribeDBClusters,
   one ListTagsForResource and one BatchUpdateFindings per finding (its own
   echoes, no longer NEW, are deleted unread).
5. Write target/bench/result.json and print a table.

Nothing here talks to anything but 127.0.0.1.
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config as BotoConfig

ROOT = pathlib.Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
QUEUE = "bench-findings"
QUOTAS = {
    "BatchUpdateFindings": {"rate": 10, "burst": 30},
    "GetFindings": {"rate": 3, "burst": 6},
}
SQS_OPS = (
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "GetQueueAttributes",
    "SendMessage",
)


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Emulator:
    def __init__(self, python):
        self.dir = tempfile.mkdtemp(prefix="hubtriage-bench-")
        ready = pathlib.Path(self.dir) / "ready.json"
        self.proc = subprocess.Popen(
            [python, str(ROOT / "tests/emulator/hubemu.py"), "--ready-file", str(ready),
             "--account", ACCOUNT, "--region", REGION, "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=open(pathlib.Path(self.dir) / "emulator.log", "w"),
        )
        deadline = time.time() + 60
        while not ready.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"bench: the emulator did not start; see {self.dir}/emulator.log")
            time.sleep(0.1)
        urls = json.loads(ready.read_text())
        self.moto, self.hub = urls["moto"], urls["securityhub"]

    def http(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.hub + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:
            text = r.read()
        return json.loads(text) if text else None

    def calls(self, service=None, operation=None):
        q = "&".join(f"{k}={v}" for k, v in (("service", service), ("operation", operation)) if v)
        return self.http("GET", "/_emu/calls" + (f"?{q}" if q else ""))

    def env(self):
        env = dict(os.environ)
        env.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.moto, "AWS_ENDPOINT_URL_SECURITYHUB": self.hub,
            "AWS_EC2_METADATA_DISABLED": "true", "NO_COLOR": "1",
        })
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.pop(k, None)
        return env

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def client(emu, service, **kw):
    endpoint = emu.hub if service == "securityhub" else emu.moto
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing", **kw)


def setup_queue(emu):
    sqs, events = client(emu, "sqs"), client(emu, "events")
    dlq = sqs.create_queue(QueueName=QUEUE + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=QUEUE, Attributes={
        "VisibilityTimeout": "120",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
    })["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="bench-neptune2", EventPattern=json.dumps({
        "source": ["aws.securityhub"], "detail-type": ["Security Hub Findings - Imported"]}))
    events.put_targets(Rule="bench-neptune2", Targets=[{"Id": "queue", "Arn": arn}])
    return url, dlq


JOURNAL = "bench-journal"


def create_journal(emu):
    """The change journal's table, as `hubtriage setup` makes it (keys and
    indexes of src/journal/dynamo.rs)."""
    ddb = client(emu, "dynamodb")
    index = lambda name, key: {
        "IndexName": name,
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }
    ddb.create_table(
        TableName=JOURNAL, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                              for a in ("pk", "sk", "account", "resource_name", "open")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[index("by-account", "account"),
                                index("by-resource", "resource_name"),
                                index("open-changes", "open")])
    return f'\n[journal]\ntable = "{JOURNAL}"\n'


def journal_entries(emu):
    ddb = client(emu, "dynamodb")
    return sum(page["Count"] for page in ddb.get_paginator("scan").paginate(
        TableName=JOURNAL, Select="COUNT"))


def create_clusters(emu, count):
    neptune = client(emu, "neptune")
    arns = []
    for c in range(count):
        cid = f"bench-{c}"
        out = neptune.create_db_cluster(DBClusterIdentifier=cid, Engine="neptune",
                                        EngineVersion="1.3.2.1",
                                        Tags=[{"Key": "env", "Value": "prod"}])
        neptune.create_db_instance(DBInstanceIdentifier=f"{cid}-1", DBInstanceClass="db.r5.large",
                                   Engine="neptune", DBClusterIdentifier=cid)
        arns.append(out["DBCluster"]["DBClusterArn"])
    return arns


def findings(arns, start, count, controls=("Neptune.2",)):
    """Findings `start`.. over the clusters round-robin, and over `controls`
    round-robin (cluster controls: each finding names its cluster)."""
    event = json.loads((ROOT / "tests/fixtures/neptune2-failed-event.json").read_text())
    base = event["detail"]["findings"][0]
    base.pop("Workflow", None)
    base.pop("WorkflowState", None)
    out = []
    for n in range(start, start + count):
        f = json.loads(json.dumps(base))
        arn = arns[n % len(arns)]
        control = controls[n % len(controls)]
        f["Id"] = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:security-control/{control}/finding/bench-{n:08d}"
        f["GeneratorId"] = f"security-control/{control}"
        f["Compliance"]["SecurityControlId"] = control
        f["AwsAccountId"] = ACCOUNT
        f["Resources"] = [{"Type": "AwsRdsDbCluster", "Id": arn, "Partition": "aws", "Region": REGION}]
        f["ProductFields"]["Resources:0/Id"] = arn
        out.append(f)
    return out


def load(emu, sqs, url, batch):
    """Imports the findings (quota off: loading is not measured) and waits
    until each one's event is on the queue."""
    emu.http("DELETE", "/_emu/quotas")
    for i in range(0, len(batch), 100):
        r = emu.http("POST", "/findings/import", {"Findings": batch[i:i + 100]})
        if r.get("FailedCount"):
            raise SystemExit(f"bench: import failed: {r}")
    deadline = time.time() + 600
    while depth(sqs, url)[0] < len(batch):
        if time.time() > deadline:
            raise SystemExit(f"bench: only {depth(sqs, url)} of {len(batch)} events reached the queue")
        time.sleep(0.5)
    emu.http("POST", "/_emu/quotas", QUOTAS)
    emu.http("DELETE", "/_emu/calls")


def depth(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def run_hubtriage(emu, binary, url, workdir, extra="", dynamodb=None):
    config = pathlib.Path(workdir) / "bench.toml"
    config.write_text(f"""
[[rule]]
name = "prod-needs-change-ticket"
action = "ticket"
match = {{ tags = {{ env = "prod" }} }}

[default]
action = "ticket"

[queue]
url = "{url}"

[daemon]
heartbeat_file = "{workdir}/heartbeat"

[metrics]
interval_seconds = 1
{extra}
""")
    env = emu.env()
    env["RUST_LOG"] = "warn"
    if dynamodb:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb
    out_path = pathlib.Path(workdir) / "hubtriage.out"
    err_path = pathlib.Path(workdir) / "hubtriage.err"
    started = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = 0
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([binary, "run", "--until-empty", "--config", str(config)],
                                env=env, stdout=out, stderr=err, cwd=workdir)
        # The daemon's own high-water mark (VmHWM), read until it exits.
        while proc.poll() is None:
            peak_kib = max(peak_kib, high_water_kib(proc.pid))
            time.sleep(0.2)
        rc = proc.returncode
    seconds = time.monotonic() - started
    # The daemon's own CPU time (user + system): the children reaped since
    # it started are it alone (the emulator still runs).
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if rc != 0:
        raise SystemExit(f"bench: hubtriage exited {rc}; see {err_path}")
    latencies, totals = [], {}
    for line in out_path.read_text().splitlines():
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if "_aws" not in v:
            continue
        latencies.extend(v.get("RecordLatency", []))
        for k, x in v.items():
            if isinstance(x, int):
                totals[k] = totals.get(k, 0) + x
    totals["cpu_seconds"] = cpu
    return seconds, peak_kib / 1024, latencies, totals


def high_water_kib(pid):
    """VmHWM of a running process, in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def naive(emu, url, count):
    """One message at a time; a call per step; an update per finding."""
    boto = BotoConfig(retries={"mode": "standard", "max_attempts": 10})
    sqs, neptune = client(emu, "sqs"), client(emu, "neptune")
    hub = client(emu, "securityhub", config=boto)
    done = 0
    started = time.monotonic()
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", [])
        if not got:
            if depth(sqs, url) == (0, 0):
                break
            continue
        m = got[0]
        f = json.loads(m["Body"])["detail"]["findings"][0]
        if f.get("Workflow", {}).get("Status", "NEW") == "NEW":
            arn = f["Resources"][0]["Id"]
            neptune.describe_db_clusters(DBClusterIdentifier=arn)
            neptune.list_tags_for_resource(ResourceName=arn)
            hub.batch_update_findings(
                FindingIdentifiers=[{"Id": f["Id"], "ProductArn": f["ProductArn"]}],
                Workflow={"Status": "NOTIFIED"},
                Note={"Text": "naive consumer: ticket opened", "UpdatedBy": "naive"})
            done += 1
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    seconds = time.monotonic() - started
    if done != count:
        log(f"naive consumer updated {done} findings of {count}")
    return seconds


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("findings", type=int, nargs="?", default=10_000)
    ap.add_argument("clusters", type=int, nargs="?", default=200)
    ap.add_argument("--binary", default=str(ROOT / "target/release/hubtriage"))
    ap.add_argument("--naive-findings", type=int, default=500,
                    help="findings the naive consumer drains (its rate is measured on these)")
    ap.add_argument("--out", default=str(ROOT / "target/bench/result.json"))
    ap.add_argument("--config-extra", default="",
                    help="TOML appended to hubtriage's config (e.g. a [pacing] table); "
                         "the default configuration when absent")
    ap.add_argument("--no-journal", action="store_true",
                    help="run without [journal] (by default hubtriage journals every decision "
                         "in a DynamoDB table, as a production deployment does)")
    ap.add_argument("--shared-emulator", action="store_true",
                    help="serve the journal's DynamoDB from the emulator process that serves "
                         "SQS and Security Hub (by default a second emulator process serves it: "
                         "in AWS it is its own service, and here one Python process would make "
                         "the journal's writes and the queue's calls wait on each other)")
    ap.add_argument("--controls", default="Neptune.2",
                    help="comma-separated cluster controls the findings are spread over "
                         "round-robin (e.g. Neptune.1,Neptune.2,Neptune.4,Neptune.5,"
                         "Neptune.7,Neptune.8,Neptune.9)")
    args = ap.parse_args()
    controls = tuple(c.strip() for c in args.controls.split(",") if c.strip())
    cluster_controls = {"Neptune.1", "Neptune.2", "Neptune.4", "Neptune.5", "Neptune.7",
                        "Neptune.8", "Neptune.9"}
    if not controls or not set(controls) <= cluster_controls:
        raise SystemExit(f"bench: --controls takes cluster controls: {sorted(cluster_controls)}")
    if args.findings < 1 or args.clusters < 1:
        raise SystemExit("bench: N and M must be at least 1")

    emu = Emulator(sys.executable)
    # The journal's DynamoDB: its own emulator process unless --shared-emulator.
    store = emu if args.no_journal or args.shared_emulator else Emulator(sys.executable)
    try:
        workdir = emu.dir
        url, dlq = setup_queue(emu)
        sqs = client(emu, "sqs")
        log(f"creating {args.clusters} clusters")
        arns = create_clusters(emu, args.clusters)
        journal = "" if args.no_journal else create_journal(store)
        log(f"importing {args.findings} findings")
        load(emu, sqs, url, findings(arns, 0, args.findings, controls))

        log("hubtriage draining the queue" + ("" if args.no_journal else " (with the journal)"))
        seconds, rss, latencies, totals = run_hubtriage(emu, args.binary, url, workdir,
                                                        args.config_extra + journal,
                                                        dynamodb=store.moto)
        n = args.findings
        updates = emu.calls("securityhub", "BatchUpdateFindings")
        describes = emu.calls("rds", "DescribeDBClusters")
        sqs_calls = [c for c in emu.calls("sqs") if c["operation"] in SQS_OPS]
        dynamodb_calls = store.calls("dynamodb")
        entries = 0 if args.no_journal else journal_entries(store)
        recorded = totals.get("Recorded", 0)
        if recorded != n or totals.get("FindingsFailed", 0):
            log(f"warning: {recorded} of {n} recorded, {totals.get('FindingsFailed', 0)} failed")
        dlq_depth = depth(sqs, dlq)[0]

        k = min(args.findings, args.naive_findings)
        log(f"naive consumer draining {k} findings")
        load(emu, sqs, url, findings(arns, n, k, controls))
        naive_seconds = naive(emu, url, k)

        result = {
            "findings": n,
            "clusters": args.clusters,
            "seconds": round(seconds, 2),
            "findings_per_sec": round(n / seconds, 1),
            "naive_findings": k,
            "naive_seconds": round(naive_seconds, 2),
            "naive_findings_per_sec": round(k / naive_seconds, 1),
            "ratio": round((n / seconds) / (k / naive_seconds), 1),
            "update_calls_per_finding": round(len(updates) / n, 4),
            "update_calls_throttled": sum(1 for c in updates if c["status"] == 429),
            "describe_calls_per_finding": round(len(describes) / n, 4),
            "sqs_calls_per_finding": round(len(sqs_calls) / n, 4),
            "dynamodb_calls_per_finding": round(len(dynamodb_calls) / n, 4),
            "journal": not args.no_journal,
            "journal_entries": entries,
            "journal_emulator": "none" if args.no_journal else (
                "shared" if args.shared_emulator else "separate"),
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "latency_samples": len(latencies),
            "peak_rss_mib": round(rss, 1),
            "hubtriage_cpu_ms_per_finding": round(1000 * totals.get("cpu_seconds", 0) / n, 3),
            "recorded": recorded,
            "findings_failed": totals.get("FindingsFailed", 0),
            "dlq_messages": dlq_depth,
            "config_extra": args.config_extra,
            "controls": list(controls),
        }
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        width = max(len(k) for k in result)
        print(f"{'metric':<{width}}  value")
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
        print(f"written to {out}")
    finally:
        emu.stop()
        if store is not emu:
            store.stop()


if __name__ == "__main__":
    main()
