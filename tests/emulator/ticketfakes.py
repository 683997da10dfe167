#!/usr/bin/env python3
"""ticketfakes: loopback fakes of the ticketing APIs for hubtriage tests.

One process (standard library only), three HTTP servers on 127.0.0.1 ephemeral ports:

* ``jira``: Jira Cloud, REST v3 (ADF descriptions and comments, the
  ``/rest/api/3/search/jql`` search with ``nextPageToken`` paging);
* ``jira-dc``: Jira Data Center, REST v2 (wiki-markup strings, ``/rest/api/2/search``
  with ``startAt``/``total`` paging);
* ``servicenow``: the ServiceNow Table API, table ``incident`` only.

They reject what the real servers reject, as described in
shared/research/tickets-apis.md, so a client that passes against them has met the
real APIs' rules. Nothing is ever sent off-host.

Usage:
    python3 tests/emulator/ticketfakes.py --ready-file PATH [--exit-on-stdin-eof] [--verbose]

Once all three servers listen, PATH is written atomically (temporary file, then rename):
    {"jira": "http://127.0.0.1:P1", "jira-dc": "http://127.0.0.1:P2",
     "servicenow": "http://127.0.0.1:P3"}
and removed again on a clean exit. The process exits on SIGTERM/SIGINT and, with
``--exit-on-stdin-eof``, when its stdin reaches EOF. ``--verbose`` logs one stderr
line per request.

Credentials (the module constants below):
    Jira Cloud   Basic  hubtriage-bot@example.com : jira-cloud-token-5f2a9c (email : API token)
    Jira DC      Authorization: Bearer jira-dc-pat-77c1e0 (personal access token; Basic is refused)
    ServiceNow   Basic  hubtriage.bot : sn-pass-31d8b4, or Authorization: Bearer sn-oauth-token-a90e
Jira without an Authorization header is anonymous: searches answer 200 with no issues,
reading an issue 404, writes 401. Wrong credentials are 401 everywhere.

Control API (every server, no auth, not logged, not subject to faults):
    POST /_fake/reset   clear records, id counters, faults and the request log -> {}
    POST /_fake/faults  merge {"rate_limit": N, "retry_after": S, "unavailable": N,
                        "fail_after_write": N, "search_lag_seconds": F} into the faults
                        (Jira only for search_lag_seconds) -> the current faults
        rate_limit        the next N requests answer 429, Retry-After: S (default 1)
        unavailable       then the next N requests answer 503, Retry-After: S
        fail_after_write  the next N successful creates store the record, then answer
                          502 with a gateway's HTML page
        search_lag_seconds  Jira issues younger than F seconds are missing from JQL
                          searches (Cloud: unless their id is in reconcileIssues)
    GET  /_fake/state   {"issues"|"incidents": [...], "requests": [{"method", "path",
                        "status", "authorization_ok"}]}; records carry every field,
                        comments / work notes / journal entries and the state history.
                        No header values or credentials are kept.
    POST /_fake/age     {"key": "SEC-1", "days": 40} (Jira) or {"number": "INC0010001",
                        "days": 40} (ServiceNow): move the resolution date and the
                        updated time that many days into the past
    POST /_fake/close   ServiceNow only, {"number": "INC0010001"}: close the incident
                        (state 7, active false) as the instance's auto-close job does

Simplifications, where the fakes are narrower than the real servers:
* Jira Cloud serves the issue endpoints under /rest/api/3 only: /rest/api/2 and
  /rest/api/latest issue paths are 404 there (real Cloud also serves v2, but hubtriage
  must use v3); their search paths are 410 as on real Cloud.
* Jira: project SEC (id 10000) only; issue types Task and Bug; workflow To Do ->
  In Progress -> Done with fixed transition ids; no transition screens. Create accepts
  ``update`` only when empty. The JQL subset is an AND of ``project = X``,
  ``labels = X``, ``labels in (X, Y)``, ``status =|!= "Name"``, ``statusCategory =|!= X``
  and ``ORDER BY created [ASC|DESC]`` (default order: creation). Anything else is a 400
  naming the clause. Search lag hides new issues only (not later changes). Cloud's GET
  search/jql ignores unknown query parameters, as the real server does; the POST body
  is checked strictly. Jira Data Center accepts unbounded JQL, as the real DC does.
* ServiceNow: 406 for a missing/non-JSON Accept and 415 for a non-JSON Content-Type
  (the research notes say real instances may answer 400 instead). Values must be JSON
  strings and correlation_id at most 100 characters (real instances coerce or truncate;
  the fake is strict so the client sends what the instance stores). Reference fields
  (assignment_group, caller_id) come back as plain strings, not {"link","value"}.
  Encoded queries: ``f=v``, ``f!=v``, ``fINa,b``, ``ORDERBYf``, ``ORDERBYDESCf``; a clause
  naming an unknown field is silently ignored, as on real instances; ``^OR``/``^NQ`` and
  other operators on known fields are a 400 (the real instance supports them). DELETE is
  405.
"""

import argparse
import base64
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

JIRA_CLOUD_EMAIL = "hubtriage-bot@example.com"
JIRA_CLOUD_API_TOKEN = "jira-cloud-token-5f2a9c"
JIRA_DC_PAT = "jira-dc-pat-77c1e0"
SERVICENOW_USER = "hubtriage.bot"
SERVICENOW_PASSWORD = "sn-pass-31d8b4"
SERVICENOW_OAUTH_TOKEN = "sn-oauth-token-a90e"

JSON_TYPE = "application/json;charset=UTF-8"

VERBOSE = False


def log(msg):
    sys.stderr.write(f"ticketfakes: {msg}\n")
    sys.stderr.flush()


def vlog(msg):
    if VERBOSE:
        log(msg)


def jira_time(ts):
    """Jira's timestamp format: 2026-11-26T22:10:00.000+0000."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(ts))) + f".{int(ts * 1000) % 1000:03d}+0000"


SN_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def sn_time(ts):
    """ServiceNow's glide_date_time format (UTC): 2026-11-26 22:10:00."""
    return time.strftime(SN_TIME_FORMAT, time.gmtime(ts))


def split_csv(values):
    """Query parameter values (repeated and/or comma-separated) -> list, or None if absent."""
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------
# Requests, replies, authentication
# --------------------------------------------------------------------------


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path  # without query string and trailing slash
        self.query = query  # name -> [values]
        self.headers = headers
        self.body = body  # bytes

    def param(self, name):
        values = self.query.get(name)
        return values[-1] if values else None


class Reply:
    """A response. The body is encoded at once (under the fake's lock), so later
    changes to the records cannot race with sending it."""

    def __init__(self, status, body=None, headers=None, content_type=JSON_TYPE):
        self.status = status
        self.headers = dict(headers or {})
        self.content_type = content_type
        if body is None or isinstance(body, bytes):
            self.data = body
        else:
            self.data = json.dumps(body).encode()


class HttpError(Exception):
    def __init__(self, reply):
        super().__init__(reply.status)
        self.reply = reply


