"""The hubtriage demo: the whole job on local emulators (loopback only).

Starts the project's emulator (tests/emulator/hubemu.py: moto + a Security Hub
emulator), creates the findings queue with its DLQ and an EventBridge rule,
creates a few Neptune clusters, imports their findings (Security Hub
publishes the Imported events, EventBridge routes them to the queue), runs
`hubtriage run --until-empty`, prints what happened to each finding, and stops
everything. Run it through scripts/demo.sh.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

import boto3

ACCOUNT = "111122223333"      # the Security Hub administrator account, where hubtriage runs
MEMBER = "222222222222"       # a member account with a dev cluster
SANDBOX = "444455556666"      # a member account for sandboxes
EXTERNAL_ID = "demo-external-id"
REGION = "us-east-1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = """
# The demo's config (a variant of config/hubtriage.toml).
[remediation]
mode = "dry-run"
reboot = "maintenance-window"
log_retention_days = 365

[[suppress]]
name = "sandbox-account"
reason = "The sandbox account holds no customer data (RISK-142)"
expires = "2027-03-31"
match = {{ accounts = ["{sandbox}"] }}

# Limited to one control: Neptune.8 findings only.
[[suppress]]
name = "tags-by-backup-plan"
reason = "AWS Backup copies the tags to its snapshots (RISK-77)"
expires = "2027-06-30"
controls = ["Neptune.8"]

[[rule]]
name = "prod-needs-change-ticket"
action = "ticket"
match = {{ tags = {{ env = "prod" }} }}

[[rule]]
name = "non-prod-auto-fix"
action = "remediate"
match = {{ tags = {{ env = ["dev", "test", "staging"] }} }}

[default]
action = "ticket"

[queue]
url = "{queue_url}"
wait_seconds = 2

[events]
bus = "default"

# Member accounts are read and fixed through this role (deploy/member-role.yaml).
[accounts]
role_arn = "arn:aws:iam::{{account}}:role/hubtriage-member"
external_id_env = "HUBTRIAGE_EXTERNAL_ID"
"""


def start_emulator(python, workdir):
    ready = os.path.join(workdir, "ready.json")
    proc = subprocess.Popen(
        [python, os.path.join(ROOT, "tests/emulator/hubemu.py"), "--ready-file", ready,
         "--exit-on-stdin-eof", "--account", ACCOUNT, "--region", REGION,
         # Security Hub's aggregation delivers every account's findings here.
         "--events-account", ACCOUNT, "--events-region", REGION],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        if os.path.exists(ready):
            try:
                with open(ready) as f:
                    return proc, json.load(f)
            except ValueError:
                pass
        if proc.poll() is not None:
            sys.exit("demo: the emulator exited early")
        time.sleep(0.05)
    proc.kill()
    sys.exit("demo: the emulator did not start within 60 s")


def clients(endpoints):
    kw = dict(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    moto = endpoints["moto"]
    return (boto3.client("sqs", endpoint_url=moto, **kw),
            boto3.client("events", endpoint_url=moto, **kw),
            boto3.client("neptune", endpoint_url=moto, **kw),
            boto3.client("securityhub", endpoint_url=endpoints["securityhub"], **kw))


def neptune_in(endpoints, account):
    """A Neptune client acting in `account` (moto's AssumeRole credentials act there)."""
    kw = dict(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    sts = boto3.client("sts", endpoint_url=endpoints["moto"], **kw)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/demo-setup",
                            RoleSessionName="demo-setup")["Credentials"]
    return boto3.client("neptune", endpoint_url=endpoints["moto"], region_name=REGION,
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def make_queues(sqs, events):
    dlq = sqs.create_queue(QueueName="hubtriage-findings-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="hubtriage-findings", Attributes={
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
    })["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="neptune2-findings", EventPattern=json.dumps(
        {"source": ["aws.securityhub"], "detail-type": ["Security Hub Findings - Imported"]}))
    events.put_targets(Rule="neptune2-findings", Targets=[{"Id": "queue", "Arn": arn}])
    return queue, dlq


