#!/usr/bin/env python3
"""Self-test for ticketfakes.py (standard library only, no venv needed).

Starts ticketfakes.py as a subprocess (as the Rust tests do) and drives the three
fakes with urllib.request:

    python3 tests/emulator/test_ticketfakes.py [-v] [TestClass[.test_name] ...]

Exits non-zero on any failure (unittest.main).
"""

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ticketfakes as tf  # noqa: E402  (credential constants)

URLS = {}
SERVER = {}  # "proc", "tmp": the fakes process shared by the tests

# Never through a proxy: the fakes are on loopback.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


CLOUD_AUTH = basic(tf.JIRA_CLOUD_EMAIL, tf.JIRA_CLOUD_API_TOKEN)
DC_AUTH = {"Authorization": f"Bearer {tf.JIRA_DC_PAT}"}
SN_AUTH = basic(tf.SERVICENOW_USER, tf.SERVICENOW_PASSWORD)
SN_OAUTH = {"Authorization": f"Bearer {tf.SERVICENOW_OAUTH_TOKEN}"}
SECRETS = (tf.JIRA_CLOUD_API_TOKEN, tf.JIRA_DC_PAT, tf.SERVICENOW_PASSWORD, tf.SERVICENOW_OAUTH_TOKEN)


# ---------------------------------------------------------------- process


def start_process(tmp):
    """Start ticketfakes.py; -> (process, ready file path, URLs from the ready file)."""
    ready = os.path.join(tmp, f"ready-{time.monotonic_ns()}.json")
    errlog = os.path.join(tmp, "ticketfakes.log")
    with open(errlog, "a") as fh:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "ticketfakes.py"), "--ready-file", ready,
                                 "--exit-on-stdin-eof"], stdin=subprocess.PIPE, stderr=fh)
    deadline = time.time() + 15
    while not os.path.exists(ready):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            with open(errlog) as fh:
                raise RuntimeError("ticketfakes did not start:\n" + fh.read())
        time.sleep(0.02)
    with open(ready) as fh:
        return proc, ready, json.load(fh)


