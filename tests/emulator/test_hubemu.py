#!/usr/bin/env python3
"""Self-test for hubemu.py (no pytest): starts a fresh hubemu subprocess and
drives it with boto3. Run with the emulator venv's python:

    "$(scripts/emulator-venv.sh | tail -n1)" tests/emulator/test_hubemu.py

Prints "N passed, M failed" last and exits non-zero on any failure.
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
PRODUCT_ARN = f"arn:aws:securityhub:{REGION}::product/aws/securityhub"
CLUSTER_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:orders-graph"

os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_SESSION_TOKEN="testing", AWS_DEFAULT_REGION=REGION)
for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(var, None)

URLS = {}
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def client(service, **kw):
    url = URLS["securityhub"] if service == "securityhub" else URLS["moto"]
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, **kw)
    return boto3.client(service, region_name=REGION, endpoint_url=url, config=cfg)


def control(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URLS["securityhub"] + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def make_finding(suffix, account=ACCOUNT, control_id="Neptune.2", cluster_arn=CLUSTER_ARN):
    fid = f"arn:aws:securityhub:{REGION}:{account}:security-control/{control_id}/finding/{suffix}"
    return {
        "SchemaVersion": "2018-10-08",
        "Id": fid,
        "ProductArn": PRODUCT_ARN,
        "ProductName": "Security Hub",
        "CompanyName": "AWS",
        "Region": REGION,
        "GeneratorId": f"security-control/{control_id}",
        "AwsAccountId": account,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "CreatedAt": "2026-11-20T10:14:44.901Z",
        "UpdatedAt": "2026-11-20T10:14:44.901Z",
        "Severity": {"Label": "MEDIUM", "Normalized": 40, "Original": "MEDIUM"},
        "Title": "Neptune DB clusters should publish audit logs to CloudWatch Logs",
        "Description": "This control checks whether a Neptune DB cluster publishes audit logs.",
        "ProductFields": {"aws/securityhub/FindingId": f"{PRODUCT_ARN}/{fid}"},
        "Resources": [{"Type": "AwsRdsDbCluster", "Id": cluster_arn, "Partition": "aws", "Region": REGION}],
        "Compliance": {"Status": "FAILED", "SecurityControlId": control_id},
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    }


def ident(f):
    return {"Id": f["Id"], "ProductArn": f["ProductArn"]}


def import_findings(*findings):
    r = client("securityhub").batch_import_findings(Findings=list(findings))
    assert r["SuccessCount"] == len(findings), r
    return r


def get_one(f):
    r = client("securityhub").get_findings(Filters={"Id": [{"Value": f["Id"], "Comparison": "EQUALS"}]})
    assert len(r["Findings"]) == 1, r
    return r["Findings"][0]


def expect_client_error(fn, code, status=None):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        if status is not None:
            got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            assert got_status == status, f"expected HTTP {status}, got {got_status}"
        return e
    raise AssertionError(f"expected {code}, got success")


def make_queue_with_rule(name):
    sqs, events = client("sqs"), client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{name}-rule", EventPattern=json.dumps({
        "source": ["aws.securityhub"], "detail-type": ["Security Hub Findings - Imported"]}))
    events.put_targets(Rule=f"{name}-rule", Targets=[{"Id": "q", "Arn": arn}])
    return url


def drain(url, wait_total=3.0):
    sqs, out, deadline = client("sqs"), [], time.time() + wait_total
    while time.time() < deadline:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if not msgs:
            if out:
                break
            time.sleep(0.1)
    return out


def make_neptune_cluster(name, tags=None, instances=2, **kw):
    neptune = client("neptune")
    neptune.create_db_cluster(DBClusterIdentifier=name, Engine="neptune", EngineVersion="1.3.2.1",
                              Tags=tags or [], **kw)
    for i in range(1, instances + 1):
        neptune.create_db_instance(DBInstanceIdentifier=f"{name}-{i}", DBInstanceClass="db.r5.large",
                                   Engine="neptune", DBClusterIdentifier=name)
    return neptune


def describe_cluster(name):
    return client("neptune").describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]


# ---------------------------------------------------------------- Security Hub


@test
def import_then_get():
    a, b = make_finding("import-a"), make_finding("import-b", control_id="Neptune.1")
    import_findings(a, b)
    got = get_one(a)
    assert got["Workflow"] == {"Status": "NEW"} and got["WorkflowState"] == "NEW", got
    assert got["ProductFields"]["aws/securityhub/FindingId"] == f"{PRODUCT_ARN}/{a['Id']}"
    sh = client("securityhub")
    r = sh.get_findings(Filters={
        "ComplianceSecurityControlId": [{"Value": "Neptune.1", "Comparison": "EQUALS"}],
        "ResourceId": [{"Value": CLUSTER_ARN, "Comparison": "EQUALS"}],
        "AwsAccountId": [{"Value": ACCOUNT, "Comparison": "EQUALS"}],
        "ProductArn": [{"Value": PRODUCT_ARN, "Comparison": "EQUALS"}],
        "WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}]})
    assert [f["Id"] for f in r["Findings"]] == [b["Id"]], r
    assert not sh.get_findings(Filters={"WorkflowStatus": [{"Value": "RESOLVED", "Comparison": "EQUALS"}],
                                        "Id": [{"Value": a["Id"], "Comparison": "EQUALS"}]})["Findings"]
    everything = sh.get_findings()["Findings"]
    assert {a["Id"], b["Id"]} <= {f["Id"] for f in everything}
    # pagination
    page1 = sh.get_findings(MaxResults=1)
    assert len(page1["Findings"]) == 1 and page1.get("NextToken")
    page2 = sh.get_findings(MaxResults=1, NextToken=page1["NextToken"])
    assert page2["Findings"][0]["Id"] != page1["Findings"][0]["Id"]
    # re-import updates the stored finding but keeps customer-owned fields
    sh.batch_update_findings(FindingIdentifiers=[ident(a)], Workflow={"Status": "NOTIFIED"})
    a2 = copy.deepcopy(a)
    a2["Title"] = "changed title"
    a2["Workflow"] = {"Status": "NEW"}
    import_findings(a2)
    got = get_one(a)
    assert got["Title"] == "changed title" and got["Workflow"]["Status"] == "NOTIFIED", got
    # compliance PASSED resolves the finding
    a3 = copy.deepcopy(a2)
    a3["Compliance"]["Status"] = "PASSED"
    import_findings(a3)
    assert get_one(a)["Workflow"]["Status"] == "RESOLVED"
    # missing required ASFF fields -> FailedFindings
    bad = make_finding("bad")
    del bad["Title"]
    r = client("securityhub", parameter_validation=False).batch_import_findings(Findings=[bad])
    assert r["FailedCount"] == 1 and r["FailedFindings"][0]["ErrorCode"] == "InvalidInput", r


@test
def batch_update_applies_workflow_note_udf():
    f = make_finding("update-1")
    f["UserDefinedFields"] = {"keep": "me"}
    import_findings(f)
    before = get_one(f)["UpdatedAt"]
    sh = client("securityhub")
    r = sh.batch_update_findings(
        FindingIdentifiers=[ident(f)], Workflow={"Status": "NOTIFIED"},
        Note={"Text": "hubtriage: pending reboot", "UpdatedBy": "hubtriage"},
        UserDefinedFields={"hubtriage/state": "remediating"}, VerificationState="TRUE_POSITIVE")
    assert r["ProcessedFindings"] == [ident(f)] and r["UnprocessedFindings"] == [], r
    sh.batch_update_findings(FindingIdentifiers=[ident(f)], UserDefinedFields={"hubtriage/attempt": "1"})
    got = get_one(f)
    assert got["Workflow"] == {"Status": "NOTIFIED"} and got["WorkflowState"] == "ASSIGNED", got
    assert got["Note"]["Text"] == "hubtriage: pending reboot" and got["Note"]["UpdatedBy"] == "hubtriage"
    assert got["Note"]["UpdatedAt"].endswith("Z")
    assert got["UserDefinedFields"] == {"keep": "me", "hubtriage/state": "remediating",
                                        "hubtriage/attempt": "1"}, got["UserDefinedFields"]
    assert got["VerificationState"] == "TRUE_POSITIVE"
    assert got["UpdatedAt"] == before, "BatchUpdateFindings leaves UpdatedAt alone"
    missing = {"Id": "arn:aws:securityhub:us-east-1:123456789012:nope", "ProductArn": PRODUCT_ARN}
    r = sh.batch_update_findings(FindingIdentifiers=[missing], Workflow={"Status": "RESOLVED"})
    assert r["ProcessedFindings"] == [] and r["UnprocessedFindings"][0]["ErrorCode"] == "FindingNotFound", r
    calls = [c for c in control("GET", "/_emu/calls") if c["operation"] == "BatchUpdateFindings"]
    assert calls and calls[-1]["service"] == "securityhub" and calls[-1]["status"] == 200
    assert calls[-1]["request"]["FindingIdentifiers"] == [missing]


@test
def rejects_101_identifiers():
    ids = [{"Id": f"id-{i}", "ProductArn": PRODUCT_ARN} for i in range(101)]
    expect_client_error(lambda: client("securityhub").batch_update_findings(
        FindingIdentifiers=ids, Workflow={"Status": "NOTIFIED"}), "InvalidInputException", 400)
    expect_client_error(lambda: client("securityhub").batch_update_findings(
        FindingIdentifiers=[], Workflow={"Status": "NOTIFIED"}), "InvalidInputException", 400)


@test
def rejects_513_char_note():
    f = make_finding("note-513")
    import_findings(f)
    expect_client_error(lambda: client("securityhub").batch_update_findings(
        FindingIdentifiers=[ident(f)], Note={"Text": "x" * 513, "UpdatedBy": "hubtriage"}),
        "InvalidInputException", 400)
    r = client("securityhub").batch_update_findings(
        FindingIdentifiers=[ident(f)], Note={"Text": "x" * 512, "UpdatedBy": "hubtriage"})
    assert r["ProcessedFindings"] == [ident(f)]


@test
def throttle_fault():
    f = make_finding("throttle")
    import_findings(f)
    control("POST", "/_emu/faults", {"operation": "BatchUpdateFindings", "throttle": 2})
    sh = client("securityhub")
    for _ in range(2):
        expect_client_error(lambda: sh.batch_update_findings(
            FindingIdentifiers=[ident(f)], Workflow={"Status": "NOTIFIED"}), "TooManyRequestsException", 429)
    assert get_one(f)["Workflow"]["Status"] == "NEW"
    sh.batch_update_findings(FindingIdentifiers=[ident(f)], Workflow={"Status": "NOTIFIED"})
    assert get_one(f)["Workflow"]["Status"] == "NOTIFIED"
    assert control("GET", "/_emu/faults") == []


@test
def quota_answers_429_past_its_burst_and_refills():
    f = make_finding("quota")
    import_findings(f)
    control("POST", "/_emu/quotas", {"BatchUpdateFindings": {"rate": 5, "burst": 3}})
    try:
        sh = client("securityhub")  # one attempt: no retries
        for _ in range(3):
            sh.batch_update_findings(FindingIdentifiers=[ident(f)], Workflow={"Status": "NOTIFIED"})
        expect_client_error(lambda: sh.batch_update_findings(
            FindingIdentifiers=[ident(f)], Workflow={"Status": "NOTIFIED"}), "TooManyRequestsException", 429)
        time.sleep(0.5)  # 5/s refills two tokens
        sh.batch_update_findings(FindingIdentifiers=[ident(f)], Workflow={"Status": "NOTIFIED"})
        assert control("GET", "/_emu/quotas") == {"BatchUpdateFindings": {"rate": 5.0, "burst": 3.0}}
    finally:
        control("DELETE", "/_emu/quotas")
    assert control("GET", "/_emu/quotas") == {}


@test
def assumed_role_credentials_act_in_the_roles_account():
    creds = client("sts").assume_role(RoleArn="arn:aws:iam::222222222222:role/member",
                                      RoleSessionName="self-test")["Credentials"]
    member = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds["SessionToken"])
    sts = boto3.client("sts", region_name=REGION, endpoint_url=URLS["moto"], **member)
    assert sts.get_caller_identity()["Account"] == "222222222222"
    assert client("sts").get_caller_identity()["Account"] == ACCOUNT


@test
def unprocessed_fault():
    fs = [make_finding(f"unproc-{i}") for i in range(4)]
    import_findings(*fs)
    control("POST", "/_emu/faults", {"operation": "BatchUpdateFindings", "unprocessed": 3,
                                     "error_code": "ConcurrentUpdateError"})
    r = client("securityhub").batch_update_findings(FindingIdentifiers=[ident(f) for f in fs],
                                                    Workflow={"Status": "RESOLVED"})
    assert [u["ErrorCode"] for u in r["UnprocessedFindings"]] == ["ConcurrentUpdateError"] * 3, r
    assert r["ProcessedFindings"] == [ident(fs[3])], r
    assert [get_one(f)["Workflow"]["Status"] for f in fs] == ["NEW", "NEW", "NEW", "RESOLVED"]


@test
def delay_and_error_faults():
    f = make_finding("delay")
    import_findings(f)
    control("POST", "/_emu/faults", {"operation": "GetFindings", "delay_ms": 400, "count": 1})
    t0 = time.time()
    get_one(f)
    assert time.time() - t0 >= 0.4
    t0 = time.time()
    get_one(f)
    assert time.time() - t0 < 0.4
    control("POST", "/_emu/faults", {"operation": "GetFindings", "error_code": "InternalException",
                                     "status": 500})
    expect_client_error(lambda: get_one(f), "InternalException", 500)
    control("POST", "/_emu/faults", {"operation": "DescribeDBClusters", "throttle": 1})
    expect_client_error(lambda: client("neptune").describe_db_clusters(), "Throttling", 400)
    client("neptune").describe_db_clusters()
    control("POST", "/_emu/faults", {"operation": "ReceiveMessage", "throttle": 1})
    url = client("sqs").create_queue(QueueName="fault-q")["QueueUrl"]
    expect_client_error(lambda: client("sqs").receive_message(QueueUrl=url), "ThrottlingException", 400)
    control("POST", "/_emu/faults", {"operation": "GetFindings", "throttle": 5})
    control("DELETE", "/_emu/faults")
    get_one(f)


@test
def a_fault_can_be_limited_to_requests_containing_a_text():
    sts = client("sts")
    control("POST", "/_emu/faults", {"operation": "AssumeRole", "request_contains": "444444444444",
                                     "error_code": "AccessDenied", "status": 403, "count": 5})
    ok = sts.assume_role(RoleArn="arn:aws:iam::222222222222:role/r", RoleSessionName="selftest")
    assert ok["Credentials"]["AccessKeyId"], ok
    expect_client_error(lambda: sts.assume_role(RoleArn="arn:aws:iam::444444444444:role/r",
                                                RoleSessionName="selftest"), "AccessDenied", 403)
    # A reply held back after the call is limited the same way.
    control("POST", "/_emu/faults", {"operation": "AssumeRole", "request_contains": "555555555555",
                                     "delay_ms": 400, "after": True})
    t0 = time.time()
    sts.assume_role(RoleArn="arn:aws:iam::222222222222:role/r", RoleSessionName="selftest")
    assert time.time() - t0 < 0.4, "another request is not held"
    sts.assume_role(RoleArn="arn:aws:iam::555555555555:role/r", RoleSessionName="selftest")
    assert time.time() - t0 >= 0.4, "the request that contains the text is"
    control("DELETE", "/_emu/faults")


@test
def rate_faults_hit_about_their_share_with_seeded_dice():
    neptune = client("neptune")
    control("POST", "/_emu/faults/seed", {"seed": 7})
    control("POST", "/_emu/faults", {"operation": "DescribeDBClusters", "rate": 0.3,
                                     "error_code": "InternalFailure", "status": 500})
    outcomes = []
    for _ in range(200):
        try:
            neptune.describe_db_clusters()
            outcomes.append(True)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InternalFailure", e.response
            outcomes.append(False)
    failed = outcomes.count(False)
    assert 35 <= failed <= 85, failed  # 30% of 200, give or take
    [fault] = control("GET", "/_emu/faults")
    assert fault["hits"] == failed and fault["remaining"] is None, fault
    control("DELETE", "/_emu/faults")
    # The same seed, the same dice.
    control("POST", "/_emu/faults/seed", {"seed": 7})
    control("POST", "/_emu/faults", {"operation": "DescribeDBClusters", "rate": 0.3,
                                     "error_code": "InternalFailure", "status": 500})
    again = []
    for _ in range(200):
        try:
            neptune.describe_db_clusters()
            again.append(True)
        except ClientError:
            again.append(False)
    assert again == outcomes
    control("DELETE", "/_emu/faults")
    try:
        control("POST", "/_emu/faults", {"operation": "X", "rate": 1.5, "throttle": 1})
        raise AssertionError("a rate above 1 was taken")
    except urllib.error.HTTPError as e:
        assert e.code == 400


@test
def a_reset_closes_the_connection_before_or_after_the_call():
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
    neptune = client("neptune")
    control("POST", "/_emu/faults", {"operation": "CreateDBClusterParameterGroup", "reset": True})
    try:
        neptune.create_db_cluster_parameter_group(
            DBClusterParameterGroupName="reset-before", DBParameterGroupFamily="neptune1.3",
            Description="x")
        raise AssertionError("the reset call succeeded")
    except (ConnectionClosedError, EndpointConnectionError, ConnectionError) as e:
        pass
    groups = [g["DBClusterParameterGroupName"]
              for g in neptune.describe_db_cluster_parameter_groups()["DBClusterParameterGroups"]]
    assert "reset-before" not in groups, groups
    control("POST", "/_emu/faults", {"operation": "CreateDBClusterParameterGroup", "reset": True,
                                     "after": True})
    try:
        neptune.create_db_cluster_parameter_group(
            DBClusterParameterGroupName="reset-after", DBParameterGroupFamily="neptune1.3",
            Description="x")
        raise AssertionError("the reset call succeeded")
    except (ConnectionClosedError, EndpointConnectionError, ConnectionError):
        pass
    groups = [g["DBClusterParameterGroupName"]
              for g in neptune.describe_db_cluster_parameter_groups()["DBClusterParameterGroups"]]
    assert "reset-after" in groups, "carried out, reply lost"
    calls = control("GET", "/_emu/calls?operation=CreateDBClusterParameterGroup")
    assert [c["status"] for c in calls[-2:]] == ["reset", "reset-after"], calls[-2:]
    # Security Hub's port too.
    f = make_finding("reset")
    import_findings(f)
    control("POST", "/_emu/faults", {"operation": "GetFindings", "reset": True})
    try:
        get_one(f)
        raise AssertionError("the reset call succeeded")
    except (ConnectionClosedError, EndpointConnectionError, ConnectionError):
        pass
    get_one(f)
    assert control("GET", "/_emu/faults") == []


@test
def sqs_batch_entries_fail_one_by_one():
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="entries-q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    for n in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    got = []
    while len(got) < 4:
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    control("POST", "/_emu/faults", {"operation": "DeleteMessageBatch", "entries": 1})
    r = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": f"e{n}", "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)])
    assert [x["Id"] for x in r["Failed"]] == ["e0"], r
    assert sorted(x["Id"] for x in r["Successful"]) == ["e1", "e2", "e3"], r
    assert r["Failed"][0]["SenderFault"] is False
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1", attrs
    control("POST", "/_emu/faults", {"operation": "ChangeMessageVisibilityBatch", "entries": 1})
    r = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "only", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 0}])
    assert [x["Id"] for x in r["Failed"]] == ["only"] and not r.get("Successful"), r
    try:
        control("POST", "/_emu/faults", {"operation": "ReceiveMessage", "entries": 1})
        raise AssertionError("an entries fault on a non-batch call was taken")
    except urllib.error.HTTPError as e:
        assert e.code == 400
    sqs.delete_queue(QueueUrl=url)


@test
def a_rebooting_instance_cannot_be_rebooted_again():
    neptune = client("neptune")
    neptune.create_db_cluster(DBClusterIdentifier="reboot-twice", Engine="neptune")
    neptune.create_db_instance(DBInstanceIdentifier="reboot-twice-1", DBInstanceClass="db.r5.large",
                               Engine="neptune", DBClusterIdentifier="reboot-twice")
    control("POST", "/_emu/neptune/timing", {"reboot_seconds": 2})
    try:
        neptune.reboot_db_instance(DBInstanceIdentifier="reboot-twice-1")
        expect_client_error(lambda: neptune.reboot_db_instance(DBInstanceIdentifier="reboot-twice-1"),
                            "InvalidDBInstanceState", 400)
        time.sleep(2.2)
        neptune.reboot_db_instance(DBInstanceIdentifier="reboot-twice-1")
    finally:
        control("POST", "/_emu/neptune/timing", {"reboot_seconds": 0})


def v2_ident(f):
    return {"CloudAccountUid": f["AwsAccountId"], "FindingInfoUid": f["Id"],
            "MetadataProductUid": f["ProductArn"].replace("::product/", "::productv2/")}


def get_v2(f):
    r = client("securityhub").get_findings_v2(Filters={"CompositeFilters": [{"StringFilters": [
        {"FieldName": "finding_info.uid", "Filter": {"Value": f["Id"], "Comparison": "EQUALS"}},
        {"FieldName": "metadata.product.uid",
         "Filter": {"Value": v2_ident(f)["MetadataProductUid"], "Comparison": "EQUALS"}}]}]})
    assert len(r["Findings"]) == 1, r
    return r["Findings"][0]


@test
def v2_twins_updates_and_their_events():
    control("POST", "/_emu/v2", {"mirror": True})
    control("DELETE", "/_emu/events")
    try:
        f = make_finding("v2-twin")
        import_findings(f)
        twin = get_v2(f)
        assert twin["finding_info"]["uid"] == f["Id"], twin
        assert twin["metadata"]["product"]["uid"].endswith("::productv2/aws/securityhub"), twin
        assert (twin["compliance"]["control"], twin["compliance"]["status_id"]) == ("Neptune.2", 3), twin
        assert twin["status_id"] == 1 and twin["resources"][0]["uid_alt"] == CLUSTER_ARN, twin
        kinds = [e["entry"]["DetailType"] for e in control("GET", "/_emu/events")["emitted"]]
        assert kinds == ["Security Hub Findings - Imported", "Findings Imported V2"], kinds

        hub = client("securityhub")
        r = hub.batch_update_findings_v2(FindingIdentifiers=[v2_ident(f)], StatusId=2,
                                         Comment="hubtriage[action=ticket] opened SEC-1")
        assert len(r["ProcessedFindings"]) == 1 and not r["UnprocessedFindings"], r
        twin = get_v2(f)
        assert (twin["status_id"], twin["status"], twin["comment"]) == (
            2, "In Progress", "hubtriage[action=ticket] opened SEC-1"), twin
        assert get_one(f)["Workflow"]["Status"] == "NEW", "V1 and V2 statuses are not synchronized"
        last = control("GET", "/_emu/events")["emitted"][-1]["entry"]
        assert last["DetailType"] == "Findings Imported V2", "the update re-emits a V2 event"
        assert json.loads(last["Detail"])["findings"][0]["status_id"] == 2

        # The check passes: the re-import resolves it and keeps the comment.
        passed = copy.deepcopy(f)
        passed["Compliance"]["Status"] = "PASSED"
        import_findings(passed)
        twin = get_v2(f)
        assert (twin["status_id"], twin["comment"]) == (4, "hubtriage[action=ticket] opened SEC-1"), twin

        ghost = dict(v2_ident(f), FindingInfoUid=f["Id"] + "-ghost")
        r = hub.batch_update_findings_v2(FindingIdentifiers=[ghost], StatusId=2)
        assert r["UnprocessedFindings"][0]["ErrorCode"] == "ResourceNotFoundException", r
        for bad in ({"FindingIdentifiers": [v2_ident(f)], "MetadataUids": ["x"], "StatusId": 2},
                    {"StatusId": 2},
                    {"FindingIdentifiers": [v2_ident(f)]},
                    {"FindingIdentifiers": [v2_ident(f)], "Comment": "x" * 513},
                    {"FindingIdentifiers": [v2_ident(f)], "StatusId": 7},
                    {"FindingIdentifiers": [dict(v2_ident(f), CloudAccountUid="")], "StatusId": 2},
                    {"FindingIdentifiers": [v2_ident(f)] * 101, "StatusId": 2}):
            expect_client_error(lambda: hub.batch_update_findings_v2(**bad), "ValidationException", 400)
        expect_client_error(lambda: hub.get_findings_v2(Filters={"CompositeFilters": [{"StringFilters": [
            {"FieldName": "finding_info.title", "Filter": {"Value": "x", "Comparison": "EQUALS"}}]}]}),
            "ValidationException", 400)
        control("POST", "/_emu/faults", {"operation": "BatchUpdateFindingsV2", "throttle": 1})
        expect_client_error(lambda: hub.batch_update_findings_v2(FindingIdentifiers=[v2_ident(f)], StatusId=2),
                            "ThrottlingException", 429)
        by_uid = hub.batch_update_findings_v2(MetadataUids=[twin["metadata"]["uid"]], StatusId=3)
        assert by_uid["ProcessedFindings"] == [{"MetadataUid": twin["metadata"]["uid"]}], by_uid
        # Imported as OCSF directly (the control API), with only the resource id.
        own = copy.deepcopy(twin)
        own["finding_info"]["uid"] = f["Id"] + "-direct"
        own["resources"][0].pop("uid_alt")
        own["status_id"] = 3
        control("POST", "/_emu/findingsv2/import", {"Findings": [own]})
        n = hub.get_findings_v2(Filters={"CompositeFilters": [{"NumberFilters": [
            {"FieldName": "status_id", "Filter": {"Eq": 3}}]}]})["Findings"]
        assert [x["finding_info"]["uid"] for x in n] == [f["Id"], f["Id"] + "-direct"], n
    finally:
        control("POST", "/_emu/v2", {"mirror": False})


# Neptune.3 (snapshots not public) and Neptune.6 (snapshots encrypted) name a
# cluster snapshot; every other Neptune control names the cluster.
SNAPSHOT_CONTROLS = {"Neptune.3", "Neptune.6"}


@test
def findings_of_every_neptune_control_and_their_v2_twins():
    neptune = client("neptune")
    neptune.create_db_cluster(DBClusterIdentifier="controls-graph", Engine="neptune")
    neptune.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="controls-graph-snap",
                                       DBClusterIdentifier="controls-graph")
    c = describe_cluster("controls-graph")
    cluster_arn, snap_arn = c["DBClusterArn"], snapshot_arn("controls-graph-snap")
    findings = []
    for control_id in [f"Neptune.{n}" for n in range(1, 10)] + ["RDS.7"]:
        on_snapshot = control_id in SNAPSHOT_CONTROLS
        f = make_finding(f"controls-{control_id}", control_id=control_id,
                         cluster_arn=snap_arn if on_snapshot else cluster_arn)
        if on_snapshot:
            f["Resources"][0]["Type"] = "AwsRdsDbClusterSnapshot"
        findings.append(f)
    control("POST", "/_emu/v2", {"mirror": True})
    try:
        import_findings(*findings)
        for f in findings:
            got = get_one(f)
            assert got["Compliance"]["SecurityControlId"] == f["Compliance"]["SecurityControlId"], got
            assert got["Resources"] == f["Resources"], got
        on_snapshots = client("securityhub").get_findings(Filters={
            "ResourceType": [{"Value": "AwsRdsDbClusterSnapshot", "Comparison": "EQUALS"}],
            "ResourceId": [{"Value": snap_arn, "Comparison": "EQUALS"}]})["Findings"]
        assert {x["Compliance"]["SecurityControlId"] for x in on_snapshots} == SNAPSHOT_CONTROLS, on_snapshots
        # The V2 twins: a snapshot by its ARN, a cluster by its resource id.
        for f in findings:
            [r] = get_v2(f)["resources"]
            if f["Compliance"]["SecurityControlId"] in SNAPSHOT_CONTROLS:
                assert (r["type"], r["uid"]) == ("AWS::RDS::DBClusterSnapshot", snap_arn), r
            else:
                assert (r["type"], r["uid"], r["uid_alt"]) == (
                    "AWS::RDS::DBCluster", c["DbClusterResourceId"], cluster_arn), r
        assert get_v2(findings[-1])["compliance"]["control"] == "RDS.7"
        v2 = client("securityhub").get_findings_v2(Filters={"CompositeFilters": [{"StringFilters": [
            {"FieldName": "resources.type",
             "Filter": {"Value": "AWS::RDS::DBClusterSnapshot", "Comparison": "EQUALS"}},
            {"FieldName": "resources.uid", "Filter": {"Value": snap_arn, "Comparison": "EQUALS"}}]}]})
        assert {x["compliance"]["control"] for x in v2["Findings"]} == SNAPSHOT_CONTROLS, v2
    finally:
        control("POST", "/_emu/v2", {"mirror": False})


@test
def sqs_counts_and_deletes_stay_right_at_depth():
    # Patch H changes how moto finds messages, not what it answers.
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="depth-q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    for i in range(0, 300, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(j), "MessageBody": f"m{i + j}"} for j in range(10)])
    attrs = lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs()["ApproximateNumberOfMessages"] == "300", attrs()
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 10
    a = attrs()
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]) == ("290", "10"), a
    out = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    assert len(out.get("Successful", [])) == 10 and not out.get("Failed"), out
    # Deleting again is accepted; an unknown handle is not.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    expect_client_error(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="nope"),
                        "ReceiptHandleIsInvalid", 400)
    a = attrs()
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]) == ("290", "0"), a


@test
def update_event_reaches_sqs_via_eventbridge_rule():
    url = make_queue_with_rule("sh-events")
    f = make_finding("event-1")
    import_findings(f)
    imported = drain(url)
    assert len(imported) == 1 and imported[0]["detail"]["findings"][0]["Workflow"]["Status"] == "NEW", imported
    client("securityhub").batch_update_findings(FindingIdentifiers=[ident(f)], Workflow={"Status": "NOTIFIED"},
                                                Note={"Text": "n", "UpdatedBy": "hubtriage"})
    msgs = drain(url)
    assert len(msgs) == 1, msgs
    ev = msgs[0]
    assert ev["source"] == "aws.securityhub" and ev["detail-type"] == "Security Hub Findings - Imported", ev
    assert ev["account"] == ACCOUNT and ev["region"] == REGION, ev
    assert ev["resources"] == [f"{PRODUCT_ARN}/{f['Id']}"], ev["resources"]
    assert isinstance(ev["time"], str) and ev["time"].endswith("Z"), ev["time"]
    finding = ev["detail"]["findings"][0]
    assert finding["Id"] == f["Id"] and finding["Workflow"]["Status"] == "NOTIFIED"
    assert finding["Note"]["Text"] == "n"
    # emission can be switched off
    control("POST", "/_emu/events", {"enabled": False})
    try:
        client("securityhub").batch_update_findings(FindingIdentifiers=[ident(f)], Workflow={"Status": "NEW"})
        assert drain(url, 1.0) == []
    finally:
        control("POST", "/_emu/events", {"enabled": True})
    emitted = control("GET", "/_emu/events")["emitted"]
    assert any(e["finding_id"] == f["Id"] and e["account"] == ACCOUNT for e in emitted)


@test
def events_go_to_the_findings_account():
    f = make_finding("other-account", account="111122223333")
    import_findings(f)
    last = control("GET", "/_emu/events")["emitted"][-1]
    assert last["account"] == "111122223333" and last["finding_id"] == f["Id"], last
    assert "EventId" in last["result"][0], last


# ---------------------------------------------------------------- moto side


@test
def call_log_records_describe_db_clusters():
    control("DELETE", "/_emu/calls")
    make_neptune_cluster("calllog", instances=0)
    client("neptune").describe_db_clusters(DBClusterIdentifier="calllog")
    calls = control("GET", "/_emu/calls")
    desc = [c for c in calls if c["operation"] == "DescribeDBClusters"]
    assert desc and desc[0]["service"] == "rds" and desc[0]["status"] == 200, calls
    assert desc[0]["request"]["DBClusterIdentifier"] == "calllog"
    assert isinstance(desc[0]["time"], float)
    assert [c["operation"] for c in calls][:2] == ["CreateDBCluster", "DescribeDBClusters"], calls
    client("sqs").list_queues()
    client("sts").get_caller_identity()
    ops = [(c["service"], c["operation"]) for c in control("GET", "/_emu/calls")]
    assert ("sqs", "ListQueues") in ops and ("sts", "GetCallerIdentity") in ops, ops
    only = control("GET", "/_emu/calls?service=rds&operation=DescribeDBClusters")
    assert [c["operation"] for c in only] == ["DescribeDBClusters"], only
    control("DELETE", "/_emu/calls")
    assert control("GET", "/_emu/calls") == []


@test
def smoke_sts_logs_iam():
    assert client("sts").get_caller_identity()["Account"] == ACCOUNT
    logs = client("logs")
    logs.create_log_group(logGroupName="/aws/neptune/orders-graph/audit")
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/neptune/")["logGroups"]
    assert groups[0]["logGroupName"] == "/aws/neptune/orders-graph/audit"
    iam = client("iam")
    iam.create_role(RoleName="hubtriage", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                                                                               "Statement": []}))
    assert iam.get_role(RoleName="hubtriage")["Role"]["RoleName"] == "hubtriage"


@test
def patch_a_modify_cluster_log_exports():
    neptune = make_neptune_cluster("patch-a", instances=1, EnableCloudwatchLogsExports=["slowquery"])
    assert describe_cluster("patch-a")["EnabledCloudwatchLogsExports"] == ["slowquery"]
    neptune.modify_db_cluster(DBClusterIdentifier="patch-a", ApplyImmediately=True,
                              CloudwatchLogsExportConfiguration={"EnableLogTypes": ["audit"]})
    assert describe_cluster("patch-a")["EnabledCloudwatchLogsExports"] == ["slowquery", "audit"]
    neptune.modify_db_cluster(DBClusterIdentifier="patch-a", ApplyImmediately=True,
                              CloudwatchLogsExportConfiguration={"EnableLogTypes": ["audit"],
                                                                 "DisableLogTypes": ["slowquery"]})
    assert describe_cluster("patch-a")["EnabledCloudwatchLogsExports"] == ["audit"]


@test
def patch_b_parameter_groups():
    neptune = client("neptune")
    for name in ("default.neptune1", "default.neptune1.2", "default.neptune1.3", "default.neptune1.4"):
        groups = neptune.describe_db_cluster_parameter_groups(DBClusterParameterGroupName=name)
        assert groups["DBClusterParameterGroups"][0]["DBClusterParameterGroupName"] == name
        params = {p["ParameterName"]: p for p in
                  neptune.describe_db_cluster_parameters(DBClusterParameterGroupName=name)["Parameters"]}
        audit = params["neptune_enable_audit_log"]
        assert (audit["ParameterValue"], audit["Source"], audit["ApplyType"], audit["ApplyMethod"]) == (
            "0", "engine-default", "static", "pending-reboot"), audit
    expect_client_error(lambda: neptune.modify_db_cluster_parameter_group(
        DBClusterParameterGroupName="default.neptune1.3",
        Parameters=[{"ParameterName": "neptune_enable_audit_log", "ParameterValue": "1",
                     "ApplyMethod": "pending-reboot"}]), "InvalidDBParameterGroupState")
    neptune.create_db_cluster_parameter_group(DBClusterParameterGroupName="audit-on",
                                              DBParameterGroupFamily="neptune1.3", Description="d")
    params = {p["ParameterName"]: p for p in
              neptune.describe_db_cluster_parameters(DBClusterParameterGroupName="audit-on")["Parameters"]}
    assert params["neptune_enable_audit_log"]["ParameterValue"] == "0"
    assert params["neptune_enable_audit_log"]["Source"] == "engine-default"
    neptune.modify_db_cluster_parameter_group(
        DBClusterParameterGroupName="audit-on",
        Parameters=[{"ParameterName": "neptune_enable_audit_log", "ParameterValue": "1",
                     "ApplyMethod": "pending-reboot"}])
    params = {p["ParameterName"]: p for p in
              neptune.describe_db_cluster_parameters(DBClusterParameterGroupName="audit-on")["Parameters"]}
    audit = params["neptune_enable_audit_log"]
    assert (audit["ParameterValue"], audit["Source"], audit["ApplyType"]) == ("1", "user", "static"), audit
    user_only = neptune.describe_db_cluster_parameters(DBClusterParameterGroupName="audit-on",
                                                       Source="user")["Parameters"]
    assert [p["ParameterName"] for p in user_only] == ["neptune_enable_audit_log"], user_only
    expect_client_error(lambda: neptune.modify_db_cluster_parameter_group(
        DBClusterParameterGroupName="audit-on",
        Parameters=[{"ParameterName": "no_such_param", "ParameterValue": "1", "ApplyMethod": "immediate"}]),
        "InvalidParameterValue")
    expect_client_error(lambda: neptune.describe_db_cluster_parameters(DBClusterParameterGroupName="nope"),
                        "DBParameterGroupNotFound")


@test
def patch_c_describe_db_clusters_and_tags():
    neptune = make_neptune_cluster("orders-graph", tags=[{"Key": "env", "Value": "prod"},
                                                         {"Key": "team", "Value": "orders"}],
                                   EnableCloudwatchLogsExports=["slowquery"],
                                   PreferredMaintenanceWindow="sun:06:00-sun:06:30")
    c = describe_cluster("orders-graph")
    assert c["Engine"] == "neptune" and c["EngineVersion"] == "1.3.2.1" and c["Status"] == "available", c
    assert c["DBClusterParameterGroup"] == "default.neptune1.3"
    assert c["EnabledCloudwatchLogsExports"] == ["slowquery"]
    assert c["PreferredMaintenanceWindow"] == "sun:06:00-sun:06:30"
    assert c["DBClusterArn"] == CLUSTER_ARN
    assert c["Endpoint"].endswith(".neptune.amazonaws.com")
    members = {m["DBInstanceIdentifier"]: m for m in c["DBClusterMembers"]}
    assert set(members) == {"orders-graph-1", "orders-graph-2"}
    assert [m["IsClusterWriter"] for m in c["DBClusterMembers"]].count(True) == 1
    assert all(m["DBClusterParameterGroupStatus"] == "in-sync" for m in members.values())
    tags = neptune.list_tags_for_resource(ResourceName=CLUSTER_ARN)["TagList"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "prod"), ("team", "orders")], tags
    # engine version picks the family's default group
    client("neptune").create_db_cluster(DBClusterIdentifier="old-engine", Engine="neptune",
                                        EngineVersion="1.2.1.0")
    assert describe_cluster("old-engine")["DBClusterParameterGroup"] == "default.neptune1.2"
    # test control: member status and cluster status
    control("POST", "/_emu/neptune/member-status",
            {"cluster": "orders-graph", "instance": "orders-graph-2", "status": "pending-reboot"})
    control("POST", "/_emu/neptune/cluster-status", {"cluster": "orders-graph", "status": "modifying"})
    c = describe_cluster("orders-graph")
    members = {m["DBInstanceIdentifier"]: m for m in c["DBClusterMembers"]}
    assert members["orders-graph-2"]["DBClusterParameterGroupStatus"] == "pending-reboot"
    assert members["orders-graph-1"]["DBClusterParameterGroupStatus"] == "in-sync"
    assert c["Status"] == "modifying" and describe_cluster("orders-graph")["Status"] == "modifying"
    control("POST", "/_emu/neptune/cluster-status", {"cluster": "orders-graph", "status": None})
    assert describe_cluster("orders-graph")["Status"] == "available"
    neptune.reboot_db_instance(DBInstanceIdentifier="orders-graph-2")
    assert all(m["DBClusterParameterGroupStatus"] == "in-sync" for m in describe_cluster("orders-graph")[
        "DBClusterMembers"])
    # switching to a custom group with a static change leaves members pending-reboot
    neptune.create_db_cluster_parameter_group(DBClusterParameterGroupName="orders-audit",
                                              DBParameterGroupFamily="neptune1.3", Description="d")
    neptune.modify_db_cluster(DBClusterIdentifier="orders-graph", DBClusterParameterGroupName="orders-audit",
                              ApplyImmediately=True)
    c = describe_cluster("orders-graph")
    assert c["DBClusterParameterGroup"] == "orders-audit"
    assert {m["DBClusterParameterGroupStatus"] for m in c["DBClusterMembers"]} == {"pending-reboot"}
    for i in (1, 2):
        neptune.reboot_db_instance(DBInstanceIdentifier=f"orders-graph-{i}")
    neptune.modify_db_cluster_parameter_group(
        DBClusterParameterGroupName="orders-audit",
        Parameters=[{"ParameterName": "neptune_enable_audit_log", "ParameterValue": "1",
                     "ApplyMethod": "pending-reboot"}])
    assert {m["DBClusterParameterGroupStatus"] for m in describe_cluster("orders-graph")["DBClusterMembers"]} \
        == {"pending-reboot"}


def neptune_cluster(name, filtered=False):
    """A cluster from DescribeDBClusters, by identifier or (rds client) from
    the engine=neptune listing, as the daemon reads both."""
    if not filtered:
        return describe_cluster(name)
    listing = client("rds").describe_db_clusters(Filters=[{"Name": "engine", "Values": ["neptune"]}])
    [c] = [c for c in listing["DBClusters"] if c["DBClusterIdentifier"] == name]
    return c


def settings(c):
    return {k: c.get(k) for k in ("DeletionProtection", "BackupRetentionPeriod", "CopyTagsToSnapshot",
                                  "IAMDatabaseAuthenticationEnabled", "StorageEncrypted", "MultiAZ")}


@test
def patch_i_neptune_cluster_settings_at_create():
    neptune, kms = client("neptune"), client("kms")
    neptune.create_db_cluster(DBClusterIdentifier="settings-plain", Engine="neptune")
    c = describe_cluster("settings-plain")
    assert settings(c) == {"DeletionProtection": False, "BackupRetentionPeriod": 1, "CopyTagsToSnapshot": False,
                           "IAMDatabaseAuthenticationEnabled": False, "StorageEncrypted": False,
                           "MultiAZ": False}, c
    assert "KmsKeyId" not in c, "an unencrypted cluster has no key"
    assert c["DbClusterResourceId"].startswith("cluster-"), c
    # Every Neptune control's setting at creation (moto refused IAM auth).
    key = kms.create_key(Description="neptune at rest")["KeyMetadata"]
    neptune.create_db_cluster(DBClusterIdentifier="settings-all", Engine="neptune", DeletionProtection=True,
                              BackupRetentionPeriod=35, CopyTagsToSnapshot=True,
                              EnableIAMDatabaseAuthentication=True, StorageEncrypted=True,
                              KmsKeyId=key["KeyId"])
    for n, az in ((1, "us-east-1a"), (2, "us-east-1b")):
        neptune.create_db_instance(DBInstanceIdentifier=f"settings-all-{n}", DBInstanceClass="db.r5.large",
                                   Engine="neptune", DBClusterIdentifier="settings-all", AvailabilityZone=az)
    for c in (describe_cluster("settings-all"), neptune_cluster("settings-all", filtered=True)):
        assert settings(c) == {"DeletionProtection": True, "BackupRetentionPeriod": 35, "CopyTagsToSnapshot": True,
                               "IAMDatabaseAuthenticationEnabled": True, "StorageEncrypted": True,
                               "MultiAZ": True}, c
        assert c["KmsKeyId"] == key["Arn"], c
        assert c["DbClusterResourceId"] == describe_cluster("settings-all")["DbClusterResourceId"]
    # Encrypted without a key: the account's aws/rds key; one AZ: not Multi-AZ.
    make_neptune_cluster("settings-default-key", instances=2, StorageEncrypted=True)
    c = describe_cluster("settings-default-key")
    assert c["KmsKeyId"] == kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"], c
    assert c["MultiAZ"] is False, c
    # Refused as Neptune refuses them; nothing is created.
    for days in (0, 36):
        expect_client_error(lambda: neptune.create_db_cluster(
            DBClusterIdentifier=f"settings-bad-{days}", Engine="neptune", BackupRetentionPeriod=days),
            "InvalidParameterValue", 400)
        expect_client_error(lambda: describe_cluster(f"settings-bad-{days}"), "DBClusterNotFoundFault")
    expect_client_error(lambda: neptune.create_db_cluster(
        DBClusterIdentifier="settings-bad-key", Engine="neptune", StorageEncrypted=True, KmsKeyId="alias/nope"),
        "KMSKeyNotAccessibleFault", 400)


@test
def patch_j_modify_cluster_settings_apply_at_once():
    neptune = make_neptune_cluster("settings-mod", instances=1)
    # Neptune applies these at once, ApplyImmediately or not.
    neptune.modify_db_cluster(DBClusterIdentifier="settings-mod", ApplyImmediately=False,
                              DeletionProtection=True, BackupRetentionPeriod=7, CopyTagsToSnapshot=True,
                              EnableIAMDatabaseAuthentication=True)
    for c in (describe_cluster("settings-mod"), neptune_cluster("settings-mod", filtered=True)):
        assert settings(c) == {"DeletionProtection": True, "BackupRetentionPeriod": 7, "CopyTagsToSnapshot": True,
                               "IAMDatabaseAuthenticationEnabled": True, "StorageEncrypted": False,
                               "MultiAZ": False}, c
    expect_client_error(lambda: neptune.delete_db_cluster(DBClusterIdentifier="settings-mod",
                                                          SkipFinalSnapshot=True),
                        "InvalidParameterCombination", 400)
    # Out of range: refused, and nothing else in the call is applied.
    for days in (0, 36):
        expect_client_error(lambda: neptune.modify_db_cluster(
            DBClusterIdentifier="settings-mod", BackupRetentionPeriod=days, DeletionProtection=False),
            "InvalidParameterValue", 400)
    assert settings(describe_cluster("settings-mod"))["DeletionProtection"] is True
    assert settings(describe_cluster("settings-mod"))["BackupRetentionPeriod"] == 7
    neptune.modify_db_cluster(DBClusterIdentifier="settings-mod", DeletionProtection=False,
                              BackupRetentionPeriod=1, CopyTagsToSnapshot=False,
                              EnableIAMDatabaseAuthentication=False)
    assert settings(describe_cluster("settings-mod")) == {
        "DeletionProtection": False, "BackupRetentionPeriod": 1, "CopyTagsToSnapshot": False,
        "IAMDatabaseAuthenticationEnabled": False, "StorageEncrypted": False, "MultiAZ": False}
    # With patch A's log exports and patch E's timing in the same call.
    control("POST", "/_emu/neptune/timing", {"modify_seconds": 0.5})
    try:
        neptune.modify_db_cluster(DBClusterIdentifier="settings-mod", ApplyImmediately=True,
                                  EnableIAMDatabaseAuthentication=True,
                                  CloudwatchLogsExportConfiguration={"EnableLogTypes": ["audit"]})
        c = describe_cluster("settings-mod")
        assert c["Status"] == "modifying" and c["IAMDatabaseAuthenticationEnabled"] is True, c
        assert c["EnabledCloudwatchLogsExports"] == ["audit"], c
    finally:
        control("POST", "/_emu/neptune/timing", {"modify_seconds": 0})
    calls = control("GET", "/_emu/calls?service=rds&operation=ModifyDBCluster")
    assert calls and all(c["mutating"] for c in calls), calls
    assert calls[-1]["status"] == 200 and calls[-1]["request"]["EnableIAMDatabaseAuthentication"] == "true"


def snapshot_arn(name):
    return f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:{name}"


@test
def patch_k_cluster_snapshots():
    neptune, rds, kms = client("neptune"), client("rds"), client("kms")
    key = kms.create_key(Description="snapshots")["KeyMetadata"]
    neptune.create_db_cluster(DBClusterIdentifier="snap-src", Engine="neptune", StorageEncrypted=True,
                              KmsKeyId=key["Arn"], CopyTagsToSnapshot=True,
                              Tags=[{"Key": "env", "Value": "prod"}])
    neptune.create_db_cluster(DBClusterIdentifier="snap-plain-src", Engine="neptune")
    s = neptune.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="snap-enc", DBClusterIdentifier="snap-src",
                                           Tags=[{"Key": "purpose", "Value": "self-test"}])["DBClusterSnapshot"]
    assert {k: s.get(k) for k in ("DBClusterSnapshotIdentifier", "DBClusterIdentifier", "SnapshotType", "Status",
                                  "Engine", "StorageEncrypted", "KmsKeyId", "DBClusterSnapshotArn")} == {
        "DBClusterSnapshotIdentifier": "snap-enc", "DBClusterIdentifier": "snap-src", "SnapshotType": "manual",
        "Status": "available", "Engine": "neptune", "StorageEncrypted": True, "KmsKeyId": key["Arn"],
        "DBClusterSnapshotArn": snapshot_arn("snap-enc")}, s
    plain = neptune.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="snap-plain",
                                               DBClusterIdentifier="snap-plain-src")["DBClusterSnapshot"]
    assert plain["StorageEncrypted"] is False and "KmsKeyId" not in plain, plain
    # By identifier or ARN (the Id a finding names), with either client.
    for c in (neptune, rds):
        for name in ("snap-enc", snapshot_arn("snap-enc")):
            [got] = c.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"]
            assert got["DBClusterSnapshotArn"] == snapshot_arn("snap-enc") and got["KmsKeyId"] == key["Arn"], got
    listed = {x["DBClusterSnapshotIdentifier"]: x["SnapshotType"]
              for x in neptune.describe_db_cluster_snapshots()["DBClusterSnapshots"]}
    assert listed["snap-enc"] == listed["snap-plain"] == "manual", listed
    manual = neptune.describe_db_cluster_snapshots(DBClusterIdentifier="snap-src", SnapshotType="manual")
    assert [x["DBClusterSnapshotIdentifier"] for x in manual["DBClusterSnapshots"]] == ["snap-enc"], manual
    other_account = f"arn:aws:rds:{REGION}:111122223333:cluster-snapshot:snap-enc"
    for name in ("snap-nope", snapshot_arn("snap-nope"), other_account):
        expect_client_error(lambda: neptune.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name),
                            "DBClusterSnapshotNotFoundFault", 404)
    # Tags given at creation (the cluster's are not copied then); else copied.
    tags = neptune.list_tags_for_resource(ResourceName=snapshot_arn("snap-enc"))["TagList"]
    assert tags == [{"Key": "purpose", "Value": "self-test"}], tags
    neptune.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="snap-copied", DBClusterIdentifier="snap-src")
    tags = neptune.list_tags_for_resource(ResourceName=snapshot_arn("snap-copied"))["TagList"]
    assert tags == [{"Key": "env", "Value": "prod"}], tags


@test
def patch_l_cluster_snapshot_attributes():
    neptune = client("neptune")
    neptune.create_db_cluster(DBClusterIdentifier="share-enc", Engine="neptune", StorageEncrypted=True)
    neptune.create_db_cluster(DBClusterIdentifier="share-plain", Engine="neptune")
    for name in ("share-enc", "share-plain"):
        neptune.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=f"{name}-snap", DBClusterIdentifier=name)
    control("DELETE", "/_emu/calls")

    def restore(name, **kw):
        if kw:
            r = neptune.modify_db_cluster_snapshot_attribute(
                DBClusterSnapshotIdentifier=name, AttributeName="restore", **kw)
        else:
            r = neptune.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=name)
        result = r["DBClusterSnapshotAttributesResult"]
        [attr] = result["DBClusterSnapshotAttributes"]
        assert attr["AttributeName"] == "restore", result
        return result["DBClusterSnapshotIdentifier"], attr["AttributeValues"]

    plain, enc = "share-plain-snap", "share-enc-snap"
    assert restore(plain) == (plain, [])
    assert restore(snapshot_arn(plain), ValuesToAdd=["all", "111122223333"]) == (
        plain, ["all", "111122223333"])
    assert restore(snapshot_arn(plain)) == (plain, ["all", "111122223333"])
    assert restore(plain, ValuesToAdd=["111122223333", "444455556666"]) == (
        plain, ["all", "111122223333", "444455556666"]), "a value is listed once"
    # Removing "all" leaves the accounts shared.
    assert restore(plain, ValuesToRemove=["all"]) == (plain, ["111122223333", "444455556666"])
    # An encrypted snapshot can be shared with accounts, never made public.
    assert restore(enc, ValuesToAdd=["111122223333"]) == (enc, ["111122223333"])
    expect_client_error(lambda: restore(enc, ValuesToAdd=["all"]), "InvalidParameterValue", 400)
    expect_client_error(lambda: restore(snapshot_arn(enc), ValuesToAdd=["all", "444455556666"]),
                        "InvalidParameterValue", 400)
    assert restore(enc) == (enc, ["111122223333"]), "the refused call changed nothing"
    for bad in ("12345", "everyone", "1111222233334", "ALL"):
        expect_client_error(lambda: restore(plain, ValuesToAdd=[bad]), "InvalidParameterValue", 400)
    expect_client_error(lambda: neptune.modify_db_cluster_snapshot_attribute(
        DBClusterSnapshotIdentifier=plain, AttributeName="copy", ValuesToAdd=["111122223333"]),
        "InvalidParameterValue", 400)
    for name in ("share-nope", snapshot_arn("share-nope")):
        expect_client_error(lambda: restore(name), "DBClusterSnapshotNotFoundFault", 404)
        expect_client_error(lambda: restore(name, ValuesToAdd=["111122223333"]),
                            "DBClusterSnapshotNotFoundFault", 404)
    # Both are logged like every moto call; only the modification mutates.
    calls = control("GET", "/_emu/calls?service=rds")
    flags = {(c["operation"], c["mutating"]) for c in calls}
    assert flags == {("ModifyDBClusterSnapshotAttribute", True),
                     ("DescribeDBClusterSnapshotAttributes", False)}, flags
    mods = control("GET", "/_emu/calls?operation=ModifyDBClusterSnapshotAttribute&mutating=true")
    assert [c["status"] for c in mods[:2]] == [200, 200], mods
    assert mods[0]["request"]["DBClusterSnapshotIdentifier"] == snapshot_arn(plain), mods[0]
    assert {c["status"] for c in mods} == {200, 400, 404}, mods


def audit_param_group(name):
    neptune = client("neptune")
    neptune.create_db_cluster_parameter_group(DBClusterParameterGroupName=name,
                                              DBParameterGroupFamily="neptune1.3", Description="audit on")
    neptune.modify_db_cluster_parameter_group(
        DBClusterParameterGroupName=name,
        Parameters=[{"ParameterName": "neptune_enable_audit_log", "ParameterValue": "1",
                     "ApplyMethod": "pending-reboot"}])


def audit_streams(cluster):
    """Log stream names of /aws/neptune/<cluster>/audit, or None without the group."""
    logs, name = client("logs"), f"/aws/neptune/{cluster}/audit"
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    if not [g for g in groups if g["logGroupName"] == name]:
        return None
    return sorted(s["logStreamName"] for s in logs.describe_log_streams(logGroupName=name)["logStreams"])


def member_statuses(cluster):
    return {m["DBInstanceIdentifier"]: m["DBClusterParameterGroupStatus"]
            for m in describe_cluster(cluster)["DBClusterMembers"]}


@test
def neptune_writes_audit_logs():
    neptune, logs = client("neptune"), client("logs")
    audit_param_group("audit-logs-pg")
    # exports on, default group (audit 0): nothing is written
    make_neptune_cluster("audit-a", instances=2, EnableCloudwatchLogsExports=["audit"])
    assert audit_streams("audit-a") is None
    # switching to the audit group needs a reboot of each member
    neptune.modify_db_cluster(DBClusterIdentifier="audit-a", DBClusterParameterGroupName="audit-logs-pg",
                              ApplyImmediately=True)
    assert audit_streams("audit-a") is None
    neptune.reboot_db_instance(DBInstanceIdentifier="audit-a-1")
    assert audit_streams("audit-a") == ["audit-a-1"]
    events = logs.get_log_events(logGroupName="/aws/neptune/audit-a/audit", logStreamName="audit-a-1",
                                 startFromHead=True)["events"]
    assert events and events[0]["message"], events
    neptune.reboot_db_instance(DBInstanceIdentifier="audit-a-2")
    assert audit_streams("audit-a") == ["audit-a-1", "audit-a-2"]
    # the new group retains nothing by default; PutRetentionPolicy applies to it
    logs.put_retention_policy(logGroupName="/aws/neptune/audit-a/audit", retentionInDays=365)
    group = logs.describe_log_groups(logGroupNamePrefix="/aws/neptune/audit-a/audit")["logGroups"][0]
    assert group["retentionInDays"] == 365, group
    # group set at creation: in-sync from the start; a pre-existing log group is reused
    logs.create_log_group(logGroupName="/aws/neptune/audit-b/audit")
    make_neptune_cluster("audit-b", instances=1, EnableCloudwatchLogsExports=["audit"],
                         DBClusterParameterGroupName="audit-logs-pg")
    assert audit_streams("audit-b") == ["audit-b-1"]
    # audit parameter on but export off: appears once the export is enabled
    make_neptune_cluster("audit-c", instances=1, EnableCloudwatchLogsExports=["slowquery"],
                         DBClusterParameterGroupName="audit-logs-pg")
    assert audit_streams("audit-c") is None
    neptune.modify_db_cluster(DBClusterIdentifier="audit-c", ApplyImmediately=True,
                              CloudwatchLogsExportConfiguration={"EnableLogTypes": ["audit"]})
    assert audit_streams("audit-c") == ["audit-c-1"]
    # a member forced to pending-reboot writes nothing
    make_neptune_cluster("audit-e", instances=1, EnableCloudwatchLogsExports=["slowquery"],
                         DBClusterParameterGroupName="audit-logs-pg")
    control("POST", "/_emu/neptune/member-status",
            {"cluster": "audit-e", "instance": "audit-e-1", "status": "pending-reboot"})
    neptune.modify_db_cluster(DBClusterIdentifier="audit-e", ApplyImmediately=True,
                              CloudwatchLogsExportConfiguration={"EnableLogTypes": ["audit"]})
    assert audit_streams("audit-e") is None
    # switched off: nothing is written (simulates "no audit log stream")
    assert control("GET", "/_emu/neptune/audit-logs") == {"ok": True, "enabled": True}
    control("POST", "/_emu/neptune/audit-logs", {"enabled": False})
    try:
        assert control("GET", "/_emu/neptune/audit-logs")["enabled"] is False
        make_neptune_cluster("audit-d", instances=1, EnableCloudwatchLogsExports=["audit"],
                             DBClusterParameterGroupName="audit-logs-pg")
        assert audit_streams("audit-d") is None
    finally:
        control("POST", "/_emu/neptune/audit-logs", {"enabled": True})
    assert audit_streams("audit-d") == ["audit-d-1"], "written lazily once switched back on"


@test
def neptune_optional_timing():
    neptune = client("neptune")
    assert control("GET", "/_emu/neptune/timing") == {"reboot_seconds": 0.0, "modify_seconds": 0.0}
    for bad in ({"reboot_seconds": -1}, {"modify_seconds": "5"}, {"reboot": 1}):
        try:
            control("POST", "/_emu/neptune/timing", bad)
            raise AssertionError(f"accepted {bad}")
        except urllib.error.HTTPError as e:
            assert e.code == 400, e
    audit_param_group("timed-pg")
    make_neptune_cluster("timed", instances=1, EnableCloudwatchLogsExports=["audit"])
    describe_cluster("timed")  # moto reports "creating" once
    r = control("POST", "/_emu/neptune/timing", {"reboot_seconds": 0.8, "modify_seconds": 0.8})
    assert r == {"ok": True, "reboot_seconds": 0.8, "modify_seconds": 0.8}, r
    try:
        t0 = time.time()
        neptune.modify_db_cluster(DBClusterIdentifier="timed", DBClusterParameterGroupName="timed-pg",
                                  ApplyImmediately=True)
        assert describe_cluster("timed")["Status"] == "modifying"
        assert member_statuses("timed") == {"timed-1": "pending-reboot"}
        time.sleep(max(0.0, t0 + 0.9 - time.time()))
        assert describe_cluster("timed")["Status"] == "available"
        t0 = time.time()
        r = neptune.reboot_db_instance(DBInstanceIdentifier="timed-1")
        assert r["DBInstance"]["DBInstanceStatus"] == "rebooting", r["DBInstance"]
        inst = neptune.describe_db_instances(DBInstanceIdentifier="timed-1")["DBInstances"][0]
        assert inst["DBInstanceStatus"] == "rebooting"
        assert member_statuses("timed") == {"timed-1": "pending-reboot"}
        assert audit_streams("timed") is None, "no audit log before the reboot completes"
        time.sleep(max(0.0, t0 + 0.9 - time.time()))
        inst = neptune.describe_db_instances(DBInstanceIdentifier="timed-1")["DBInstances"][0]
        assert inst["DBInstanceStatus"] == "available"
        assert member_statuses("timed") == {"timed-1": "in-sync"}
        assert audit_streams("timed") == ["timed-1"]
        # a parameter change during a timed reboot still needs another reboot
        neptune.reboot_db_instance(DBInstanceIdentifier="timed-1")
        neptune.modify_db_cluster_parameter_group(
            DBClusterParameterGroupName="timed-pg",
            Parameters=[{"ParameterName": "neptune_streams", "ParameterValue": "1",
                         "ApplyMethod": "pending-reboot"}])
        time.sleep(0.9)
        assert member_statuses("timed") == {"timed-1": "pending-reboot"}
        assert neptune.describe_db_instances(DBInstanceIdentifier="timed-1")["DBInstances"][0][
            "DBInstanceStatus"] == "available"
    finally:
        control("POST", "/_emu/neptune/timing", {"reboot_seconds": 0, "modify_seconds": 0})
    assert control("GET", "/_emu/neptune/timing") == {"reboot_seconds": 0.0, "modify_seconds": 0.0}
    # default again: instantaneous
    neptune.reboot_db_instance(DBInstanceIdentifier="timed-1")
    assert member_statuses("timed") == {"timed-1": "in-sync"}
    neptune.modify_db_cluster(DBClusterIdentifier="timed", ApplyImmediately=True,
                              CloudwatchLogsExportConfiguration={"EnableLogTypes": ["slowquery"]})
    assert describe_cluster("timed")["Status"] == "available"


@test
def iam_rds_service_linked_role():
    iam = client("iam")
    expect_client_error(lambda: iam.get_role(RoleName="AWSServiceRoleForRDS"), "NoSuchEntity", 404)
    role = iam.create_service_linked_role(AWSServiceName="rds.amazonaws.com")["Role"]
    assert role["RoleName"] == "AWSServiceRoleForRDS", role
    assert role["Path"] == "/aws-service-role/rds.amazonaws.com/", role
    got = iam.get_role(RoleName="AWSServiceRoleForRDS")["Role"]
    assert got["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"
    iam.delete_service_linked_role(RoleName="AWSServiceRoleForRDS")
    expect_client_error(lambda: iam.get_role(RoleName="AWSServiceRoleForRDS"), "NoSuchEntity", 404)
    # control endpoint: create (idempotent)
    for _ in range(2):
        r = control("POST", "/_emu/iam/rds-service-linked-role", {})
        assert r["RoleName"] == "AWSServiceRoleForRDS" and r["Path"] == "/aws-service-role/rds.amazonaws.com/", r
    assert iam.get_role(RoleName="AWSServiceRoleForRDS")["Role"]["RoleName"] == "AWSServiceRoleForRDS"


@test
def logs_put_retention_policy():
    logs = client("logs")
    logs.create_log_group(logGroupName="/hubtriage/retention")
    group = logs.describe_log_groups(logGroupNamePrefix="/hubtriage/retention")["logGroups"][0]
    assert "retentionInDays" not in group, group
    logs.put_retention_policy(logGroupName="/hubtriage/retention", retentionInDays=90)
    group = logs.describe_log_groups(logGroupNamePrefix="/hubtriage/retention")["logGroups"][0]
    assert group["retentionInDays"] == 90, group
    expect_client_error(lambda: logs.put_retention_policy(logGroupName="/hubtriage/nope", retentionInDays=7),
                        "ResourceNotFoundException", 400)


@test
def call_log_mutating_flag():
    sys.path.insert(0, HERE)
    try:
        from hubemu import is_mutating
    finally:
        sys.path.remove(HERE)
    for op in ("CreateDBCluster", "ModifyDBCluster", "RebootDBInstance", "PutRetentionPolicy",
               "TagResource", "UntagResource", "BatchUpdateFindings", "BatchImportFindings",
               "SendMessage", "DeleteMessage", "ChangeMessageVisibility", "SetQueueAttributes",
               "PurgeQueue", "StartQuery", "AddTagsToResource", "RemoveTagsFromResource",
               "ResetDBClusterParameterGroup", "FailoverDBCluster", "CopyDBClusterParameterGroup",
               "RestoreDBClusterFromSnapshot", "ApplyPendingMaintenanceAction", "ImportKeyPair",
               "EnableSecurityHub", "DisableImportFindingsForProduct", "AttachRolePolicy",
               "DetachRolePolicy", "UpdateFindings", "StopDBCluster", "PutEvents"):
        assert is_mutating(op), op
    for op in ("GetFindings", "DescribeDBClusters", "ListTagsForResource", "ReceiveMessage",
               "BatchGetSecretValue", "GetCallerIdentity", "Unknown", "", None, "Tagging", "Settings"):
        assert not is_mutating(op), op
    control("DELETE", "/_emu/calls")
    make_neptune_cluster("mutating", instances=1)
    neptune = client("neptune")
    neptune.describe_db_clusters(DBClusterIdentifier="mutating")
    neptune.reboot_db_instance(DBInstanceIdentifier="mutating-1")
    url = client("sqs").create_queue(QueueName="mutating-q")["QueueUrl"]
    client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=0)
    client("securityhub").get_findings(MaxResults=1)
    flags = {c["operation"]: c["mutating"] for c in control("GET", "/_emu/calls")}
    assert flags == {"CreateDBCluster": True, "CreateDBInstance": True, "DescribeDBClusters": False,
                     "RebootDBInstance": True, "CreateQueue": True, "ReceiveMessage": False,
                     "GetFindings": False}, flags
    ops = [c["operation"] for c in control("GET", "/_emu/calls?mutating=true&service=rds")]
    assert ops == ["CreateDBCluster", "CreateDBInstance", "RebootDBInstance"], ops
    ops = [c["operation"] for c in control("GET", "/_emu/calls?mutating=false")]
    assert ops == ["DescribeDBClusters", "ReceiveMessage", "GetFindings"], ops
    try:
        control("GET", "/_emu/calls?mutating=yes")
        raise AssertionError("accepted mutating=yes")
    except urllib.error.HTTPError as e:
        assert e.code == 400, e


@test
def sqs_redrive_to_dlq():
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName="redrive-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    src = sqs.create_queue(QueueName="redrive-src", Attributes={
        "VisibilityTimeout": "0",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    sqs.send_message(QueueUrl=src, MessageBody="poison")
    for _ in range(2):
        msgs = sqs.receive_message(QueueUrl=src, WaitTimeSeconds=0).get("Messages", [])
        assert len(msgs) == 1 and msgs[0]["Body"] == "poison", msgs
    assert sqs.receive_message(QueueUrl=src, WaitTimeSeconds=0).get("Messages", []) == []
    dead = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", [])
    assert len(dead) == 1 and dead[0]["Body"] == "poison", dead


@test
def reset_clears_everything():
    import_findings(make_finding("reset"))
    client("sqs").create_queue(QueueName="reset-q")
    control("POST", "/_emu/neptune/audit-logs", {"enabled": False})
    control("POST", "/_emu/neptune/timing", {"reboot_seconds": 5})
    control("POST", "/_emu/reset")
    assert control("GET", "/_emu/neptune/audit-logs")["enabled"] is True
    assert control("GET", "/_emu/neptune/timing") == {"reboot_seconds": 0.0, "modify_seconds": 0.0}
    assert client("securityhub").get_findings()["Findings"] == []
    assert client("sqs").list_queues().get("QueueUrls", []) == []
    # default parameter groups survive a reset
    client("neptune").describe_db_cluster_parameters(DBClusterParameterGroupName="default.neptune1.3")


# ---------------------------------------------------------------- runner


def start_emulator(tmp):
    ready = os.path.join(tmp, "ready.json")
    errlog = open(os.path.join(tmp, "hubemu.log"), "w")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "hubemu.py"), "--ready-file", ready,
                             "--exit-on-stdin-eof"], stdin=subprocess.PIPE, stderr=errlog)
    deadline = time.time() + 90
    while not os.path.exists(ready):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise SystemExit(f"hubemu did not start; see {errlog.name}:\n" + open(errlog.name).read())
        time.sleep(0.1)
    with open(ready) as fh:
        info = json.load(fh)
    assert set(info) == {"moto", "securityhub", "pid"} and info["pid"] == proc.pid, info
    for key in ("moto", "securityhub"):
        assert info[key].startswith("http://127.0.0.1:"), info
    URLS.update(info)
    return proc, ready


def main():
    only = set(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        proc, ready = start_emulator(tmp)
        passed = failed = 0
        try:
            for fn in TESTS:
                if only and fn.__name__ not in only:
                    continue
                try:
                    fn()
                    passed += 1
                    print(f"ok   {fn.__name__}")
                except Exception:
                    failed += 1
                    print(f"FAIL {fn.__name__}")
                    traceback.print_exc(file=sys.stdout)
                finally:
                    try:
                        control("DELETE", "/_emu/faults")
                    except Exception:
                        pass
            # closing stdin must stop the emulator (harness-death protection)
            proc.stdin.close()
            try:
                proc.wait(timeout=15)
                assert proc.returncode == 0, proc.returncode
                assert not os.path.exists(ready), "ready file left behind"
                passed += 1
                print("ok   exits_on_stdin_eof")
            except Exception:
                failed += 1
                print("FAIL exits_on_stdin_eof")
                traceback.print_exc(file=sys.stdout)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
