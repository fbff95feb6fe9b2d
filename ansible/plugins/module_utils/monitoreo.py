# -*- coding: utf-8 -*-
# Copyright: Monitoreo developers
# MIT License (see LICENSE at the root of the repository)
"""The one HTTP client of the collection's modules: a Monitoreo gateway
reached over HTTPS with a bearer key, through ansible-core's own
open_url (Python's urllib and ssl underneath), so nothing needs
installing where the modules run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import ssl

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible.module_utils.urls import open_url

# The connection options every module takes (documented once, in
# doc_fragments/connection.py).
CONNECTION_ARGS = dict(
    url=dict(type="str", required=True),
    key=dict(type="str", no_log=True),
    key_file=dict(type="path"),
    ca_file=dict(type="path"),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="int", default=30),
)

CONNECTION_RULES = dict(
    mutually_exclusive=[("key", "key_file")],
    required_one_of=[("key", "key_file")],
)


class MonitoreoError(Exception):
    """An answer that is not a success, or no answer: status 0."""

    def __init__(self, status, code, message, body=None):
        super(MonitoreoError, self).__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body or {}

    def as_result(self):
        return dict(msg=self.message, status=self.status, code=self.code, answer=self.body)


class Gateway(object):
    """One gateway, one key."""

    def __init__(self, module):
        p = module.params
        self.base = p["url"].rstrip("/")
        self.timeout = p["timeout"]
        if p["key"] is not None:
            self.key = p["key"].strip()
        else:
            try:
                with open(p["key_file"]) as f:
                    self.key = f.read().strip()
            except (IOError, OSError) as e:
                module.fail_json(msg="reading key_file %s: %s" % (p["key_file"], e))
        if not self.key:
            module.fail_json(msg="the key is empty")
        self.validate_certs = p["validate_certs"]
        self.ca_file = p["ca_file"]

    def call(self, method, path, body=None, query=None):
        """The JSON answer of a 2xx; MonitoreoError otherwise."""
        raw = self.fetch(method, path, body, query)
        try:
            return json.loads(raw.decode("utf-8")) if raw else {}
        except ValueError:
            raise MonitoreoError(0, "not_json", "%s %s: the answer is not JSON" % (method, path))

    def text(self, path):
        """The body of a 2xx GET as text (UTF-8, invalid bytes replaced)."""
        return self.fetch("GET", path).decode("utf-8", "replace")

    def fetch(self, method, path, body=None, query=None):
        """The body of a 2xx answer; MonitoreoError otherwise."""
        url = self.base + path
        if query:
            url += "?" + urlencode([(k, v) for k, v in query.items() if v is not None])
        data = None
        headers = {"Authorization": "Bearer " + self.key, "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            resp = open_url(
                url,
                data=data,
                headers=headers,
                method=method,
                timeout=self.timeout,
                validate_certs=self.validate_certs,
                ca_path=self.ca_file,
                follow_redirects="none",
                use_proxy=True,
            )
            raw = resp.read()
        except HTTPError as e:
            raw = e.read()
            try:
                answer = json.loads(raw.decode("utf-8"))
            except ValueError:
                answer = {}
            raise MonitoreoError(
                e.code,
                answer.get("code", "http_%d" % e.code),
                "%s %s: %d %s" % (method, path, e.code, answer.get("message", e.reason)),
                answer,
            )
        except (URLError, ssl.SSLError, socket.timeout, IOError, OSError) as e:
            raise MonitoreoError(0, "unreachable", "%s %s: %s" % (method, self.base, e))
        return raw


def path_segment(value):
    """A value placed in a URL path, escaped."""
    return quote(str(value), safe="")


ACTION_ARGS = dict(
    pids=dict(type="list", elements="int"),
    tree_of=dict(type="int"),
    include_root=dict(type="bool", default=True),
    match=dict(
        type="dict",
        options=dict(
            name=dict(type="str"),
            exe=dict(type="str"),
            cmdline=dict(type="str"),
            user=dict(type="str"),
            cgroup=dict(type="str"),
            unit=dict(type="str"),
        ),
    ),
    allow_empty=dict(type="bool", default=True),
    max_targets=dict(type="int", default=100),
    fail_on_partial=dict(type="bool", default=True),
)

ACTION_RULES = dict(
    mutually_exclusive=[("pids", "tree_of", "match")],
    required_one_of=[("pids", "tree_of", "match")],
)

# What an executed plan says of a target that was acted on.
ACTED = ("signalled", "reniced")


def selector(params):
    """The plan's selector from the module's options."""
    if params["pids"] is not None:
        return {"pids": params["pids"]}
    if params["tree_of"] is not None:
        return {"tree_of": params["tree_of"], "include_root": params["include_root"]}
    return {"match": dict((k, v) for k, v in params["match"].items() if v is not None)}


def plan_and_execute(module, action):
    """Plans `action` on the selected processes; in check mode returns the
    plan (targets and the policy's verdicts) and acts on nothing, otherwise
    executes it, expecting the planned count. Exits the module."""
    gw = Gateway(module)
    p = module.params
    body = dict(
        selector=selector(p),
        action=action,
        allow_empty=p["allow_empty"],
        max_targets=p["max_targets"],
    )
    try:
        plan = gw.call("POST", "/api/actions/plan", body)
    except MonitoreoError as e:
        module.fail_json(**e.as_result())
    targets = plan.get("targets", [])
    allowed = [t for t in targets if t.get("verdict") == "allow"]
    denied = [t for t in targets if t.get("verdict") != "allow"]
    result = dict(
        changed=False,
        plan_id=plan.get("plan_id"),
        count=plan.get("count", len(targets)),
        targets=targets,
        denied=denied,
    )
    if module.check_mode or not targets:
        result["changed"] = bool(allowed)
        if module.check_mode and denied and p["fail_on_partial"]:
            result["msg"] = "%d of %d targets would be refused by policy" % (len(denied), len(targets))
            module.fail_json(**result)
        module.exit_json(**result)
    try:
        done = gw.call(
            "POST",
            "/api/actions/" + path_segment(plan["plan_id"]),
            {"expect_count": result["count"]},
        )
    except MonitoreoError as e:
        result.update(e.as_result())
        module.fail_json(**result)
    results = done.get("results", [])
    result.update(
        status=done.get("status"),
        results=results,
        changed=any(r.get("outcome") in ACTED for r in results),
    )
    if done.get("status") != "complete" and p["fail_on_partial"]:
        unacted = [r for r in results if r.get("outcome") not in ACTED]
        result["msg"] = "%d of %d targets were not acted on: %s" % (
            len(unacted),
            len(results),
            ", ".join("%s %s" % (r.get("pid"), r.get("outcome")) for r in unacted),
        )
        module.fail_json(**result)
    module.exit_json(**result)