BAD_GATEWAY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def basic_credentials(header):
    """'Basic base64(user:password)' -> (user, password), else None."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return (user, password) if sep else None


def bearer_token(header):
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def is_json_type(content_type):
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def accepts_json(accept):
    return any(part.split(";")[0].strip().lower() in ("application/json", "application/*", "*/*")
               for part in (accept or "").split(","))


# --------------------------------------------------------------------------
# Fake: what the three systems share (control API, faults, request log)
# --------------------------------------------------------------------------


class Fake:
    """One fake system. ``handle`` runs every request under one lock, so the
    records never see concurrent changes."""

    name = None
    records_key = None  # "issues" | "incidents" in /_fake/state
    has_search_lag = True
    RATE_LIMITED = None  # error bodies of the system
    UNAVAILABLE = None

    def __init__(self):
        self.lock = threading.Lock()
        self.base_url = ""
        self.reset()

    # Subclasses provide: clear_records(), authenticate(header) -> "ok" | "anonymous" | "bad",
    # serve(req, auth) -> Reply, state_records() -> list, age(body) -> Reply.

    def reset(self):
        self.faults = {"rate_limit": 0, "retry_after": 1, "unavailable": 0, "fail_after_write": 0,
                       "search_lag_seconds": 0.0}
        self.requests = []
        self.clear_records()

    def handle(self, req):
        with self.lock:
            if req.path.startswith("/_fake/"):
                return self.control(req)
            auth = self.authenticate(req.headers.get("Authorization"))
            try:
                reply = self.injected_failure() or self.serve(req, auth)
            except HttpError as e:
                reply = e.reply
            except Exception:  # a bug in the fake: say so instead of dropping the connection
                log(f"{self.name}: internal error on {req.method} {req.path}:\n{traceback.format_exc()}")
                reply = Reply(500, {"error": "internal error in the fake; see its stderr"})
            self.requests.append({"method": req.method, "path": req.path, "status": reply.status,
                                  "authorization_ok": auth == "ok"})
            return reply

    # ---- faults

    def injected_failure(self):
        """A pending rate_limit (429) or unavailable (503) fault, consumed; else None."""
        for key, status, body in (("rate_limit", 429, self.RATE_LIMITED), ("unavailable", 503, self.UNAVAILABLE)):
            if self.faults[key] > 0:
                self.faults[key] -= 1
                return Reply(status, body, {"Retry-After": str(self.faults["retry_after"])})
        return None

    def gateway_failure(self):
        """For a create that has just stored its record: a 502 if fail_after_write is pending."""
        if self.faults["fail_after_write"] > 0:
            self.faults["fail_after_write"] -= 1
            return Reply(502, BAD_GATEWAY_PAGE, content_type="text/html")
        return None

    def set_faults(self, body):
        for key, value in body.items():
            if key not in self.faults:
                raise control_error(400, f"unknown fault {key!r}; known: {sorted(self.faults)}")
            if key == "search_lag_seconds":
                if not self.has_search_lag:
                    raise control_error(400, f"{self.name} has no search lag (queries read the database)")
                if not is_number(value) or value < 0:
                    raise control_error(400, "search_lag_seconds must be a number >= 0")
            elif not is_int(value) or value < 0:
                raise control_error(400, f"{key} must be an integer >= 0")
        self.faults.update(body)
        return Reply(200, self.faults)

    # ---- control API

    def control_routes(self):
        return {
            ("POST", "/_fake/reset"): self.control_reset,
            ("POST", "/_fake/faults"): self.set_faults,
            ("GET", "/_fake/state"): self.control_state,
            ("POST", "/_fake/age"): self.age,
        }

    def control_reset(self, body):
        self.reset()
        return Reply(200, {})

    def control_state(self, body):
        return Reply(200, {self.records_key: self.state_records(), "requests": self.requests})

    def control(self, req):
        route = self.control_routes().get((req.method, req.path))
        if route is None:
            return Reply(404, {"error": f"no control endpoint {req.method} {req.path}"})
        try:
            body = json.loads(req.body) if req.body.strip() else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return Reply(400, {"error": "the body must be a JSON object"})
        try:
            return route(body)
        except HttpError as e:
            return e.reply


def control_error(status, message):
    return HttpError(Reply(status, {"error": message}))


def age_days(body, id_key):
    """Validate an /_fake/age body -> (record id, seconds to move back)."""
    ident, days = body.get(id_key), body.get("days")
    if not isinstance(ident, str) or not is_number(days):
        raise control_error(400, f'the body must be {{"{id_key}": "...", "days": <number>}}')
    return ident, days * 86400.0


# --------------------------------------------------------------------------
# Atlassian Document Format (Jira Cloud descriptions and comments)
# --------------------------------------------------------------------------


ADF_NODE_KEYS = {"type", "content", "attrs", "marks", "text"}
ADF_MARKS = {"strong", "em", "code", "link"}


def valid_adf(doc):
    """True if ``doc`` is an ADF document built from the nodes the fake knows:
    paragraph, heading, bulletList/orderedList > listItem, codeBlock, rule; inline
    text (with strong/em/code/link marks) and hardBreak."""
    if not isinstance(doc, dict) or set(doc) - {"type", "version", "content"}:
        return False
    if doc.get("type") != "doc" or not is_int(doc.get("version")) or doc["version"] != 1:
        return False
    content = doc.get("content")
    return isinstance(content, list) and all(valid_block(node) for node in content)


def node_content(node, required):
    """The node's content list ([] if absent and not required), or None if malformed."""
    if not isinstance(node, dict) or set(node) - ADF_NODE_KEYS:
        return None
    if "content" not in node:
        return None if required else []
    content = node["content"]
    return content if isinstance(content, list) else None


def valid_block(node):
    if not isinstance(node, dict) or "text" in node or not isinstance(node.get("attrs", {}), dict):
        return False
    kind, attrs = node.get("type"), node.get("attrs", {})
    if kind in ("paragraph", "heading"):
        content = node_content(node, required=False)
        if kind == "heading" and not (is_int(attrs.get("level")) and 1 <= attrs["level"] <= 6):
            return False
        return content is not None and all(valid_inline(n) for n in content)
    if kind in ("bulletList", "orderedList"):
        items = node_content(node, required=True)
        return bool(items) and all(valid_list_item(n) for n in items)
    if kind == "codeBlock":
        content = node_content(node, required=False)
        if content is None or not isinstance(attrs.get("language", ""), str):
            return False
        return all(valid_inline(n) and n["type"] == "text" and "marks" not in n for n in content)
    if kind == "rule":
        return node_content(node, required=False) == []
    return False


def valid_list_item(node):
    content = node_content(node, required=True)
    if not content or node.get("type") != "listItem":
        return False
    return all(isinstance(n, dict) and n.get("type") in ("paragraph", "bulletList", "orderedList")
               and valid_block(n) for n in content)