def make_cluster(neptune, ident, tags=(), group=None, members=2, audit_export=False):
    kw = {}
    if group:
        kw["DBClusterParameterGroupName"] = group
    neptune.create_db_cluster(DBClusterIdentifier=ident, Engine="neptune", EngineVersion="1.3.2.1",
                              PreferredMaintenanceWindow="sun:06:00-sun:06:30",
                              Tags=[{"Key": k, "Value": v} for k, v in tags], **kw)
    for i in range(1, members + 1):
        neptune.create_db_instance(DBInstanceIdentifier=f"{ident}-{i}", DBInstanceClass="db.r5.large",
                                   Engine="neptune", DBClusterIdentifier=ident)
    if audit_export:
        neptune.modify_db_cluster(DBClusterIdentifier=ident, ApplyImmediately=True,
                                  CloudwatchLogsExportConfiguration={"EnableLogTypes": ["audit"]})


def finding(template, cluster, n, control="Neptune.2", account=ACCOUNT):
    f = json.loads(json.dumps(template))
    arn = f"arn:aws:rds:{REGION}:{account}:cluster:{cluster}"
    f["Id"] = f"arn:aws:securityhub:{REGION}:{account}:security-control/{control}/finding/demo-{n:04d}"
    f["AwsAccountId"] = account
    f["GeneratorId"] = f"security-control/{control}"
    f["Compliance"]["SecurityControlId"] = control
    f["Resources"] = [{"Type": "AwsRdsDbCluster", "Id": arn, "Partition": "aws", "Region": REGION}]
    f["ProductFields"]["Resources:0/Id"] = arn
    f.pop("Workflow", None)
    f.pop("WorkflowState", None)
    return f


def emulator_get(endpoints, path):
    with urllib.request.urlopen(endpoints["securityhub"] + path, timeout=10) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="hubtriage-demo-") as workdir:
        emu, endpoints = start_emulator(args.python, workdir)
        try:
            run_demo(args.bin, endpoints, workdir)
        finally:
            emu.stdin.close()
            try:
                emu.wait(timeout=10)
            except subprocess.TimeoutExpired:
                emu.kill()