def stop_process(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def setUpModule():
    SERVER["tmp"] = tempfile.TemporaryDirectory()
    SERVER["proc"], _, urls = start_process(SERVER["tmp"].name)
    URLS.update(urls)


def tearDownModule():
    stop_process(SERVER["proc"])
    SERVER["proc"].stdin.close()
    SERVER["tmp"].cleanup()


# ---------------------------------------------------------------- HTTP helpers


class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.body = json.loads(raw) if raw else None
        except ValueError:
            self.body = raw.decode(errors="replace")

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


def http(method, url, body=None, headers=None):
    """One request. ``body``: bytes, or JSON-encoded. Header values None are dropped."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    headers = {k: v for k, v in (headers or {}).items() if v is not None}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(req, timeout=10) as resp:
            return Response(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


def api(system, auth, method, path, body=None, headers=None):
    base = {"Content-Type": "application/json"}
    if system == "servicenow":
        base["Accept"] = "application/json"
    return http(method, URLS[system] + path, body, {**base, **(auth or {}), **(headers or {})})


def cloud(method, path, body=None, auth=CLOUD_AUTH, headers=None):
    return api("jira", auth, method, path, body, headers)


def dc(method, path, body=None, auth=DC_AUTH, headers=None):
    return api("jira-dc", auth, method, path, body, headers)


def sn(method, path, body=None, auth=SN_AUTH, headers=None):
    return api("servicenow", auth, method, path, body, headers)


def control(system, method, path, body=None):
    resp = http(method, URLS[system] + path, body, {"Content-Type": "application/json"})
    assert resp.status == 200, resp
    return resp.body


def adf(text):
    paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
    return {"type": "doc", "version": 1, "content": [paragraph]}


def issue_fields(summary="Neptune.2: audit logs off", description=None, labels=("sh-n2-0a1b2c",), **extra):
    fields = {"project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": summary,
              "labels": list(labels), **extra}
    if description is not None:
        fields["description"] = description
    return {"fields": fields}


def create_cloud(**kw):
    resp = cloud("POST", "/rest/api/3/issue", issue_fields(description=adf("details"), **kw))
    assert resp.status == 201, resp
    return resp.body


def search_jql(body, auth=CLOUD_AUTH):
    return cloud("POST", "/rest/api/3/search/jql", body, auth=auth)


def create_incident(**fields):
    body = {"short_description": "Neptune.2: audit logs off", "correlation_id": "sh-n2-0a1b2c", **fields}
    resp = sn("POST", "/api/now/table/incident", body)
    assert resp.status == 201, resp
    return resp.body["result"]


class FakesTestCase(unittest.TestCase):
    def setUp(self):
        for system in URLS:
            self.assertEqual(control(system, "POST", "/_fake/reset"), {})

    def assertError(self, resp, status, field=None, message=None):
        """Jira: status and errors[field] (or an errorMessages entry) containing message."""
        self.assertEqual(resp.status, status, resp)
        if field is not None:
            self.assertIn(message or "", resp.body["errors"][field], resp)
        elif message is not None:
            self.assertTrue(any(message in m for m in resp.body["errorMessages"]), resp)


# ---------------------------------------------------------------- Jira Cloud


class JiraCloudTest(FakesTestCase):
    def test_create_get_and_state(self):
        created = create_cloud()
        self.assertEqual(created, {"id": "10001", "key": "SEC-1",
                                   "self": URLS["jira"] + "/rest/api/3/issue/10001"})
        self.assertEqual(create_cloud()["key"], "SEC-2")
        got = cloud("GET", "/rest/api/3/issue/SEC-1")
        self.assertEqual(got.status, 200, got)
        fields = got.body["fields"]
        self.assertEqual(fields["status"], {"name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}})
        self.assertEqual(fields["labels"], ["sh-n2-0a1b2c"])
        self.assertIsNone(fields["resolutiondate"])
        self.assertRegex(fields["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
        self.assertEqual(fields["description"], adf("details"))
        by_id = cloud("GET", "/rest/api/3/issue/10001?fields=summary,status")
        self.assertEqual(set(by_id.body["fields"]), {"summary", "status"})
        self.assertError(cloud("GET", "/rest/api/3/issue/SEC-99"), 404, message="Issue does not exist")

        state = control("jira", "GET", "/_fake/state")
        self.assertEqual([i["key"] for i in state["issues"]], ["SEC-1", "SEC-2"])
        self.assertEqual(state["requests"][0], {"method": "POST", "path": "/rest/api/3/issue", "status": 201,
                                                "authorization_ok": True})

    def test_description_must_be_adf(self):
        resp = cloud("POST", "/rest/api/3/issue", issue_fields(description="plain text"))
        self.assertError(resp, 400, "description", "Operation value must be an Atlassian Document")
        self.assertEqual(resp.body["errorMessages"], [])
        bad_docs = [
            {"type": "doc", "version": 2, "content": []},
            adf(""),  # text must be non-empty
            {"type": "doc", "version": 1, "content": [{"type": "text", "text": "inline at top level"}]},
            {"type": "doc", "version": 1, "content": [{"type": "heading", "attrs": {"level": 7}, "content": []}]},
            {"type": "doc", "version": 1, "content": [{"type": "bulletList", "content": [{"type": "paragraph"}]}]},
        ]
        for doc in bad_docs:
            self.assertError(cloud("POST", "/rest/api/3/issue", issue_fields(description=doc)),
                             400, "description", "INVALID_INPUT")
        rich = {"type": "doc", "version": 1, "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Finding"}]},
            {"type": "paragraph", "content": [
                {"type": "text", "text": "bold", "marks": [{"type": "strong"}]}, {"type": "hardBreak"},
                {"type": "text", "text": "link", "marks": [{"type": "link", "attrs": {"href": "https://x.test/"}}]}]},
            {"type": "bulletList", "content": [{"type": "listItem", "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "item", "marks": [{"type": "code"}]}]}]}]},
            {"type": "codeBlock", "attrs": {"language": "json"}, "content": [{"type": "text", "text": "{}"}]},
            {"type": "rule"}]}
        self.assertEqual(cloud("POST", "/rest/api/3/issue", issue_fields(description=rich)).status, 201)

    def test_field_validation(self):
        resp = cloud("POST", "/rest/api/3/issue", issue_fields(labels=["sh n2"]))
        self.assertError(resp, 400, "labels", "The label 'sh n2' contains spaces which is invalid.")
        self.assertError(cloud("POST", "/rest/api/3/issue", issue_fields(labels=["x" * 256])), 400, "labels")
        self.assertError(cloud("POST", "/rest/api/3/issue", issue_fields(summary="a\nb")), 400, "summary",
                         "newline")
        self.assertError(cloud("POST", "/rest/api/3/issue", issue_fields(summary="x" * 256)), 400, "summary",
                         "less than 255")
        self.assertError(cloud("POST", "/rest/api/3/issue", issue_fields(priority={"name": "Urgent"})),
                         400, "priority")
        resp = cloud("POST", "/rest/api/3/issue", issue_fields(customfield_10050="x", components=[]))
        self.assertError(resp, 400, "customfield_10050", "cannot be set. It is not on the appropriate screen")
        self.assertIn("components", resp.body["errors"])
        resp = cloud("POST", "/rest/api/3/issue", {"fields": {"project": {"key": "OPS"},
                                                              "issuetype": {"name": "Story"}}})
        self.assertEqual(set(resp.body["errors"]), {"project", "issuetype", "summary"}, resp)
        self.assertEqual(cloud("POST", "/rest/api/3/issue", issue_fields(priority={"name": "High"})).status, 201)
        self.assertEqual(control("jira", "GET", "/_fake/state")["issues"][0]["fields"]["priority"]["name"], "High")

    def test_removed_search_is_410(self):
        for method, path in (("GET", "/rest/api/3/search?jql=project%3DSEC"), ("POST", "/rest/api/3/search"),
                             ("POST", "/rest/api/2/search"), ("GET", "/rest/api/latest/search")):
            resp = cloud(method, path, {"jql": "project = SEC"} if method == "POST" else None)
            self.assertError(resp, 410, message="Please migrate to the /rest/api/3/search/jql API")

    def test_v2_issue_paths_are_404(self):
        self.assertEqual(cloud("POST", "/rest/api/2/issue", issue_fields(description="x")).status, 404)
        create_cloud()
        self.assertEqual(cloud("GET", "/rest/api/2/issue/SEC-1").status, 404)
        self.assertEqual(cloud("GET", "/rest/api/3/nothing-here").status, 404)

    def test_search_jql_rejects_unknown_body_keys(self):
        for key, value in (("startAt", 0), ("validateQuery", "strict")):
            resp = search_jql({"jql": "project = SEC", key: value})
            self.assertError(resp, 400, message=key)
        self.assertEqual(search_jql({"jql": "project = SEC", "maxResults": 10, "fields": ["key"],
                                     "expand": "names", "fieldsByKeys": False, "properties": []}).status, 200)

    def test_unbounded_and_unparseable_jql(self):
        for jql in ("", "statusCategory != Done", "ORDER BY created DESC"):
            self.assertError(search_jql({"jql": jql}), 400, message="Unbounded JQL queries are not allowed here.")
        self.assertError(search_jql({}), 400, message="Unbounded JQL")
        resp = search_jql({"jql": "project = SEC OR labels = x"})
        self.assertError(resp, 400, message="'project = SEC OR labels = x'")
        self.assertError(search_jql({"jql": "project = SEC AND summary ~ \"audit\""}), 400,
                         message="'summary ~ \"audit\"'")
        self.assertError(search_jql({"jql": "project = OPS"}), 400,
                         message="The value 'OPS' does not exist for the field 'project'.")
        self.assertError(search_jql({"jql": 'project = SEC AND status = "Closed"'}), 400, message="'Closed'")
        self.assertError(search_jql({"jql": "project = SEC ORDER BY priority"}), 400, message="ORDER BY")

    def test_default_fields_are_id_only(self):
        created = create_cloud()
        resp = search_jql({"jql": 'project = SEC AND labels = "sh-n2-0a1b2c"'})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, {"issues": [{"id": created["id"]}], "isLast": True})
        resp = cloud("GET", "/rest/api/3/search/jql?jql=labels%20%3D%20sh-n2-0a1b2c&fields=key,summary,status")
        hit = resp.body["issues"][0]
        self.assertEqual((hit["key"], set(hit["fields"])), ("SEC-1", {"summary", "status"}), resp)
        self.assertEqual(search_jql({"jql": "labels = other"}).body["issues"], [])

    def test_pagination_with_next_page_token(self):
        keys = [create_cloud(summary=f"issue {n}")["key"] for n in range(5)]
        create_cloud(labels=["other"])
        seen, token, pages = [], None, 0
        while True:
            body = {"jql": "project = SEC AND labels in (sh-n2-0a1b2c, \"nothing\") ORDER BY created DESC",
                    "maxResults": 2, "fields": ["key"]}
            if token:
                body["nextPageToken"] = token
            resp = search_jql(body)
            self.assertEqual(resp.status, 200, resp)
            pages += 1
            seen += [hit["key"] for hit in resp.body["issues"]]
            self.assertEqual(resp.body["isLast"], "nextPageToken" not in resp.body)
            if resp.body["isLast"]:
                break
            token = resp.body["nextPageToken"]
        self.assertEqual(pages, 3)
        self.assertEqual(seen, list(reversed(keys)))
        self.assertError(search_jql({"jql": "project = SEC", "nextPageToken": "bogus"}), 400)

    def test_search_lag_and_reconcile_issues(self):
        control("jira", "POST", "/_fake/faults", {"search_lag_seconds": 1})
        created = create_cloud()
        query = {"jql": "project = SEC AND labels = sh-n2-0a1b2c", "fields": ["key"]}
        self.assertEqual(search_jql(query).body["issues"], [])
        self.assertEqual(cloud("GET", f"/rest/api/3/issue/{created['key']}").status, 200)
        found = search_jql({**query, "reconcileIssues": [int(created["id"])]}).body["issues"]
        self.assertEqual([hit["key"] for hit in found], [created["key"]])
        self.assertError(search_jql({**query, "reconcileIssues": list(range(51))}), 400)
        time.sleep(1.05)
        self.assertEqual(len(search_jql(query).body["issues"]), 1)

    def test_transitions_follow_status(self):
        key = create_cloud()["key"]
        path = f"/rest/api/3/issue/{key}/transitions"

        def available():
            resp = cloud("GET", path)
            self.assertEqual(resp.status, 200, resp)
            return {t["id"]: (t["name"], t["to"]["statusCategory"]["key"]) for t in resp.body["transitions"]}

        self.assertEqual(available(), {"21": ("In Progress", "indeterminate"), "31": ("Done", "done")})
        self.assertError(cloud("POST", path, {"transition": {"id": "11"}}), 400,
                         message="Transition id '11' is not valid for this issue.")
        self.assertEqual(cloud("POST", path, {"transition": {"id": "31"}}).status, 204)
        fields = cloud("GET", f"/rest/api/3/issue/{key}").body["fields"]
        self.assertEqual((fields["status"]["name"], fields["resolution"]), ("Done", {"name": "Done"}))
        self.assertIsNotNone(fields["resolutiondate"])
        self.assertEqual(available(), {"11": ("To Do", "new")})
        self.assertEqual(search_jql({"jql": "project = SEC AND statusCategory != Done"}).body["issues"], [])
        self.assertError(cloud("POST", path, {"transition": {"id": "21"}}), 400, message="not valid")
        # reopen: Done -> To Do clears the resolution
        self.assertEqual(cloud("POST", path, {"transition": {"id": "11"}}).status, 204)
        fields = cloud("GET", f"/rest/api/3/issue/{key}").body["fields"]
        self.assertEqual((fields["status"]["name"], fields["resolution"], fields["resolutiondate"]),
                         ("To Do", None, None))
        self.assertEqual(len(search_jql({"jql": 'project = SEC AND status = "to do"'}).body["issues"]), 1)
        history = control("jira", "GET", "/_fake/state")["issues"][0]["history"]
        self.assertEqual([(h["from"], h["to"], h["transition"]["id"]) for h in history],
                         [("To Do", "Done", "31"), ("Done", "To Do", "11")])

    def test_comments(self):
        key = create_cloud()["key"]
        resp = cloud("POST", f"/rest/api/3/issue/{key}/comment", {"body": adf("still failing")})
        self.assertEqual(resp.status, 201, resp)
        self.assertEqual(resp.body["body"], adf("still failing"))
        self.assertError(cloud("POST", f"/rest/api/3/issue/{key}/comment", {"body": "plain"}), 400, "comment",
                         "Operation value must be an Atlassian Document")
        self.assertEqual(cloud("POST", "/rest/api/3/issue/SEC-99/comment", {"body": adf("x")}).status, 404)
        resp = cloud("POST", f"/rest/api/3/issue/{key}/transitions",
                     {"transition": {"id": "31"}, "update": {"comment": [{"add": {"body": adf("fixed")}}]}})
        self.assertEqual(resp.status, 204, resp)
        resp = cloud("POST", f"/rest/api/3/issue/{key}/transitions",
                     {"transition": {"id": "11"}, "update": {"comment": [{"add": {"body": "reopened"}}]}})
        self.assertError(resp, 400, "comment", "Atlassian Document")
        comments = control("jira", "GET", "/_fake/state")["issues"][0]["comments"]
        self.assertEqual([c["body"] for c in comments], [adf("still failing"), adf("fixed")])
        self.assertTrue(all(c["created"] for c in comments))

    def test_anonymous_and_bad_credentials(self):
        key = create_cloud()["key"]
        resp = search_jql({"jql": "project = SEC"}, auth=None)
        self.assertEqual((resp.status, resp.body), (200, {"issues": [], "isLast": True}))
        self.assertEqual(cloud("GET", f"/rest/api/3/issue/{key}", auth=None).status, 404)
        self.assertEqual(cloud("POST", "/rest/api/3/issue", issue_fields(description=adf("x")), auth=None).status,
                         401)
        self.assertEqual(cloud("POST", f"/rest/api/3/issue/{key}/comment", {"body": adf("x")}, auth=None).status,
                         401)
        for auth in (basic(tf.JIRA_CLOUD_EMAIL, "wrong-token"), DC_AUTH):
            self.assertError(search_jql({"jql": "project = SEC"}, auth=auth), 401,
                             message="Client must be authenticated to access this resource.")
        state = control("jira", "GET", "/_fake/state")
        self.assertEqual([r["authorization_ok"] for r in state["requests"]],
                         [True, False, False, False, False, False, False])
        self.assertFalse(any(secret in json.dumps(state) for secret in SECRETS))
        self.assertNotIn("Basic", json.dumps(state))

    def test_rate_limit(self):
        control("jira", "POST", "/_fake/faults", {"rate_limit": 2, "retry_after": 3})
        for _ in range(2):
            resp = cloud("POST", "/rest/api/3/issue", issue_fields(description=adf("x")))
            self.assertEqual(resp.status, 429, resp)
            self.assertEqual(resp.headers["Retry-After"], "3")
            self.assertEqual(resp.body, {"errorMessages": ["Rate limit exceeded."], "errors": {}})
        self.assertEqual(control("jira", "GET", "/_fake/state")["issues"], [])
        self.assertEqual(create_cloud()["key"], "SEC-1")
        control("jira", "POST", "/_fake/faults", {"unavailable": 1})
        resp = search_jql({"jql": "project = SEC"})
        self.assertEqual((resp.status, resp.headers["Retry-After"]), (503, "3"))
        self.assertEqual(search_jql({"jql": "project = SEC"}).status, 200)
        self.assertEqual([r["status"] for r in control("jira", "GET", "/_fake/state")["requests"]],
                         [429, 429, 201, 503, 200])

    def test_fail_after_write(self):
        control("jira", "POST", "/_fake/faults", {"fail_after_write": 1})
        resp = cloud("POST", "/rest/api/3/issue", issue_fields(description=adf("x")))
        self.assertEqual(resp.status, 502, resp)
        self.assertIsInstance(resp.body, str)  # a gateway's HTML page, not Jira's JSON
        self.assertEqual(cloud("GET", "/rest/api/3/issue/SEC-1").status, 200)
        self.assertEqual(len(control("jira", "GET", "/_fake/state")["issues"]), 1)
        self.assertEqual(create_cloud()["key"], "SEC-2")

    def test_age(self):
        key = create_cloud()["key"]
        cloud("POST", f"/rest/api/3/issue/{key}/transitions", {"transition": {"id": "31"}})
        before = cloud("GET", f"/rest/api/3/issue/{key}").body["fields"]
        control("jira", "POST", "/_fake/age", {"key": key, "days": 40})
        after = cloud("GET", f"/rest/api/3/issue/{key}").body["fields"]

        def days_between(a, b):
            fmt = "%Y-%m-%dT%H:%M:%S.%f%z"
            return (time.mktime(time.strptime(a, fmt)) - time.mktime(time.strptime(b, fmt))) / 86400

        self.assertAlmostEqual(days_between(before["resolutiondate"], after["resolutiondate"]), 40, places=3)
        self.assertAlmostEqual(days_between(before["updated"], after["updated"]), 40, places=3)
        self.assertEqual(before["created"], after["created"])


# ---------------------------------------------------------------- Jira Data Center


class JiraDcTest(FakesTestCase):
    def test_description_must_be_string(self):
        resp = dc("POST", "/rest/api/2/issue", issue_fields(description=adf("x")))
        self.assertError(resp, 400, "description", "Operation value must be a string")
        resp = dc("POST", "/rest/api/2/issue", issue_fields(description="h2. Finding\n* item"))
        self.assertEqual(resp.status, 201, resp)
        self.assertEqual(resp.body["self"], URLS["jira-dc"] + "/rest/api/2/issue/10001")
        self.assertEqual(dc("GET", "/rest/api/latest/issue/SEC-1").body["fields"]["description"],
                         "h2. Finding\n* item")
        self.assertError(dc("POST", "/rest/api/2/issue/SEC-1/comment", {"body": adf("x")}), 400, "comment",
                         "Operation value must be a string")
        self.assertEqual(dc("POST", "/rest/api/2/issue/SEC-1/comment", {"body": "still failing"}).status, 201)
        self.assertEqual(dc("POST", "/rest/api/2/issue/SEC-1/transitions", {"transition": {"id": "31"}}).status, 204)

    def test_v2_search(self):
        for n in range(3):
            self.assertEqual(dc("POST", "/rest/api/2/issue", issue_fields(summary=f"s{n}")).status, 201)
        resp = dc("POST", "/rest/api/2/search", {"jql": "project = SEC AND labels = sh-n2-0a1b2c",
                                                 "startAt": 1, "maxResults": 1, "validateQuery": "strict"})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual((resp.body["total"], resp.body["startAt"], resp.body["maxResults"]), (3, 1, 1))
        hit = resp.body["issues"][0]
        self.assertEqual(hit["key"], "SEC-2")
        self.assertLessEqual({"summary", "status", "labels", "resolutiondate", "created", "updated"},
                             set(hit["fields"]))
        resp = dc("GET", "/rest/api/2/search?jql=statusCategory%20!%3D%20Done&fields=summary")
        self.assertEqual((resp.body["total"], set(resp.body["issues"][0]["fields"])), (3, {"summary"}), resp)
        self.assertError(dc("POST", "/rest/api/2/search", {"jql": "project = SEC", "reconcileIssues": [10001]}),
                         400, message="reconcileIssues")
        self.assertError(dc("POST", "/rest/api/2/search", {"jql": "labels = x OR labels = y"}), 400,
                         message="'labels = x OR labels = y'")

    def test_search_lag(self):
        control("jira-dc", "POST", "/_fake/faults", {"search_lag_seconds": 1})
        dc("POST", "/rest/api/2/issue", issue_fields())
        self.assertEqual(dc("POST", "/rest/api/2/search", {"jql": "project = SEC"}).body["total"], 0)
        self.assertEqual(dc("GET", "/rest/api/2/issue/SEC-1").status, 200)
        time.sleep(1.05)
        self.assertEqual(dc("POST", "/rest/api/2/search", {"jql": "project = SEC"}).body["total"], 1)

    def test_paths_and_auth(self):
        self.assertEqual(dc("POST", "/rest/api/3/issue", issue_fields(description=adf("x"))).status, 404)
        self.assertEqual(dc("POST", "/rest/api/3/search/jql", {"jql": "project = SEC"}).status, 404)
        for auth in (CLOUD_AUTH, {"Authorization": "Bearer wrong"}):
            self.assertError(dc("POST", "/rest/api/2/search", {"jql": "project = SEC"}, auth=auth), 401)
        dc("POST", "/rest/api/2/issue", issue_fields())
        resp = dc("POST", "/rest/api/2/search", {"jql": "project = SEC"}, auth=None)
        self.assertEqual((resp.status, resp.body["total"], resp.body["issues"]), (200, 0, []))
        self.assertEqual(dc("POST", "/rest/api/2/issue", issue_fields(), auth=None).status, 401)


# ---------------------------------------------------------------- ServiceNow


class ServiceNowTest(FakesTestCase):
    def test_create_and_get(self):
        resp = sn("POST", "/api/now/table/incident",
                  {"short_description": "Neptune.2", "impact": "2", "urgency": "2", "work_notes": "opened",
                   "correlation_id": "sh-n2-0a1b2c", "u_not_a_field": "ignored"})
        self.assertEqual(resp.status, 201, resp)
        inc = resp.body["result"]
        self.assertRegex(inc["sys_id"], r"^[0-9a-f]{32}$")
        self.assertEqual((inc["number"], inc["state"], inc["active"], inc["priority"], inc["resolved_at"]),
                         ("INC0010001", "1", "true", "3", ""))
        self.assertEqual(inc["work_notes"], "")
        self.assertNotIn("u_not_a_field", inc)
        self.assertTrue(all(isinstance(v, str) for v in inc.values()))
        self.assertRegex(inc["sys_created_on"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
        self.assertEqual(resp.headers["Location"], f"{URLS['servicenow']}/api/now/table/incident/{inc['sys_id']}")
        self.assertEqual(create_incident()["number"], "INC0010002")
        got = sn("GET", f"/api/now/v2/table/incident/{inc['sys_id']}?sysparm_fields=number,state")
        self.assertEqual(got.body, {"result": {"number": "INC0010001", "state": "1"}})
        resp = sn("GET", "/api/now/table/incident/" + "0" * 32)
        self.assertEqual(resp.status, 404)
        self.assertEqual(resp.body["error"]["message"], "No Record found")
        state = control("servicenow", "GET", "/_fake/state")["incidents"][0]
        self.assertEqual([n["body"] for n in state["work_notes"]], ["opened"])

    def test_accept_and_content_type(self):
        for accept in (None, "text/html"):
            resp = sn("GET", "/api/now/table/incident", headers={"Accept": accept})
            self.assertEqual(resp.status, 406, resp)
            self.assertEqual(resp.body["status"], "failure")
        resp = sn("POST", "/api/now/table/incident", b"short_description=x",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(resp.status, 415, resp)
        self.assertEqual(sn("GET", "/api/now/table/incident", headers={"Accept": "*/*"}).status, 200)

    def test_auth(self):
        for auth in (None, basic(tf.SERVICENOW_USER, "wrong"), {"Authorization": "Bearer wrong"}):
            resp = sn("GET", "/api/now/table/incident", auth=auth)
            self.assertEqual(resp.status, 401, resp)
            self.assertEqual(resp.body, {"error": {"message": "User Not Authenticated",
                                                   "detail": "Required to provide Auth information"},
                                         "status": "failure"})
        self.assertEqual(sn("GET", "/api/now/table/incident", auth=SN_OAUTH).status, 200)
        state = control("servicenow", "GET", "/_fake/state")
        self.assertEqual([r["authorization_ok"] for r in state["requests"]], [False, False, False, True])
        self.assertFalse(any(secret in json.dumps(state) for secret in SECRETS))

    def test_value_validation(self):
        for body in ({"short_description": "x", "impact": 2}, {"short_description": {"a": 1}},
                     {"urgency": "4"}, {"correlation_id": "c" * 101}):
            resp = sn("POST", "/api/now/table/incident", body)
            self.assertEqual(resp.status, 400, resp)
            self.assertIn("Invalid value for field", resp.body["error"]["message"])
        self.assertEqual(control("servicenow", "GET", "/_fake/state")["incidents"], [])
        resp = sn("POST", "/api/now/table/problem", {"short_description": "x"})
        self.assertEqual((resp.status, resp.body["error"]["message"]), (400, "Invalid table problem"))

    def test_resolve_reopen(self):
        sys_id = create_incident()["sys_id"]
        path = f"/api/now/table/incident/{sys_id}"
        resp = sn("PATCH", path, {"state": "6"})
        self.assertEqual(resp.status, 403, resp)
        self.assertEqual(resp.body, {"error": {"message": "Operation Failed", "detail": "Data Policy Exception: \n "
                                               "The following fields are mandatory: Resolution code, Resolution notes"},
                                     "status": "failure"})
        self.assertEqual(sn("PATCH", path, {"state": "6", "close_code": "Solution provided"}).status, 403)
        self.assertEqual(sn("PATCH", path, {"state": "6", "close_code": "Fixed", "close_notes": "done"}).status, 403)
        resp = sn("PATCH", path, {"state": "6", "close_code": "Solution provided",
                                  "close_notes": "Audit logs enabled", "work_notes": "resolved by hubtriage"})
        self.assertEqual(resp.status, 200, resp)
        inc = resp.body["result"]
        self.assertEqual((inc["state"], inc["active"]), ("6", "true"))
        self.assertNotEqual(inc["resolved_at"], "")
        resp = sn("PUT", path, {"state": "2", "work_notes": "regressed"})
        inc = resp.body["result"]
        self.assertEqual((resp.status, inc["state"], inc["resolved_at"], inc["close_code"]),
                         (200, "2", "", "Solution provided"))
        state = control("servicenow", "GET", "/_fake/state")["incidents"][0]
        self.assertEqual([(h["from"], h["to"]) for h in state["history"]], [("1", "6"), ("6", "2")])
        self.assertEqual(len(state["work_notes"]), 2)

    def test_closed_cannot_reopen(self):
        inc = create_incident()
        path = f"/api/now/table/incident/{inc['sys_id']}"
        closed = control("servicenow", "POST", "/_fake/close", {"number": inc["number"]})
        self.assertEqual((closed["state"], closed["active"]), ("7", "false"))
        resp = sn("PATCH", path, {"state": "2"})
        self.assertEqual(resp.status, 403, resp)
        self.assertEqual(resp.body["error"]["detail"], "Closed incidents cannot be reopened")
        resp = sn("PATCH", path, {"work_notes": "finding regressed; opening a new incident"})
        self.assertEqual((resp.status, resp.body["result"]["state"]), (200, "7"))

    def test_query(self):
        first = create_incident(correlation_id="sh-n2-aaaa")
        second = create_incident(correlation_id="sh-n2-bbbb", state="2")
        path = "/api/now/table/incident?sysparm_query="
        resp = sn("GET", path + "correlation_id=sh-n2-aaaa^active=true&sysparm_limit=1")
        self.assertEqual(([r["sys_id"] for r in resp.body["result"]], resp.headers["X-Total-Count"]),
                         ([first["sys_id"]], "1"))
        # the documented trap: a clause on an unknown field is ignored, not an error
        resp = sn("GET", path + "u_correlation=sh-n2-aaaa^active=true")
        self.assertEqual((resp.status, len(resp.body["result"])), (200, 2))
        resp = sn("GET", path + "correlation_id=sh-n2-cccc")
        self.assertEqual((resp.status, resp.body, resp.headers["X-Total-Count"]), (200, {"result": []}, "0"))
        resp = sn("GET", path + "stateIN1,2^ORDERBYDESCnumber&sysparm_fields=number&sysparm_limit=1&sysparm_offset=1")
        self.assertEqual((resp.body["result"], resp.headers["X-Total-Count"]), ([{"number": first["number"]}], "2"))
        resp = sn("GET", path + "state!=1")
        self.assertEqual([r["number"] for r in resp.body["result"]], [second["number"]])

    def test_no_response_body(self):
        resp = sn("POST", "/api/now/table/incident", {"short_description": "x"},
                  headers={"X-no-response-body": "true"})
        self.assertEqual((resp.status, resp.raw), (201, b""))
        self.assertIn("/api/now/table/incident/", resp.headers["Location"])

    def test_faults(self):
        control("servicenow", "POST", "/_fake/faults", {"rate_limit": 1, "unavailable": 1})
        resp = sn("GET", "/api/now/table/incident")
        self.assertEqual((resp.status, resp.headers["Retry-After"]), (429, "1"))
        self.assertEqual(resp.body["error"], {"message": "Rate limit exceeded",
                                              "detail": "Rate limit of 10 requests per hour for Table API exceeded"})
        self.assertEqual(sn("GET", "/api/now/table/incident").status, 503)
        control("servicenow", "POST", "/_fake/faults", {"fail_after_write": 1})
        resp = sn("POST", "/api/now/table/incident", {"short_description": "x", "correlation_id": "sh-n2-dddd"})
        self.assertEqual(resp.status, 502, resp)
        found = sn("GET", "/api/now/table/incident?sysparm_query=correlation_id=sh-n2-dddd").body["result"]
        self.assertEqual([r["number"] for r in found], ["INC0010001"])
        resp = http("POST", URLS["servicenow"] + "/_fake/faults", {"search_lag_seconds": 1})
        self.assertEqual(resp.status, 400, resp)

    def test_age(self):
        inc = create_incident()
        sn("PATCH", f"/api/now/table/incident/{inc['sys_id']}",
           {"state": "6", "close_code": "Solution provided", "close_notes": "fixed"})
        before = control("servicenow", "GET", "/_fake/state")["incidents"][0]
        after = control("servicenow", "POST", "/_fake/age", {"number": inc["number"], "days": 40})

        def days_between(a, b):
            fmt = "%Y-%m-%d %H:%M:%S"
            return (time.mktime(time.strptime(a, fmt)) - time.mktime(time.strptime(b, fmt))) / 86400

        self.assertEqual(days_between(before["resolved_at"], after["resolved_at"]), 40)
        self.assertEqual(days_between(before["sys_updated_on"], after["sys_updated_on"]), 40)


# ---------------------------------------------------------------- control API and process


class ControlTest(FakesTestCase):
    def test_reset_clears_everything(self):
        create_cloud()
        control("jira", "POST", "/_fake/faults", {"rate_limit": 5})
        control("jira", "POST", "/_fake/reset")
        state = control("jira", "GET", "/_fake/state")
        self.assertEqual(state, {"issues": [], "requests": []})
        self.assertEqual(create_cloud()["key"], "SEC-1")  # no fault left, counters restart

    def test_faults_are_merged_and_checked(self):
        control("jira", "POST", "/_fake/faults", {"rate_limit": 1})
        faults = control("jira", "POST", "/_fake/faults", {"retry_after": 7})
        self.assertEqual((faults["rate_limit"], faults["retry_after"]), (1, 7))
        for body in ({"rate_limt": 1}, {"rate_limit": -1}, {"search_lag_seconds": "1"}):
            self.assertEqual(http("POST", URLS["jira"] + "/_fake/faults", body).status, 400, body)
        self.assertEqual(http("POST", URLS["jira"] + "/_fake/age", {"key": "SEC-9", "days": 1}).status, 404)
        self.assertEqual(http("GET", URLS["jira"] + "/_fake/nothing").status, 404)


class ProcessTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def start(self):
        proc, ready, urls = start_process(self.tmp.name)
        self.addCleanup(stop_process, proc)
        self.addCleanup(proc.stdin.close)
        self.assertEqual(set(urls), {"jira", "jira-dc", "servicenow"})
        for url in urls.values():
            self.assertRegex(url, r"^http://127\.0\.0\.1:\d+$")
        return proc, ready

    def test_exits_on_stdin_eof(self):
        proc, ready = self.start()
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=10), 0)
        self.assertFalse(os.path.exists(ready), "ready file left behind")

    def test_exits_on_sigterm(self):
        proc, ready = self.start()
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=10), 0)
        self.assertFalse(os.path.exists(ready), "ready file left behind")


if __name__ == "__main__":
    unittest.main()