def valid_inline(node):
    if not isinstance(node, dict) or set(node) - ADF_NODE_KEYS or "content" in node:
        return False
    if node.get("type") == "hardBreak":
        return set(node) <= {"type", "attrs"}
    if node.get("type") != "text":
        return False
    text, marks = node.get("text"), node.get("marks", [])
    if not isinstance(text, str) or not text or not isinstance(marks, list):
        return False
    kinds = []
    for mark in marks:
        if not isinstance(mark, dict) or set(mark) - {"type", "attrs"} or mark.get("type") not in ADF_MARKS:
            return False
        if mark["type"] == "link":
            href = mark.get("attrs", {}).get("href") if isinstance(mark.get("attrs"), dict) else None
            if not isinstance(href, str) or not href:
                return False
        kinds.append(mark["type"])
    # ADF: no mark twice; the code mark combines with link only.
    if len(set(kinds)) != len(kinds):
        return False
    return "code" not in kinds or set(kinds) <= {"code", "link"}


# --------------------------------------------------------------------------
# JQL subset (both Jira fakes)
# --------------------------------------------------------------------------


class JqlError(Exception):
    pass


JQL_TOKEN = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(!=|=|\(|\)|,)|([^\s"'=!(),]+))""")
JQL_RESERVED_CHARS = set("+.;?|*/%^$#@[]")
JQL_RESERVED_WORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
# JQL field (lower case) -> (canonical name, operators the fake understands)
JQL_FIELDS = {
    "project": ("project", ("=",)),
    "labels": ("labels", ("=", "in")),
    "status": ("status", ("=", "!=")),
    "statuscategory": ("statusCategory", ("=", "!=")),
}


class Token:
    def __init__(self, kind, value, start, end):
        self.kind = kind  # "str" (quoted), "word", or the punctuation itself: "=", "!=", "(", ")", ","
        self.value = value
        self.start = start
        self.end = end

    def is_word(self, word):
        return self.kind == "word" and self.value.lower() == word


def jql_tokens(text):
    tokens, pos, end = [], 0, len(text.rstrip())
    while pos < end:
        m = JQL_TOKEN.match(text, pos)
        if not m:
            at = len(text) - len(text[pos:].lstrip())
            raise JqlError(f"Error in the JQL Query: The character '{text[at]}' at position {at + 1} "
                           "is not expected here (unterminated string or stray character).")
        dq, sq, punct, word = m.groups()
        if dq is not None or sq is not None:
            group = 1 if dq is not None else 2
            value = re.sub(r"\\(.)", r"\1", m.group(group))
            tokens.append(Token("str", value, m.start(group) - 1, m.end(group) + 1))
        elif punct is not None:
            tokens.append(Token(punct, punct, m.start(3), m.end(3)))
        else:
            tokens.append(Token("word", word, m.start(4), m.end(4)))
        pos = m.end()
    return tokens


class Jql:
    """A parsed query: clauses [(field, op, [values])], ANDed, and an ORDER BY on created."""

    def __init__(self, text):
        tokens = jql_tokens(text)
        self.descending = False
        for i in range(len(tokens) - 1):
            if tokens[i].is_word("order") and tokens[i + 1].is_word("by"):
                self.descending = self._order(tokens[i + 2:], text[tokens[i].start:])
                tokens = tokens[:i]
                break
        self.clauses = []
        if tokens:
            groups, depth = [[]], 0
            for tok in tokens:
                depth += {"(": 1, ")": -1}.get(tok.kind, 0)
                if depth == 0 and tok.is_word("and"):
                    groups.append([])
                else:
                    groups[-1].append(tok)
            self.clauses = [self._clause(group, text) for group in groups]

    @property
    def bounded(self):
        return any(field in ("project", "labels") for field, _, _ in self.clauses)

    @staticmethod
    def _order(tokens, source):
        words = [t.value.lower() if t.kind == "word" else None for t in tokens]
        if words in (["created"], ["created", "asc"], ["created", "desc"]):
            return words[-1] == "desc"
        raise JqlError("Error in the JQL Query: the fake understands only ORDER BY created [ASC|DESC], "
                       f"not '{source}'.")

    @staticmethod
    def _clause(tokens, text):
        if not tokens:
            raise JqlError("Error in the JQL Query: Expecting a clause before or after 'AND'.")
        source = text[tokens[0].start:tokens[-1].end]

        def unsupported():
            return JqlError(f"Error in the JQL Query: the fake does not understand the clause '{source}' "
                            "(it knows project =, labels =, labels in (...), status =/!=, "
                            "statusCategory =/!=, joined by AND).")

        known = JQL_FIELDS.get(tokens[0].value.lower()) if tokens[0].kind == "word" else None
        if known is None:
            raise unsupported()
        field, operators = known
        if len(tokens) == 3 and tokens[1].kind in ("=", "!="):
            op, value_tokens = tokens[1].kind, [tokens[2]]
        elif (len(tokens) >= 5 and tokens[1].is_word("in") and tokens[2].kind == "(" and tokens[-1].kind == ")"
              and len(tokens) % 2 == 1 and all(t.kind == "," for t in tokens[4:-1:2])):
            op, value_tokens = "in", tokens[3:-1:2]
        else:
            raise unsupported()
        if op not in operators:
            raise unsupported()
        values = [Jql._value(tok, unsupported) for tok in value_tokens]
        if field == "status":
            values = [Jql._lookup(v, {s.lower(): s for s in JIRA_STATUSES}, field) for v in values]
        elif field == "statusCategory":
            values = [Jql._lookup(v, STATUS_CATEGORY_VALUES, field) for v in values]
        return field, op, values

    @staticmethod
    def _value(tok, unsupported):
        if tok.kind == "str":
            return tok.value
        if tok.kind != "word":
            raise unsupported()
        if tok.value.lower() in JQL_RESERVED_WORDS:
            raise JqlError(f"Error in the JQL Query: '{tok.value}' is a reserved JQL word. "
                           "You must surround it in quotation marks to use it in a query.")
        bad = [c for c in tok.value if c in JQL_RESERVED_CHARS]
        if bad:
            raise JqlError(f"Error in the JQL Query: The character '{bad[0]}' is a reserved JQL character. "
                           "You must enclose it in a string or use the escape '\\u"
                           f"{ord(bad[0]):04x}' instead.")
        return tok.value

    @staticmethod
    def _lookup(value, table, field):
        if value.lower() not in table:
            raise JqlError(f"The value '{value}' does not exist for the field '{field}'.")
        return table[value.lower()]

    def unknown_projects(self):
        return [v for field, _, values in self.clauses if field == "project"
                for v in values if v.upper() not in (JIRA_PROJECT["key"], JIRA_PROJECT["id"])]

    def matches(self, issue):
        for field, op, values in self.clauses:
            if field == "project":
                continue  # one project; unknown ones were refused before matching
            if field == "labels":
                ok = any(v in issue["labels"] for v in values)
            elif field == "status":
                ok = (issue["status"] == values[0]) == (op == "=")
            else:
                ok = (STATUS_CATEGORIES[issue["status"]][0] == values[0]) == (op == "=")
            if not ok:
                return False
        return True


# --------------------------------------------------------------------------
# Jira (Cloud and Data Center)
# --------------------------------------------------------------------------


JIRA_PROJECT = {"id": "10000", "key": "SEC", "name": "Security"}
JIRA_ISSUE_TYPES = [{"id": "1", "name": "Bug"}, {"id": "3", "name": "Task"}]
JIRA_PRIORITIES = [{"id": "1", "name": "Highest"}, {"id": "2", "name": "High"}, {"id": "3", "name": "Medium"},
                   {"id": "4", "name": "Low"}, {"id": "5", "name": "Lowest"}]
DEFAULT_PRIORITY = JIRA_PRIORITIES[2]
# status -> (statusCategory key, statusCategory name)
STATUS_CATEGORIES = {"To Do": ("new", "To Do"), "In Progress": ("indeterminate", "In Progress"),
                     "Done": ("done", "Done")}
JIRA_STATUSES = list(STATUS_CATEGORIES)
# JQL statusCategory value (lower case, name or key) -> key
STATUS_CATEGORY_VALUES = {**{name.lower(): key for key, name in STATUS_CATEGORIES.values()},
                          **{key: key for key, _ in STATUS_CATEGORIES.values()}}
# status -> [(transition id, target status)]; a transition is named after its target
JIRA_TRANSITIONS = {
    "To Do": [("21", "In Progress"), ("31", "Done")],
    "In Progress": [("11", "To Do"), ("31", "Done")],
    "Done": [("11", "To Do")],
}
JIRA_CREATE_FIELDS = ("project", "issuetype", "summary", "description", "labels", "priority")
NOT_ON_SCREEN = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
NOT_AUTHENTICATED = "Client must be authenticated to access this resource."
BAD_PAYLOAD = "Invalid request payload. Refer to the REST API documentation and try again."


def jira_reply(status, messages=(), errors=None, headers=None):
    return Reply(status, {"errorMessages": list(messages), "errors": errors or {}}, headers)


def jira_error(status, *messages, errors=None):
    return HttpError(jira_reply(status, messages, errors))


def status_json(name):
    key, category = STATUS_CATEGORIES[name]
    return {"name": name, "statusCategory": {"key": key, "name": category}}


def find_ref(value, entries, name_key="name"):
    """Resolve {"id"} / {"name"} (or {"key"}) against entries; both given must agree."""
    if not isinstance(value, dict) or not ({"id", name_key} & set(value)):
        return None
    for entry in entries:
        if all(value[k] == entry[k] for k in ("id", name_key) if k in value):
            return entry
    return None


def pick_fields(fields, requested):
    """The requested fields (None, *all or *navigable: all of them; unknown names skipped)."""
    if requested is None or {"*all", "*navigable"} & set(requested):
        return fields
    return {name: fields[name] for name in requested if name in fields}


class JiraFake(Fake):
    """What Jira Cloud and Data Center share. Subclasses set the API versions and
    search route and provide authenticate(header) and text_error(value): the error
    for a description or comment body of the wrong format (ADF or string), else None."""

    records_key = "issues"
    API_VERSIONS = ()  # path versions served: /rest/api/<v>/...
    SELF_VERSION = None  # version in "self" links
    REMOVED = ()  # paths (after /rest/api/<any>/) answered 410
    RATE_LIMITED = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
    UNAVAILABLE = {"errorMessages": ["Service Unavailable"], "errors": {}}
    ROUTES = [
        (r"issue", {"POST": "create_issue"}),
        (r"issue/([^/]+)", {"GET": "get_issue"}),
        (r"issue/([^/]+)/comment", {"POST": "add_comment"}),
        (r"issue/([^/]+)/transitions", {"GET": "list_transitions", "POST": "transition"}),
    ]

    def clear_records(self):
        self.issues = []
        self.next_id = 10001
        self.next_number = 1
        self.next_comment_id = 10000

    # ---- dispatch

    def serve(self, req, auth):
        if auth == "bad":
            raise jira_error(401, NOT_AUTHENTICATED)
        m = re.fullmatch(r"/rest/api/(2|3|latest)/(.+)", req.path)
        if m and m.group(2) in self.REMOVED:
            raise jira_error(410, "The requested API has been removed. Please migrate to the /rest/api/3/search/jql "
                             "API. A full migration guideline is available at "
                             "https://developer.atlassian.com/changelog/#CHANGE-2046")
        if m and m.group(1) in self.API_VERSIONS:
            for pattern, methods in self.ROUTES:
                route = re.fullmatch(pattern, m.group(2))
                if route is None:
                    continue
                if req.method not in methods:
                    raise jira_error(405, f"Method {req.method} is not allowed here.")
                if req.method == "POST" and not is_json_type(req.headers.get("Content-Type")):
                    raise jira_error(415, "Unsupported Media Type: send Content-Type: application/json.")
                return getattr(self, methods[req.method])(req, auth, *route.groups())
        raise jira_error(404, f"No REST resource at {req.path} (this fake serves /rest/api/"
                         f"{'|'.join(self.API_VERSIONS)}).")

    def json_body(self, req):
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise jira_error(400, BAD_PAYLOAD)
        return body

    @staticmethod
    def require_user(auth):
        if auth != "ok":
            raise jira_error(401, NOT_AUTHENTICATED)

    def find_issue(self, key_or_id, auth):
        """The issue, or 404 (also for anonymous callers, who see none)."""
        if auth == "ok":
            for issue in self.issues:
                if issue["key"] == key_or_id.upper() or issue["id"] == key_or_id:
                    return issue
        raise jira_error(404, ISSUE_NOT_FOUND)

    # ---- rendering

    def self_url(self, issue):
        return f"{self.base_url}/rest/api/{self.SELF_VERSION}/issue/{issue['id']}"

    @staticmethod
    def all_fields(issue):
        return {
            "summary": issue["summary"],
            "issuetype": issue["issuetype"],
            "project": JIRA_PROJECT,
            "status": status_json(issue["status"]),
            "priority": issue["priority"],
            "labels": issue["labels"],
            "description": issue["description"],
            "resolution": issue["resolution"],
            "created": jira_time(issue["created"]),
            "updated": jira_time(issue["updated"]),
            "resolutiondate": jira_time(issue["resolved"]) if issue["resolved"] is not None else None,
        }

    def state_records(self):
        return [{"id": i["id"], "key": i["key"], "self": self.self_url(i), "fields": self.all_fields(i),
                 "comments": i["comments"], "history": i["history"], "properties": i["properties"]}
                for i in self.issues]

    # ---- create

    def create_issue(self, req, auth):
        self.require_user(auth)
        body = self.json_body(req)
        fields, update, properties = body.get("fields", {}), body.get("update", {}), body.get("properties", [])
        if set(body) - {"fields", "update", "properties"} or not isinstance(fields, dict):
            raise jira_error(400, BAD_PAYLOAD)
        if update != {}:
            raise jira_error(400, "The fake supports no 'update' operations on create: set the fields instead.")
        if not isinstance(properties, list) or not all(
                isinstance(p, dict) and set(p) == {"key", "value"} and isinstance(p["key"], str)
                and 0 < len(p["key"]) <= 255 for p in properties):
            raise jira_error(400, 'Issue properties must be a list of {"key", "value"} '
                             "with keys of 1-255 characters.")

        errors = {}
        if find_ref(fields.get("project"), [JIRA_PROJECT], "key") is None:
            errors["project"] = "valid project is required"
        issuetype = find_ref(fields.get("issuetype"), JIRA_ISSUE_TYPES)
        if issuetype is None:
            errors["issuetype"] = "valid issue type is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        description = fields.get("description")
        description_error = self.text_error(description) if description is not None else None
        if description_error:
            errors["description"] = description_error
        labels = fields.get("labels", [])
        label_error = self.labels_error(labels)
        if label_error:
            errors["labels"] = label_error
        priority = DEFAULT_PRIORITY
        if "priority" in fields:
            priority = find_ref(fields["priority"], JIRA_PRIORITIES)
            if priority is None:
                errors["priority"] = "Specify the Priority (id or name) in the proper format"
        for key in fields:
            if key not in JIRA_CREATE_FIELDS:
                errors[key] = NOT_ON_SCREEN.format(key)
        if errors:
            raise jira_error(400, errors=errors)

        now = time.time()
        issue = {"id": str(self.next_id), "key": f"{JIRA_PROJECT['key']}-{self.next_number}", "summary": summary,
                 "issuetype": issuetype, "priority": priority, "labels": sorted(set(labels)),
                 "description": description, "status": "To Do", "resolution": None, "created": now,
                 "updated": now, "resolved": None, "comments": [], "history": [], "properties": properties}
        self.next_id += 1
        self.next_number += 1
        self.issues.append(issue)
        return self.gateway_failure() or Reply(201, {"id": issue["id"], "key": issue["key"],
                                                     "self": self.self_url(issue)})

    @staticmethod
    def labels_error(labels):
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            return "data was not an array of strings"
        for label in labels:
            if not label:
                return "Labels cannot be empty."
            if any(c.isspace() for c in label):
                return f"The label '{label}' contains spaces which is invalid."
            if len(label) > 255:
                return f"The label '{label}' exceeds the maximum length for a single label of 255 characters."
        return None

    # ---- read, comment, transitions

    def get_issue(self, req, auth, key):
        issue = self.find_issue(key, auth)
        return Reply(200, {"id": issue["id"], "key": issue["key"], "self": self.self_url(issue),
                           "fields": pick_fields(self.all_fields(issue), split_csv(req.query.get("fields")))})

    def comment_error(self, body):
        if body is None or body == "":
            return "Comment body can not be empty!"
        return self.text_error(body)

    def add_comment_to(self, issue, body, now):
        comment = {"id": str(self.next_comment_id), "body": body, "created": jira_time(now)}
        self.next_comment_id += 1
        issue["comments"].append(comment)
        issue["updated"] = now
        return comment

    def add_comment(self, req, auth, key):
        self.require_user(auth)
        issue = self.find_issue(key, auth)
        body = self.json_body(req).get("body")
        error = self.comment_error(body)
        if error:
            raise jira_error(400, errors={"comment": error})
        comment = self.add_comment_to(issue, body, time.time())
        return Reply(201, {**comment, "self": f"{self.self_url(issue)}/comment/{comment['id']}",
                           "updated": comment["created"]})

    def list_transitions(self, req, auth, key):
        issue = self.find_issue(key, auth)
        return Reply(200, {"transitions": [
            {"id": t_id, "name": target, "to": status_json(target), "hasScreen": False, "isAvailable": True}
            for t_id, target in JIRA_TRANSITIONS[issue["status"]]]})

    def transition(self, req, auth, key):
        self.require_user(auth)
        issue = self.find_issue(key, auth)
        body = self.json_body(req)
        wanted = body.get("transition")
        if not isinstance(wanted, dict) or not isinstance(wanted.get("id"), (str, int)):
            raise jira_error(400, "Missing 'transition' identifier")
        t_id = str(wanted["id"])
        target = dict(JIRA_TRANSITIONS[issue["status"]]).get(t_id)
        if target is None:
            raise jira_error(400, f"Transition id '{t_id}' is not valid for this issue.")
        fields, update = body.get("fields", {}), body.get("update", {})
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise jira_error(400, BAD_PAYLOAD)
        errors = {name: NOT_ON_SCREEN.format(name) for name in list(fields) + list(update) if name != "comment"}
        if "comment" in fields:
            errors["comment"] = NOT_ON_SCREEN.format("comment")
        comment_ops = update.get("comment", [])
        comments = []
        for op in comment_ops if isinstance(comment_ops, list) else [None]:
            if not isinstance(op, dict) or set(op) != {"add"} or not isinstance(op["add"], dict):
                errors["comment"] = "The comment update must be a list of {\"add\": {\"body\": ...}}."
                continue
            error = self.comment_error(op["add"].get("body"))
            if error:
                errors["comment"] = error
            comments.append(op["add"].get("body"))
        if errors:
            raise jira_error(400, errors=errors)

        now = time.time()
        issue["history"].append({"transition": {"id": t_id, "name": target}, "from": issue["status"],
                                 "to": target, "created": jira_time(now)})
        issue["status"] = target
        if target == "Done":
            issue["resolved"], issue["resolution"] = now, {"name": "Done"}
        else:
            issue["resolved"], issue["resolution"] = None, None
        for comment in comments:
            self.add_comment_to(issue, comment, now)
        issue["updated"] = now
        return Reply(204)

    def age(self, body):
        key, seconds = age_days(body, "key")
        for issue in self.issues:
            if issue["key"] == key:
                if issue["resolved"] is not None:
                    issue["resolved"] -= seconds
                issue["updated"] -= seconds
                return Reply(200, self.all_fields(issue))
        raise control_error(404, f"no issue {key}")

    # ---- search

    def run_query(self, jql, reconcile=()):
        """Issues matching ``jql`` visible to search (search lag), in the query's order."""
        unknown = jql.unknown_projects()
        if unknown:
            raise jira_error(400, f"The value '{unknown[0]}' does not exist for the field 'project'.")
        lag, now = self.faults["search_lag_seconds"], time.time()
        found = [i for i in self.issues
                 if (now - i["created"] >= lag or int(i["id"]) in reconcile) and jql.matches(i)]
        return sorted(found, key=lambda i: (i["created"], int(i["id"])), reverse=jql.descending)

    @staticmethod
    def parse_jql(text):
        try:
            return Jql(text)
        except JqlError as e:
            raise jira_error(400, str(e)) from None

    def search_body(self, req, keys, lists=(), ints=()):
        """The search request as a dict: the POST body (only ``keys`` allowed, as the
        schemas say), or the GET query parameters named in ``keys`` (others ignored)."""
        if req.method == "POST":
            body = self.json_body(req)
            unknown = sorted(set(body) - set(keys))
            if unknown:
                raise jira_error(400, f'{BAD_PAYLOAD} Unrecognized field "{unknown[0]}".')
            return body
        body = {}
        for name in keys:
            values = req.query.get(name)
            if values is None:
                continue
            if name in lists:
                body[name] = split_csv(values)
                if name in ints:
                    try:
                        body[name] = [int(v) for v in body[name]]
                    except ValueError:
                        raise jira_error(400, f"'{name}' must be a list of integers.") from None
            elif name in ints:
                try:
                    body[name] = int(values[-1])
                except ValueError:
                    raise jira_error(400, f"'{name}' must be an integer.") from None
            else:
                body[name] = values[-1]
        return body

    @staticmethod
    def int_param(body, name, default, minimum, maximum):
        value = body.get(name, default)
        if not is_int(value) or value < minimum:
            raise jira_error(400, f"'{name}' must be an integer >= {minimum}.")
        return min(value, maximum)

    @staticmethod
    def fields_param(body, default):
        fields = body.get("fields", default)
        if fields is not default and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise jira_error(400, BAD_PAYLOAD)
        return fields


class JiraCloudFake(JiraFake):
    name = "jira"
    API_VERSIONS = ("3",)
    SELF_VERSION = "3"
    REMOVED = ("search",)
    ROUTES = JiraFake.ROUTES + [(r"search/jql", {"GET": "search_jql", "POST": "search_jql"})]
    SEARCH_KEYS = ("jql", "maxResults", "fields", "nextPageToken", "expand", "properties", "fieldsByKeys",
                   "reconcileIssues")

    def clear_records(self):
        super().clear_records()
        self.page_tokens = {}  # nextPageToken -> (jql, offset)

    def authenticate(self, header):
        if header is None:
            return "anonymous"
        return "ok" if basic_credentials(header) == (JIRA_CLOUD_EMAIL, JIRA_CLOUD_API_TOKEN) else "bad"

    def text_error(self, value):
        if not isinstance(value, dict):
            return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
        return None if valid_adf(value) else "INVALID_INPUT"

    def comment_error(self, body):
        if isinstance(body, dict) and body.get("content") == []:
            return "Comment body can not be empty!"
        return super().comment_error(body)

    def search_jql(self, req, auth):
        body = self.search_body(req, self.SEARCH_KEYS, lists=("fields", "properties", "reconcileIssues"),
                                ints=("maxResults", "reconcileIssues"))
        jql_text = body.get("jql", "")
        token = body.get("nextPageToken")
        reconcile = body.get("reconcileIssues", [])
        if (not isinstance(jql_text, str) or not isinstance(token, (str, type(None)))
                or not isinstance(body.get("expand", ""), str)):
            raise jira_error(400, BAD_PAYLOAD)
        if not isinstance(reconcile, list) or not all(is_int(i) for i in reconcile):
            raise jira_error(400, "reconcileIssues must be a list of issue ids (integers).")
        if len(reconcile) > 50:
            raise jira_error(400, "reconcileIssues accepts at most 50 issue ids.")
        properties = body.get("properties", [])
        if not isinstance(properties, list) or len(properties) > 5:
            raise jira_error(400, "properties accepts at most 5 property keys.")
        max_results = self.int_param(body, "maxResults", 50, 1, 5000)
        fields = self.fields_param(body, ["id"])
        jql = self.parse_jql(jql_text)
        if not jql.bounded:
            raise jira_error(400, "Unbounded JQL queries are not allowed here. "
                             "Please add a search restriction to your query.")
        offset = 0
        if token is not None:
            saved = self.page_tokens.get(token)
            if saved is None or saved[0] != jql_text:
                raise jira_error(400, "The nextPageToken is invalid or expired.")
            offset = saved[1]
        if auth != "ok":
            return Reply(200, {"issues": [], "isLast": True})

        found = self.run_query(jql, set(reconcile))
        page = [self.search_hit(issue, fields) for issue in found[offset:offset + max_results]]
        result = {"issues": page}
        if offset + max_results < len(found):
            token = uuid.uuid4().hex
            self.page_tokens[token] = (jql_text, offset + max_results)
            result["nextPageToken"] = token
        result["isLast"] = "nextPageToken" not in result
        return Reply(200, result)

    def search_hit(self, issue, fields):
        """Cloud search returns the id always, key and self only when asked for."""
        hit = {"id": issue["id"]}
        if {"key", "*all", "*navigable"} & set(fields):
            hit["key"], hit["self"] = issue["key"], self.self_url(issue)
        picked = pick_fields(self.all_fields(issue), fields)
        if picked:
            hit["fields"] = picked
        return hit


class JiraDcFake(JiraFake):
    name = "jira-dc"
    API_VERSIONS = ("2", "latest")
    SELF_VERSION = "2"
    ROUTES = JiraFake.ROUTES + [(r"search", {"GET": "search", "POST": "search"})]
    SEARCH_KEYS = ("jql", "startAt", "maxResults", "fields", "expand", "validateQuery", "properties", "fieldsByKeys")

    def authenticate(self, header):
        if header is None:
            return "anonymous"
        return "ok" if bearer_token(header) == JIRA_DC_PAT else "bad"

    def text_error(self, value):
        return None if isinstance(value, str) else "Operation value must be a string"

    def search(self, req, auth):
        body = self.search_body(req, self.SEARCH_KEYS, lists=("fields", "properties"),
                                ints=("startAt", "maxResults"))
        jql_text = body.get("jql", "")
        if not isinstance(jql_text, str) or not isinstance(body.get("expand", ""), str):
            raise jira_error(400, BAD_PAYLOAD)
        start_at = self.int_param(body, "startAt", 0, 0, sys.maxsize)
        max_results = self.int_param(body, "maxResults", 50, 0, 1000)
        fields = self.fields_param(body, None)
        jql = self.parse_jql(jql_text)
        found = self.run_query(jql) if auth == "ok" else []
        issues = [{"expand": "", "id": i["id"], "self": self.self_url(i), "key": i["key"],
                   "fields": pick_fields(self.all_fields(i), fields)}
                  for i in found[start_at:start_at + max_results]]
        return Reply(200, {"expand": "", "startAt": start_at, "maxResults": max_results, "total": len(found),
                           "issues": issues})



# --------------------------------------------------------------------------
# ServiceNow Table API
# --------------------------------------------------------------------------


# Every incident field, in response order, with its value on a new record
# (None: generated per record).
SN_FIELDS = {
    "sys_id": None, "number": None, "state": "1", "active": "true", "priority": "5", "impact": "3",
    "urgency": "3", "short_description": "", "description": "", "category": "", "assignment_group": "",
    "caller_id": "", "correlation_id": "", "correlation_display": "", "close_code": "", "close_notes": "",
    "resolved_at": "", "closed_at": "", "work_notes": "", "comments": "", "sys_created_on": None,
    "sys_updated_on": None,
}
SN_WRITABLE = ("short_description", "description", "urgency", "impact", "category", "assignment_group",
               "caller_id", "correlation_id", "correlation_display", "state", "close_code", "close_notes")
SN_JOURNALS = ("work_notes", "comments")  # appended as journal entries, read back as ""
SN_STATES = ("1", "2", "3", "6", "7", "8")  # New, In Progress, On Hold, Resolved, Closed, Canceled
SN_FINAL_STATES = ("7", "8")
SN_CLOSE_CODES = ("Solution provided", "Workaround provided", "Resolved by caller", "Resolved by change",
                  "Resolved by problem", "Duplicate", "Known error", "No resolution provided",
                  "Solved (Permanently)")
SN_CORRELATION_ID_MAX = 100
SN_CLAUSE = re.compile(r"([a-z0-9_.]+)(!=|=|IN)(.*)", re.S)


def sn_error(status, message, detail=None):
    return HttpError(Reply(status, {"error": {"message": message, "detail": detail}, "status": "failure"}))


def parse_sn_query(text):
    """An encoded query -> ([(field, op, value)], [(field, descending)]). Clauses on
    unknown fields are dropped silently, as ServiceNow does."""
    conditions, order = [], []
    for part in text.split("^"):
        if part in ("", "EQ"):
            continue
        if part.startswith("ORDERBYDESC"):
            order.append((part[len("ORDERBYDESC"):], True))
        elif part.startswith("ORDERBY"):
            order.append((part[len("ORDERBY"):], False))
        elif part.startswith(("OR", "NQ")):
            raise sn_error(400, "Unsupported encoded query", f"the fake does not support ^OR / ^NQ ('{part}')")
        else:
            m = SN_CLAUSE.fullmatch(part)
            field = m.group(1) if m else re.match(r"[a-z0-9_.]*", part).group(0)
            if field not in SN_FIELDS:
                continue
            if m is None:
                raise sn_error(400, "Unsupported encoded query",
                               f"the fake supports only =, != and IN, not '{part}'")
            conditions.append(m.groups())
    return conditions, [(f, desc) for f, desc in order if f in SN_FIELDS]


def sn_condition(fields, field, op, value):
    if op == "=":
        return fields[field] == value
    if op == "!=":
        return fields[field] != value
    return fields[field] in value.split(",")


class ServiceNowFake(Fake):
    name = "servicenow"
    records_key = "incidents"
    has_search_lag = False
    RATE_LIMITED = {"error": {"message": "Rate limit exceeded",
                              "detail": "Rate limit of 10 requests per hour for Table API exceeded"},
                    "status": "failure"}
    UNAVAILABLE = {"error": {"message": "Service Unavailable", "detail": "The instance is unavailable"},
                   "status": "failure"}

    def clear_records(self):
        self.incidents = []  # {"fields": {...}, "work_notes": [...], "comments": [...], "history": [...]}
        self.next_number = 10001

    def authenticate(self, header):
        if header is None:
            return "anonymous"
        if basic_credentials(header) == (SERVICENOW_USER, SERVICENOW_PASSWORD):
            return "ok"
        return "ok" if bearer_token(header) == SERVICENOW_OAUTH_TOKEN else "bad"

    def control_routes(self):
        return {**super().control_routes(), ("POST", "/_fake/close"): self.close}

    def state_records(self):
        return [{**inc["fields"], "work_notes": inc["work_notes"], "comments": inc["comments"],
                 "history": inc["history"]} for inc in self.incidents]

    # ---- dispatch

    def serve(self, req, auth):
        if auth != "ok":
            raise sn_error(401, "User Not Authenticated", "Required to provide Auth information")
        if not accepts_json(req.headers.get("Accept")):
            raise sn_error(406, "Requested response format is not supported",
                           "Send Accept: application/json")
        if req.method in ("POST", "PUT", "PATCH") and not is_json_type(req.headers.get("Content-Type")):
            raise sn_error(415, "Content-Type is not supported", "Send Content-Type: application/json")
        m = re.fullmatch(r"/api/now(?:/v2)?/table/([^/]+)(?:/([^/]+))?", req.path)
        if m is None:
            raise sn_error(400, "Requested URI does not represent any resource")
        table, sys_id = m.groups()
        if table != "incident":
            raise sn_error(400, f"Invalid table {table}")
        handlers = {"GET": self.get, "PATCH": self.update, "PUT": self.update} if sys_id else \
            {"GET": self.list, "POST": self.create}
        handler = handlers.get(req.method)
        if handler is None:
            raise sn_error(405, "Method not Supported", f"{req.method} is not supported by the fake on {req.path}")
        return handler(req, sys_id) if sys_id else handler(req)

    @staticmethod
    def json_body(req):
        try:
            body = json.loads(req.body)
        except ValueError:
            raise sn_error(400, "Exception while reading request", "The payload is not valid JSON.") from None
        if not isinstance(body, dict):
            raise sn_error(400, "Exception while reading request", "The payload must be one JSON object.")
        return body

    def find(self, sys_id):
        for inc in self.incidents:
            if inc["fields"]["sys_id"] == sys_id:
                return inc
        raise sn_error(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")

    @staticmethod
    def render(inc, req):
        wanted = split_csv(req.query.get("sysparm_fields"))
        fields = inc["fields"]
        return {name: fields[name] for name in wanted if name in fields} if wanted else dict(fields)

    # ---- writes

    def apply(self, inc, body, now):
        """Validate the known fields of ``body`` against ``inc``, then apply them.
        Unknown fields are ignored, as the instance does."""
        changes = {k: v for k, v in body.items() if k in SN_WRITABLE or k in SN_JOURNALS}
        for name, value in changes.items():
            if not isinstance(value, str):
                raise sn_error(400, f"Invalid value for field {name}", "The fake accepts string values only.")
        for name in ("impact", "urgency"):
            if name in changes and changes[name] not in ("1", "2", "3"):
                raise sn_error(400, f"Invalid value for field {name}", "Expected 1, 2 or 3.")
        if "state" in changes and changes["state"] not in SN_STATES:
            raise sn_error(400, "Invalid value for field state", f"Expected one of {', '.join(SN_STATES)}.")
        if len(changes.get("correlation_id", "")) > SN_CORRELATION_ID_MAX:
            raise sn_error(400, "Invalid value for field correlation_id",
                           f"At most {SN_CORRELATION_ID_MAX} characters.")
        fields = inc["fields"]
        old, new = fields["state"], changes.get("state", fields["state"])
        if new != old and old in SN_FINAL_STATES:
            raise sn_error(403, "Operation Failed", "Closed incidents cannot be reopened")
        if new in ("6", "7") and (new != old or "close_code" in changes or "close_notes" in changes):
            code = changes.get("close_code", fields["close_code"])
            if not code or not changes.get("close_notes", fields["close_notes"]).strip():
                raise sn_error(403, "Operation Failed", "Data Policy Exception: \n The following fields are "
                               "mandatory: Resolution code, Resolution notes")
            if code not in SN_CLOSE_CODES:
                raise sn_error(403, "Operation Failed",
                               f"Data Policy Exception: \n Invalid value '{code}' for Resolution code")

        for name in SN_JOURNALS:
            if changes.get(name):
                inc[name].append({"body": changes[name], "created": now})
        for name in SN_WRITABLE:
            if name in changes and name != "state":
                fields[name] = changes[name]
        # The default priority lookup: impact + urgency - 1 (1/1 -> 1 Critical ... 3/3 -> 5 Planning).
        fields["priority"] = str(int(fields["impact"]) + int(fields["urgency"]) - 1)
        if new != old:
            self.set_state(inc, new, now)
        if changes:
            fields["sys_updated_on"] = now

    @staticmethod
    def set_state(inc, new, now):
        """Move to state ``new`` with the business rules' side effects."""
        fields = inc["fields"]
        inc["history"].append({"from": fields["state"], "to": new, "created": now})
        fields["state"] = new
        if new == "6":
            fields["resolved_at"] = now
        elif new == "7":
            fields["closed_at"] = now
            fields["resolved_at"] = fields["resolved_at"] or now
        elif new != "8":
            fields["resolved_at"] = ""  # reopened; close_code and close_notes stay
        fields["active"] = "false" if new in SN_FINAL_STATES else "true"

    def create(self, req):
        body = self.json_body(req)
        now = sn_time(time.time())
        fields = dict(SN_FIELDS, sys_id=uuid.uuid4().hex, number=f"INC{self.next_number:07d}",
                      sys_created_on=now, sys_updated_on=now)
        inc = {"fields": fields, "work_notes": [], "comments": [], "history": []}
        self.apply(inc, body, now)
        self.next_number += 1
        self.incidents.append(inc)
        failure = self.gateway_failure()
        if failure:
            return failure
        headers = {"Location": f"{self.base_url}/api/now/table/incident/{fields['sys_id']}"}
        if (req.headers.get("X-no-response-body") or "").lower() == "true":
            return Reply(201, None, headers)
        return Reply(201, {"result": self.render(inc, req)}, headers)

    def update(self, req, sys_id):
        inc = self.find(sys_id)
        self.apply(inc, self.json_body(req), sn_time(time.time()))
        return Reply(200, {"result": self.render(inc, req)})

    # ---- reads

    def get(self, req, sys_id):
        return Reply(200, {"result": self.render(self.find(sys_id), req)})

    def list(self, req):
        conditions, order = parse_sn_query(req.param("sysparm_query") or "")
        try:
            limit = int(req.param("sysparm_limit") or 10000)
            offset = int(req.param("sysparm_offset") or 0)
        except ValueError:
            raise sn_error(400, "Invalid sysparm_limit or sysparm_offset") from None
        rows = [inc for inc in self.incidents if all(sn_condition(inc["fields"], *c) for c in conditions)]
        for field, descending in reversed(order):  # stable sorts: the first ORDERBY wins
            rows.sort(key=lambda inc: inc["fields"][field], reverse=descending)
        return Reply(200, {"result": [self.render(inc, req) for inc in rows[offset:offset + limit]]},
                     {"X-Total-Count": str(len(rows))})

    # ---- control

    def find_number(self, number):
        for inc in self.incidents:
            if inc["fields"]["number"] == number:
                return inc
        raise control_error(404, f"no incident {number}")

    def age(self, body):
        number, seconds = age_days(body, "number")
        fields = self.find_number(number)["fields"]
        for name in ("resolved_at", "sys_updated_on"):
            if fields[name]:
                moved = datetime.strptime(fields[name], SN_TIME_FORMAT) - timedelta(seconds=seconds)
                fields[name] = moved.strftime(SN_TIME_FORMAT)
        return Reply(200, fields)

    def close(self, body):
        number = body.get("number")
        if not isinstance(number, str):
            raise control_error(400, 'the body must be {"number": "..."}')
        inc = self.find_number(number)
        if inc["fields"]["state"] != "7":
            now = sn_time(time.time())
            self.set_state(inc, "7", now)
            inc["fields"]["sys_updated_on"] = now
        return Reply(200, inc["fields"])


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ticketfakes"

    def log_message(self, fmt, *args):  # quiet; --verbose logs one line per request
        pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_PATCH(self):
        self._serve("PATCH")

    def do_DELETE(self):
        self._serve("DELETE")

    def _serve(self, method):
        fake = self.server.fake
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if "Transfer-Encoding" in self.headers or length < 0:
            reply = Reply(411, {"error": "send a body with Content-Length"})
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            req = Request(method, url.path.rstrip("/") or "/", parse_qs(url.query, keep_blank_values=True),
                          self.headers, body)
            reply = fake.handle(req)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        data = reply.data or b""
        if reply.status != 204:
            if reply.data is not None:
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and reply.status != 204:
            self.wfile.write(data)
        vlog(f"{fake.name}: {method} {self.path} -> {reply.status}")


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, fake):
        super().__init__(("127.0.0.1", 0), Handler)
        self.fake = fake
        fake.base_url = f"http://127.0.0.1:{self.server_address[1]}"


def start_fakes():
    """Bind and serve the three fakes (each in a thread) -> (servers, {name: base URL}).
    The sockets listen once this returns."""
    servers = [FakeServer(cls()) for cls in (JiraCloudFake, JiraDcFake, ServiceNowFake)]
    for server in servers:
        threading.Thread(target=server.serve_forever, name=server.fake.name, daemon=True).start()
    return servers, {server.fake.name: server.fake.base_url for server in servers}


def stop_fakes(servers):
    stoppers = [threading.Thread(target=server.shutdown) for server in servers]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(timeout=5)
    for server in servers:
        server.server_close()


def write_atomically(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def parse_args(argv):
    p = argparse.ArgumentParser(description="hubtriage fakes of Jira Cloud, Jira DC and ServiceNow (127.0.0.1 only)")
    p.add_argument("--ready-file", required=True, help="JSON file with the base URLs, written once all servers listen")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin reaches EOF")
    p.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    return p.parse_args(argv)


def main(argv=None):
    global VERBOSE
    args = parse_args(argv)
    VERBOSE = args.verbose
    servers, urls = start_fakes()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    if args.exit_on_stdin_eof:
        def watch_stdin():
            # os.read, not sys.stdin: a thread blocked in the buffered reader holds its
            # lock, and the interpreter aborts when it cannot take it at exit (SIGTERM).
            try:
                while os.read(sys.stdin.fileno(), 4096):
                    pass
            except (OSError, ValueError):
                pass
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()

    ready = json.dumps(urls)
    write_atomically(args.ready_file, ready)
    log("ready: " + ", ".join(f"{name} {url}" for name, url in urls.items()))

    while not stop.wait(0.5):
        pass
    log("stopping")
    try:
        with open(args.ready_file) as fh:
            if fh.read() == ready:  # still ours
                os.remove(args.ready_file)
    except OSError:
        pass
    stop_fakes(servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