def run_demo(binary, endpoints, workdir):
    sqs, events, neptune, hub = clients(endpoints)
    queue, dlq = make_queues(sqs, events)

    print("== Neptune clusters")
    make_cluster(neptune, "orders-graph", tags=[("env", "prod")])
    print("   orders-graph   env=prod, default parameter group, no audit export")
    member = neptune_in(endpoints, MEMBER)
    make_cluster(member, "catalog-dev", tags=[("env", "dev")])
    print(f"   catalog-dev    env=dev, default parameter group, no audit export (member account {MEMBER})")
    make_cluster(neptune_in(endpoints, SANDBOX), "sandbox-graph", members=1)
    print(f"   sandbox-graph  no tags (sandbox account {SANDBOX})")
    neptune.create_db_cluster_parameter_group(DBClusterParameterGroupName="billing-audit",
                                              DBParameterGroupFamily="neptune1.3", Description="audit on")
    neptune.modify_db_cluster_parameter_group(DBClusterParameterGroupName="billing-audit", Parameters=[
        {"ParameterName": "neptune_enable_audit_log", "ParameterValue": "1", "ApplyMethod": "pending-reboot"}])
    make_cluster(neptune, "billing-graph", tags=[("env", "prod")], group="billing-audit", audit_export=True)
    print("   billing-graph  env=prod, already compliant (export on, parameter 1, in-sync)")

    with open(os.path.join(ROOT, "tests/fixtures/neptune2-failed-event.json")) as f:
        template = json.load(f)["detail"]["findings"][0]
    accounts = {"catalog-dev": MEMBER, "sandbox-graph": SANDBOX}
    findings = [finding(template, c, i, account=accounts.get(c, ACCOUNT)) for i, c in
                enumerate(["orders-graph", "catalog-dev", "sandbox-graph", "billing-graph"], 1)]
    findings.append(finding(template, "orders-graph", 5, control="Neptune.1"))
    hub.batch_import_findings(Findings=findings)
    print(f"\n== Imported {len(findings)} FAILED findings (four Neptune.2, one Neptune.1); "
          "Security Hub publishes their events to the queue")

    config = os.path.join(workdir, "hubtriage.toml")
    with open(config, "w") as f:
        f.write(CONFIG.format(queue_url=queue, sandbox=SANDBOX))
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoints["moto"],
               AWS_ENDPOINT_URL_SECURITYHUB=endpoints["securityhub"],
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION=REGION,
               AWS_EC2_METADATA_DISABLED="true", HUBTRIAGE_LOG_FORMAT="json",
               HUBTRIAGE_EXTERNAL_ID=EXTERNAL_ID)
    env.pop("AWS_PROFILE", None)
    print("\n== hubtriage run --until-empty")
    started = time.time()
    run = subprocess.run([binary, "run", "--config", config, "--until-empty"], env=env,
                         capture_output=True, text=True, timeout=300)
    took = time.time() - started
    logs = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    for line in logs:
        if line.get("message") in ("decided", "recorded on the finding",
                                   "event reflects hubtriage's own update; dropped"):
            span = line.get("span", {})
            extra = line.get("action") or line.get("workflow") or ""
            print(f"   {span.get('cluster', '?'):14} {line['message']} {extra}")
    if run.returncode != 0:
        print(run.stdout[-4000:], run.stderr[-4000:], sep="\n")
        sys.exit(f"demo: hubtriage exited {run.returncode}")
    print(f"   drained the queue in {took:.1f} s (exit 0)")

    print("\n== The findings now (read back with GetFindings)")
    rows = []
    for f in findings:
        got = hub.get_findings(Filters={"Id": [{"Value": f["Id"], "Comparison": "EQUALS"}]})["Findings"][0]
        cluster = got["Resources"][0]["Id"].rsplit(":", 1)[-1]
        rows.append((got["Id"].rsplit("/", 1)[-1], got["AwsAccountId"], cluster,
                     got.get("UserDefinedFields", {}).get("hubtriage:action", "ignore"),
                     got["Workflow"]["Status"], got.get("Note", {}).get("Text", "-")))
    print(f"   {'finding':10} {'account':13} {'cluster':14} {'action':10} {'workflow':11} note")
    for r in rows:
        wrapped = textwrap.wrap(r[5], 70) or ["-"]
        print(f"   {r[0]:10} {r[1]:13} {r[2]:14} {r[3]:10} {r[4]:11} {wrapped[0]}")
        for more in wrapped[1:]:
            print(" " * 66 + more)

    # Phase two: let hubtriage really fix the member account's dev cluster, through its role.
    print(f"\n== The dev cluster in member account {MEMBER} again, now in apply mode "
          "(HUBTRIAGE__REMEDIATION__MODE=apply, HUBTRIAGE__REMEDIATION__REBOOT=immediate), "
          "through the role hubtriage-member")
    urllib.request.urlopen(urllib.request.Request(
        endpoints["securityhub"] + "/_emu/iam/rds-service-linked-role",
        data=json.dumps({"account": MEMBER}).encode(), method="POST"), timeout=10)
    dev = findings[1]
    dev["UpdatedAt"] = dev["LastObservedAt"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    hub.batch_import_findings(Findings=[dev])  # Security Hub evaluates the control again
    env_apply = dict(env, HUBTRIAGE__REMEDIATION__MODE="apply", HUBTRIAGE__REMEDIATION__REBOOT="immediate",
                     HUBTRIAGE__REMEDIATION__RECHECK_SECONDS="1")
    started = time.time()
    run = subprocess.run([binary, "run", "--config", config, "--until-empty"], env=env_apply,
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        print(run.stdout[-4000:], run.stderr[-4000:], sep="\n")
        sys.exit(f"demo: hubtriage exited {run.returncode}")
    for line in run.stdout.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("message") == "changing the cluster":
            print(f"   {entry.get('call'):32} {entry.get('params')}")
    print(f"   done in {time.time() - started:.1f} s (exit 0)")
    cluster = member.describe_db_clusters(DBClusterIdentifier="catalog-dev")["DBClusters"][0]
    group = cluster["DBClusterParameterGroup"]
    params = member.describe_db_cluster_parameters(DBClusterParameterGroupName=group)["Parameters"]
    audit = next(p["ParameterValue"] for p in params if p["ParameterName"] == "neptune_enable_audit_log")
    print(f"   live: group {group}, neptune_enable_audit_log={audit}, exports {cluster['EnabledCloudwatchLogsExports']}, "
          f"members {[m['DBClusterParameterGroupStatus'] for m in cluster['DBClusterMembers']]}")
    got = hub.get_findings(Filters={"Id": [{"Value": dev["Id"], "Comparison": "EQUALS"}]})["Findings"][0]
    print(f"   finding: {got['Workflow']['Status']}")
    for part in textwrap.wrap(got.get("Note", {}).get("Text", "-"), 100):
        print(f"     {part}")

    family(binary, endpoints, neptune, hub, template, config, env_apply)

    dead = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    print(f"\n   DLQ messages: {dead['Attributes']['ApproximateNumberOfMessages']}")
    calls = emulator_get(endpoints, "/_emu/calls?service=securityhub&operation=BatchUpdateFindings")
    print(f"   BatchUpdateFindings calls: {len(calls)} (alike updates share a call)")
    roles = emulator_get(endpoints, "/_emu/calls?service=sts&operation=AssumeRole")
    used = sorted({c["request"].get("RoleArn", "") for c in roles
                   if c["request"].get("RoleSessionName") == "hubtriage"})
    print(f"   roles hubtriage assumed: {', '.join(used)}")


def family(binary, endpoints, neptune, hub, template, config, env):
    """Phase three: four controls of one dev cluster in one apply run."""
    print("\n== The Neptune family: four controls of the dev cluster family-dev in one apply run")
    neptune.create_db_cluster(DBClusterIdentifier="family-dev", Engine="neptune",
                              EngineVersion="1.3.2.1", StorageEncrypted=False,
                              DeletionProtection=False, CopyTagsToSnapshot=False,
                              Tags=[{"Key": "env", "Value": "dev"}])
    neptune.create_db_instance(DBInstanceIdentifier="family-dev-1", DBInstanceClass="db.r5.large",
                               Engine="neptune", DBClusterIdentifier="family-dev")
    print("   family-dev  env=dev: unencrypted, no deletion protection, no IAM authentication, "
          "tags not copied to snapshots")
    cases = [("Neptune.4", "auto: fixed and verified"),
             ("Neptune.7", "opt-in: no rule names it, so a ticket"),
             ("Neptune.1", "ticket only: the ticket carries the manual fix"),
             ("Neptune.8", "suppressed by a suppression limited to controls = [\"Neptune.8\"]")]
    findings = [finding(template, "family-dev", 10 + i, control=c) for i, (c, _) in enumerate(cases)]
    hub.batch_import_findings(Findings=findings)
    run = subprocess.run([binary, "run", "--config", config, "--until-empty"], env=env,
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        print(run.stdout[-4000:], run.stderr[-4000:], sep="\n")
        sys.exit(f"demo: hubtriage exited {run.returncode}")
    logs = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    for entry in logs:
        if entry.get("message") in ("changing the cluster", "changing the snapshot"):
            print(f"   change: {entry.get('control')} {entry.get('call')} {entry.get('params')}")
    for (control, what), f in zip(cases, findings):
        got = hub.get_findings(Filters={"Id": [{"Value": f["Id"], "Comparison": "EQUALS"}]})["Findings"][0]
        print(f"   {control:10} {got['Workflow']['Status']:11} {what}")
        for part in textwrap.wrap(got.get("Note", {}).get("Text", "-"), 96):
            print(f"              {part}")
    for entry in logs:
        if entry.get("ticket") == "log" and entry.get("control") == "Neptune.1":
            print("   the Neptune.1 ticket's manual fix (a log line here; Jira, ServiceNow or a webhook in production):")
            for line in re.split(r" (?=\d+\. )", entry.get("fix", "")):
                for n, part in enumerate(textwrap.wrap(line, 96, break_on_hyphens=False)):
                    print(f"     {'  ' if n else ''}{part}")
    live = neptune.describe_db_clusters(DBClusterIdentifier="family-dev")["DBClusters"][0]
    print(f"   live: DeletionProtection={live['DeletionProtection']}, "
          f"IAMDatabaseAuthenticationEnabled={live['IAMDatabaseAuthenticationEnabled']}, "
          f"CopyTagsToSnapshot={live['CopyTagsToSnapshot']}, StorageEncrypted={live['StorageEncrypted']}")


if __name__ == "__main__":
    main()
